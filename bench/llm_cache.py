"""The LLM cache at scale: files, bytes, write and lookup speed of its layout (pending chunks
compacted into key-range partitions) against one JSON file per answer, measured in the same run.

An instant engine answers with texts of realistic length (`--answer-chars`, a synthesis
answer's JSON is about 1.5 KB); requests arrive as a stage sends them, a shard (`--shard`) at a
time, each shard its own scope, and the cache is compacted every `--compact-every` shards (a
stage run). Then shards of keys drawn at random from everything stored (a rerun with another
shard size) are looked up, and a shard of new keys (a first run). The baseline, one JSON file
per answer as earlier versions kept it, is written and looked up the same way at
`--baseline` answers (its file count grows one per answer; a million files is slow to make).

    .venv/bin/python bench/llm_cache.py [--requests 1000000] [--baseline 100000]
"""

from __future__ import annotations

import argparse
import json
import random
import tempfile
import time

import smoke

from synthq.tasks.core.lake import Lake
from synthq.tasks.llm import cache
from synthq.tasks.llm.cache import CachedEngine
from synthq.tasks.llm.engine import Request, Result


class Instant:
    model_name = "instant"

    def __init__(self, chars: int):
        self.chars = chars

    def generate(self, requests):
        return [Result(r.id, json.dumps({"query": (r.messages[-1]["content"] + " ") * (self.chars // 12)})[: self.chars], "stop", 900, 300)
                for r in requests]


def req(i: int) -> Request:
    return Request(f"syn:{i}", [{"role": "user", "content": f"document {i:09d}"}], {"type": "object"}, 512, 0.8)


def files_and_bytes(lake: Lake) -> tuple[int, int]:
    sizes = lake.fs.du(lake.path(cache.FOLDER), total=False)
    return len(sizes), sum(sizes.values())


def new_layout(lake: Lake, args) -> dict:
    engine, start, compacting = Instant(args.answer_chars), time.perf_counter(), 0.0
    shards = range(0, args.requests, args.shard)
    for n, first in enumerate(shards, start=1):
        CachedEngine(engine, lake, "m", scope=f"instructions-{n:06d}").generate([req(i) for i in range(first, min(first + args.shard, args.requests))])
        if n % args.compact_every == 0 or n == len(shards):
            t = time.perf_counter()
            cache.compact(lake)
            compacting += time.perf_counter() - t
    wrote = time.perf_counter() - start
    return {"write_s": wrote, "compact_s": compacting, **lookups(lake, args)}


def lookups(lake: Lake, args) -> dict:
    rng = random.Random(0)
    keys = CachedEngine(Instant(1), lake, "m")
    t = time.perf_counter()
    for _ in range(args.lookups):
        shard = [req(rng.randrange(args.requests_stored)) for _ in range(args.shard)]
        found = cache.lookup(lake, {keys.key(r) for r in shard}, "instructions-new")
        assert len(found) == len({r.id for r in shard}), "a stored answer was not found"
    hit_s = (time.perf_counter() - t) / args.lookups
    t = time.perf_counter()
    assert not cache.lookup(lake, {keys.key(req(10**9 + i)) for i in range(args.shard)}, "instructions-new")
    miss_s = time.perf_counter() - t
    files, size = files_and_bytes(lake)
    return {"hit_shard_s": hit_s, "miss_shard_s": miss_s, "files": files, "bytes": size}


def old_layout(lake: Lake, args) -> dict:
    """One JSON file per answer under cache/llm/<2 hex>/<key>.json, written and read as earlier versions did."""
    engine, keys, start = Instant(args.answer_chars), CachedEngine(Instant(1), lake, "m"), time.perf_counter()
    for first in range(0, args.baseline, args.shard):
        reqs = [req(i) for i in range(first, min(first + args.shard, args.baseline))]
        paths = [lake.path(cache.FOLDER, k[:2], f"{k}.json") for k in map(keys.key, reqs)]
        lake.fs.cat(paths, on_error="omit")  # the lookup before generating: all misses
        for path, res in zip(paths, engine.generate(reqs)):
            entry = {"text": res.text, "finish_reason": res.finish_reason, "prompt_tokens": res.prompt_tokens,
                     "output_tokens": res.output_tokens, "cached_tokens": 0}
            lake.write_bytes(path, json.dumps(entry).encode())
    wrote = time.perf_counter() - start
    return {"write_s": wrote, "compact_s": 0.0, **lookups(lake, args)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--requests", type=int, default=1_000_000)
    ap.add_argument("--baseline", type=int, default=100_000, help="answers written in the one-file-per-answer layout")
    ap.add_argument("--shard", type=int, default=1_000)
    ap.add_argument("--compact-every", type=int, default=100, help="shards per stage run")
    ap.add_argument("--lookups", type=int, default=5, help="shards of random stored keys looked up")
    ap.add_argument("--answer-chars", type=int, default=1_500)
    args = smoke.parse(ap, requests=6_000, baseline=3_000, compact_every=2, lookups=2)
    with tempfile.TemporaryDirectory() as tmp:
        args.requests_stored = args.requests
        new = new_layout(Lake(f"{tmp}/new"), args)
        args.requests_stored = args.baseline
        old = old_layout(Lake(f"{tmp}/old"), args)
    print(f"{args.requests:,} answers of {args.answer_chars:,} characters in shards of {args.shard:,}, compacted every "
          f"{args.compact_every} shards; baseline {args.baseline:,} answers one file each")
    print("| layout | answers | files | MB | answers written/s | compaction s | lookup of a shard of stored keys s | of new keys s |")
    print("|---|---|---|---|---|---|---|---|")
    for name, n, r in (("partitions", args.requests, new), ("one file per answer", args.baseline, old)):
        print(f"| {name} | {n:,} | {r['files']:,} | {r['bytes'] / 2**20:,.0f} | {n / r['write_s']:,.0f} | {r['compact_s']:.1f} | "
              f"{r['hit_shard_s']:.3f} | {r['miss_shard_s']:.3f} |")
    per_new, per_old = new["files"] / args.requests, old["files"] / args.baseline
    print(f"ratio files per answer partitions / one file each: {per_new / per_old:.5f} ({new['files']:,} files for "
          f"{args.requests:,} answers; one file each: {args.requests:,})")
    print(f"ratio answers written/s partitions / one file each: {(args.requests / new['write_s']) / (args.baseline / old['write_s']):.2f}")
    print(f"ratio lookup time of a shard partitions / one file each: {new['hit_shard_s'] / old['hit_shard_s']:.2f} "
          f"(at {args.requests:,} vs {args.baseline:,} answers stored)")


if __name__ == "__main__":
    main()
