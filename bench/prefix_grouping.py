"""Prefill of grouped synthesis prompts vs the same prompts shuffled vs per-document draws.

Three sets of synthesis requests over the same sample documents, each run once on the
in-process engine (inside the engine pool's actor, bench/engines.py) with a cold prefix cache
and `max_tokens=1`, so the time is prefill:

- grouped: the stage's requests (similar documents share one demonstration block, sent
  consecutively);
- shuffled: exactly the same prompts in random order;
- per document: the method's own draw (group_size 1, similar_fraction 0), no shared block.

Reported: prompt tokens, tokens served from the prefix cache, tokens actually prefilled, time,
and prompt tokens/s (the rate at which prompts are consumed). Ratios are against the
per-document draw and the shuffled order measured in the same run.

Within one engine call vLLM finds a shared block whatever the order of the requests, so
grouped and shuffled hit the cache alike: the gain is in sharing the block. Sending a group
consecutively is what keeps it whole within one call when a shard is split across calls or
engine replicas.

    .venv/bin/python bench/prefix_grouping.py [--docs 16] [--set synthesize.group_size=16 ...]
"""

from __future__ import annotations

import random
import tempfile
import time
from dataclasses import replace

from engines import engine_pool, on_engine
from synth_throughput import bench_args, stage_requests, working_config

from synthq.tasks.core.config import FactoryConfig
from synthq.tasks.llm.engine import Request


def requests_for(cfg: FactoryConfig, **synthesize) -> list[Request]:
    """The stage's requests with these synthesize settings, cut to one output token."""
    cfg = cfg.model_copy(update={"synthesize": cfg.synthesize.model_copy(update=synthesize)})
    return [replace(r, max_tokens=1) for r in stage_requests(cfg)]


def prefill(engine, requests: list[Request]) -> dict:
    engine.llm.reset_prefix_cache()
    start = time.perf_counter()
    results = engine.generate(requests)
    seconds = time.perf_counter() - start
    prompt = sum(r.prompt_tokens for r in results)
    cached = sum(r.cached_tokens for r in results)
    return {"seconds": seconds, "prompt": prompt, "cached": cached, "prefilled": prompt - cached, "rate": prompt / seconds}


def main() -> None:
    args = bench_args(16)
    with tempfile.TemporaryDirectory() as tmp:
        cfg = working_config(tmp, args.docs, args.sets, args.smoke)
        grouped = requests_for(cfg)
        shuffled = random.Random(0).sample(grouped, k=len(grouped))
        per_document = requests_for(cfg, group_size=1, similar_fraction=0.0)

        engine = engine_pool(cfg)
        engine.generate(per_document[:1])  # warm-up: schema compilation, first kernels
        runs = {name: on_engine(engine, prefill, requests)
                for name, requests in (("grouped", grouped), ("shuffled", shuffled), ("per document", per_document))}

    s = cfg.synthesize
    print(f"\n{len(grouped)} requests, group_size {s.group_size}, similar_fraction {s.similar_fraction}, prompt budget {s.prompt_tokens}")
    print(f"{'':14s} {'prompt tok':>10s} {'cached':>8s} {'prefilled':>9s} {'seconds':>8s} {'prompt tok/s':>12s}")
    for name, r in runs.items():
        print(f"{name:14s} {r['prompt']:10d} {r['cached']:8d} {r['prefilled']:9d} {r['seconds']:8.1f} {r['rate']:12.0f}")
    g, sh, pd = runs["grouped"], runs["shuffled"], runs["per document"]
    print(f"grouped vs per document: prompt tok/s x{g['rate'] / pd['rate']:.2f}, time per request x{(g['seconds'] / len(grouped)) / (pd['seconds'] / len(per_document)):.2f}")
    print(f"grouped vs shuffled:     prompt tok/s x{g['rate'] / sh['rate']:.2f}, time x{g['seconds'] / sh['seconds']:.2f}")


if __name__ == "__main__":
    main()
