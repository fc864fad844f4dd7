"""Shards that call the engine at once: batched together in its actor vs served one at a time.

A stage's shard tasks run side by side and each sends its batch to the one engine actor. The
actor takes the calls that arrive while it is busy into one batch (synthq.tasks.llm.coalesce);
before, it ran them one after the other. Here S callers (threads of this driver, each a Ray
call to the pool, as shard tasks make) send K requests each at the same moment: seed
instructions of the bundled sample answered as JSON, greedy, `--max-tokens` each. The baseline,
in the same run on the same loaded engine, runs the very same calls one after another inside
the actor (what it did before). Both start with an empty prefix cache. Reported: wall time,
output tokens/s and engine batches of each, and their ratio.

    .venv/bin/python bench/engine_batching.py [--shards 4] [--per-shard 6] [--max-tokens 192]
"""

from __future__ import annotations

import argparse
import json
import time
from concurrent.futures import ThreadPoolExecutor

import ray
import smoke
from engines import engine_pool, on_engine, reset_prefix_cache

from synthq.tasks.core.config import FactoryConfig
from synthq.tasks.llm.engine import Request
from synthq.tasks.sample import SEEDS

SCHEMA = {"type": "object", "properties": {"answer": {"type": "string", "maxLength": 1200}}, "required": ["answer"]}


def shard_calls(shards: int, per_shard: int, max_tokens: int) -> list[list[Request]]:
    prompts = [json.loads(line)["prompt"] for line in SEEDS.read_text().splitlines() if line.strip()]
    return [
        [Request(f"s{s}-{i}", [{"role": "user", "content": prompts[(s * per_shard + i) % len(prompts)]}], SCHEMA,
                 max_tokens=max_tokens, temperature=0.0) for i in range(per_shard)]
        for s in range(shards)
    ]


def one_by_one(engine, calls: list[list[Request]]) -> list:
    """The calls in turn on the bare engine (in its actor: on_engine), as the actor served them before."""
    return [engine.generate(requests) for requests in calls]


def measure(run) -> dict:
    start = time.perf_counter()
    results = run()
    seconds = time.perf_counter() - start
    tokens = sum(r.output_tokens for call in results for r in call)
    return {"seconds": seconds, "tokens": tokens, "rate": tokens / seconds}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shards", type=int, default=4, help="callers sending at once (shard tasks of a stage)")
    ap.add_argument("--per-shard", type=int, default=6, help="requests in each call")
    ap.add_argument("--max-tokens", type=int, default=192)
    args = smoke.parse(ap, shards=2, per_shard=2, max_tokens=24)
    cfg = FactoryConfig()
    engine = engine_pool(cfg)
    calls = shard_calls(args.shards, args.per_shard, args.max_tokens)
    engine.generate(calls[0][:1])  # warm-up: schema compilation, first kernels
    actor = engine.handles[0]

    on_engine(engine, reset_prefix_cache)
    before = ray.get(actor.stats.remote())["engine_batches"]
    with ThreadPoolExecutor(len(calls)) as pool:
        together = measure(lambda: list(pool.map(engine.generate, calls)))
    together["batches"] = ray.get(actor.stats.remote())["engine_batches"] - before

    on_engine(engine, reset_prefix_cache)
    apart = measure(lambda: on_engine(engine, one_by_one, calls))
    apart["batches"] = len(calls)

    n = sum(len(c) for c in calls)
    print(f"\n{len(calls)} calls of {args.per_shard} requests ({n} in all), at most {args.max_tokens} output tokens each, greedy")
    for name, r in (("sent at once, batched", together), ("one after another", apart)):
        print(f"{name:22s} {r['seconds']:7.1f}s  {r['tokens']:6d} output tokens  {r['rate']:6.1f} tok/s  in {r['batches']} engine batches")
    print(f"ratio batched / one after another: output tok/s {together['rate'] / apart['rate']:.2f}, "
          f"wall time {together['seconds'] / apart['seconds']:.2f}")


if __name__ == "__main__":
    main()
