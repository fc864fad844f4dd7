"""Bespoke Curator beside synthq's generation layer, on one `vllm serve` (used by
bench/openai_vs_inprocess.py).

Curator's offline vLLM backend needs vllm < 0.7, for which there is no CPU build to install
here; its online OpenAI backend is what runs against vLLM's CPU build. Curator lives in its own
virtual environment, installed from the package registry on first run into
~/.cache/synthq/bench/peers, and gets the same messages with the stage's JSON schema as its
`response_format` (curator_generate.py). Output tokens are read from the server's own counter
(`vllm:generation_tokens_total` on /metrics) before and after each side, so retries count.
What each does with outputs that fail the schema is counted: synthq returns every result with
its finish reason (the stage then repairs or rejects what does not validate); Curator retries
a failed parse and leaves out what still fails.
"""

from __future__ import annotations

import json
import re
import urllib.request
from pathlib import Path

import jsonschema

from peers.envs import run_peer

PEER = ["bespokelabs-curator==0.1.31"]
PEER_ENV = "curator-0.1.31"
PEER_SCRIPT = Path(__file__).resolve().parent / "curator_generate.py"


def generated_tokens(url: str) -> float:
    """The server's count of output tokens so far."""
    with urllib.request.urlopen(url.removesuffix("/v1") + "/metrics", timeout=10) as r:
        text = r.read().decode()
    return sum(float(m) for m in re.findall(r"^vllm:generation_tokens_total\{[^}]*\} ([0-9.e+]+)$", text, re.M))


def verdict(text: str, schema: dict, finish: str | None) -> str:
    try:
        jsonschema.validate(json.loads(text), schema)
        return "valid"
    except json.JSONDecodeError:
        return "truncated" if finish == "length" else "not_json"
    except jsonschema.ValidationError:
        return "schema"


def curator(python: Path, url: str, model: str, requests: list, work: Path) -> dict:
    spec = work / "requests.json"
    spec.write_text(json.dumps({"base_url": url, "model": model, "requests": [
        {"id": r.id, "messages": r.messages, "schema": r.schema, "max_tokens": r.max_tokens, "temperature": r.temperature}
        for r in requests]}))
    before = generated_tokens(url)
    out = run_peer(python, PEER_SCRIPT, "--input", str(spec), "--work", str(work), what="Curator")
    valid = sum(verdict(a, requests[0].schema, None) == "valid" for a in out["answers"].values())
    return {**out, "tokens": generated_tokens(url) - before, "valid": valid}
