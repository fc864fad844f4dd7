"""Bespoke Curator's online OpenAI backend on given requests, run inside Curator's virtual
environment by bench/peers/curator.py for bench/openai_vs_inprocess.py (it never imports synthq). Prints one JSON object as
its last line.

Its rate limiter's token counter is replaced by an estimate (offline: see below).

Input: a JSON file {"base_url", "model", "requests": [{"id", "messages", "schema",
"max_tokens", "temperature"}]}, all requests sharing one JSON schema. The schema becomes a
pydantic model (objects, strings with their length bounds, `$ref`s), Curator's
`response_format`: Curator asks the server for that structure and parses each answer into
it; an answer that does not parse is retried, up to `max_retries`, then left out.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

from pydantic import Field, create_model


def model_from_schema(schema: dict, node: dict | None = None, name: str | None = None):
    """A pydantic model for the object schemas this bench sends (strings and nested objects)."""
    node = node or schema
    if "$ref" in node:
        ref = node["$ref"].rsplit("/", 1)[-1]
        return model_from_schema(schema, schema["$defs"][ref], ref)
    fields = {}
    for key, prop in node["properties"].items():
        if "$ref" in prop or prop.get("type") == "object":
            fields[key] = (model_from_schema(schema, prop, key.title()), ...)
        else:
            bounds = {k: prop[j] for k, j in (("min_length", "minLength"), ("max_length", "maxLength")) if j in prop}
            fields[key] = (str, Field(..., **bounds))
    return create_model(name or node.get("title", "Output"), **fields)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--input", type=Path, required=True)
    ap.add_argument("--work", type=Path, required=True)
    ap.add_argument("--max-retries", type=int, default=3)
    args = ap.parse_args()
    spec = json.loads(args.input.read_text())
    os.environ["CURATOR_CACHE_DIR"] = str(args.work / "curator-cache")  # a fresh cache: every request is generated
    os.environ.setdefault("CURATOR_DISABLE_TELEMETRY", "1")
    from bespokelabs import curator
    from bespokelabs.curator.request_processor.online import openai_online_request_processor as online

    # Curator counts prompt tokens for its rate limiter with tiktoken's cl100k_base, which
    # tiktoken downloads on first use; offline, an estimate of 4 characters per token stands in.
    # It feeds only the limiter (set far above this run's rate), never the requests.
    class Estimate:
        def encode(self, text, **_):
            return range(len(text) // 4 + 1)

    online.OpenAIOnlineRequestProcessor.get_token_encoding = lambda self: Estimate()

    first = spec["requests"][0]
    output = model_from_schema(first["schema"])
    by_id = {r["id"]: r for r in spec["requests"]}

    class Generate(curator.LLM):
        def prompt(self, row):
            return by_id[row["id"]]["messages"]

        def parse(self, row, response):
            return {"id": row["id"], "answer": response.model_dump_json()}

    llm = Generate(
        model_name=spec["model"],
        backend="openai",
        response_format=output,
        generation_params={"max_tokens": first["max_tokens"], "temperature": first["temperature"]},
        backend_params={
            "base_url": spec["base_url"], "api_key": "none", "max_retries": args.max_retries,
            "require_all_responses": False, "request_timeout": 1800,
            "max_requests_per_minute": 100_000, "max_tokens_per_minute": 100_000_000,
        },
    )
    start = time.perf_counter()
    response = llm([{"id": r["id"]} for r in spec["requests"]])
    seconds = time.perf_counter() - start
    rows = response.dataset.to_list() if hasattr(response, "dataset") else list(response)
    from importlib.metadata import version

    print(json.dumps({"seconds": seconds, "answered": len(rows), "answers": {r["id"]: r["answer"] for r in rows},
                      "versions": {"bespokelabs-curator": version("bespokelabs-curator")}}))


if __name__ == "__main__":
    main()
