"""Reading seed instructions: JSONL with `id` and `prompt`, every bad line rejected by name.

A bad line never stops the run: it becomes a rejection that names the file, the line and
what was wrong. Only a file with no usable seed at all is an error.
"""

from __future__ import annotations

import json
import os

from tasks.core.errors import InputError, SeedFileError
from tasks.core.records import rejection

STAGE = "attribute"
MAX_PROMPT_CHARS = 20_000  # a seed longer than this is a document, not an instruction


def _check(obj, where: str) -> str | None:
    if not isinstance(obj, dict):
        return f"{where}: expected a JSON object with 'id' and 'prompt', got {type(obj).__name__}"
    seed_id, prompt = obj.get("id"), obj.get("prompt")
    if seed_id is None or (isinstance(seed_id, str) and not seed_id.strip()):
        return f"{where}: missing 'id'"
    if not isinstance(seed_id, (str, int)) or isinstance(seed_id, bool):
        return f"{where}: 'id' must be a string or an integer"
    if not isinstance(prompt, str) or not prompt.strip():
        return f"{where}: missing or empty 'prompt' (a non-empty string)"
    if len(prompt) > MAX_PROMPT_CHARS:
        return f"{where}: 'prompt' has {len(prompt)} characters, over {MAX_PROMPT_CHARS}"
    return None


def load_seeds(path: str) -> tuple[list[dict], list[dict]]:
    """(seeds, rejections). Raises when the file is missing or holds no usable seed."""
    if not os.path.isfile(path):
        raise InputError(f"Seed file '{path}' does not exist: give a JSONL file with 'id' and 'prompt'.")
    seeds, rejected, seen = [], [], set()
    with open(path, encoding="utf-8-sig", errors="replace") as f:  # -sig: a byte-order mark is not part of line 1
        for n, line in enumerate(f, start=1):
            where = f"{path}:{n}"
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as e:
                rejected.append(rejection(STAGE, "bad_seed", f"{where}: not valid JSON ({e.msg})", where, line[:2000]))
                continue
            problem = _check(obj, where)
            if problem is None and str(obj["id"]) in seen:
                problem = f"{where}: duplicate id '{obj['id']}'"
            if problem:
                rejected.append(rejection(STAGE, "bad_seed", problem, where, obj))
                continue
            seen.add(str(obj["id"]))
            seeds.append({"id": str(obj["id"]), "prompt": obj["prompt"].strip()})
    if not seeds:
        first = "; ".join(r["detail"] for r in rejected[:3]) or "the file is empty"
        raise SeedFileError(f"Seed file '{path}' has no usable seed ({len(rejected)} bad lines): {first}")
    return seeds, rejected
