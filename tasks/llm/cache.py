"""A content-addressed cache in front of any engine, stored in the lake.

The key is a hash of what determines the output: the model, the full prompt (messages), the
JSON schema and every sampling setting (max tokens, temperature, frequency penalty, seed, and
the number of samples when a request asks for more than one; all its samples are one entry).
The request id does not enter it except through the per-request seed it derives, and ids
never carry a shard name, so a rerun with another shard size finds every earlier answer whose
prompt it rebuilds. A changed prompt has a new text, hence a new key: it misses (synthesis
prompts share a block chosen for a group of documents of the shard, so re-sharding that stage
regroups its documents and generates again).

One small JSON file per entry under `cache/llm/<2 hex>/<key>.json`, written atomically
(temp file + rename): many Ray workers can write at once, and two writers of the same key
write the same answer. Misses go to the engine in chunks and each chunk is stored before the
next one starts, so a crash or kill loses at most one chunk of generation. Results that
carry a transport error are not stored: they are retried next time.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass

from synthq.tasks.core.lake import Lake
from synthq.tasks.llm.engine import Engine, Request, Result, sample_id

FOLDER = "cache/llm"


@dataclass
class CacheStats:
    hits: int = 0
    misses: int = 0
    stored: int = 0


class CachedEngine:
    """Wraps an engine; same protocol. `stats` counts hits and misses since creation."""

    def __init__(self, inner: Engine, lake: Lake, model_key: str, chunk: int = 256):
        self.inner, self.lake, self.model_key, self.chunk = inner, lake, model_key, max(1, chunk)
        self.stats = CacheStats()

    @property
    def model_name(self) -> str:
        return self.inner.model_name

    def key(self, req: Request) -> str:
        blob = json.dumps(
            {
                "model": self.model_key,
                "messages": req.messages,
                "schema": req.schema,
                "max_tokens": req.max_tokens,
                "temperature": req.temperature,
                "frequency_penalty": req.frequency_penalty,
                "seed": req.sampling_seed(),
                **({"n": req.n} if req.n > 1 else {}),  # keys of single-sample requests stay as they were
            },
            sort_keys=True,
            ensure_ascii=False,
        )
        return hashlib.sha256(blob.encode()).hexdigest()

    def _path(self, key: str) -> str:
        return self.lake.path(FOLDER, key[:2], f"{key}.json")

    def generate(self, requests: list[Request]) -> list[Result]:
        paths = [self._path(self.key(r)) for r in requests]
        found = self.lake.fs.cat(paths, on_error="omit") if paths else {}  # keys: paths without protocol
        out: dict[str, Result] = {}
        missing: list[tuple[Request, str]] = []
        for req, path in zip(requests, paths):
            raw = found.get(self.lake.fs._strip_protocol(path))
            entry = _parse(raw) if raw else None
            if entry is None:
                missing.append((req, path))
            else:
                out[req.id] = _result(req.id, entry)
        self.stats.hits += len(requests) - len(missing)
        self.stats.misses += len(missing)
        for start in range(0, len(missing), self.chunk):
            part = missing[start : start + self.chunk]
            by_id = {r.id: r for r in self.inner.generate([req for req, _ in part])}
            for req, path in part:
                res = by_id.get(req.id) or Result(req.id, "", None, error="engine returned no result")
                out[req.id] = res
                if not res.error:
                    self.lake.write_bytes(path, json.dumps(_entry(res), ensure_ascii=False).encode())
                    self.stats.stored += 1
        return [out[r.id] for r in requests]

    def report(self) -> dict:
        return asdict(self.stats)


def _entry(res: Result) -> dict:
    entry = {
        "text": res.text, "finish_reason": res.finish_reason,
        "prompt_tokens": res.prompt_tokens, "output_tokens": res.output_tokens, "cached_tokens": res.cached_tokens,
    }
    if res.more:
        entry["more"] = [{"text": m.text, "finish_reason": m.finish_reason, "output_tokens": m.output_tokens} for m in res.more]
    return entry


def _result(request_id: str, entry: dict) -> Result:
    more = [Result(sample_id(request_id, k), **m) for k, m in enumerate(entry.pop("more"), start=1)]
    return Result(request_id, **entry, more=more)


def _parse(raw: bytes) -> dict | None:
    """A stored entry, or None when it is unreadable (then the request is generated again)."""
    try:
        entry = json.loads(raw)
        fields = {k: entry[k] for k in ("text", "finish_reason", "prompt_tokens", "output_tokens")}
        more = [{k: m[k] for k in ("text", "finish_reason", "output_tokens")} for m in entry.get("more", [])]
        return {**fields, "cached_tokens": int(entry.get("cached_tokens", 0)), "more": more}
    except (ValueError, KeyError, TypeError):
        return None
