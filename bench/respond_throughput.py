"""Respond stage vs bare `vllm.LLM.chat` on the same prompts with the same sampling, and
n samples in one request vs n separate requests.

The stage run is what a shard task does: expert identities, answers (`respond.samples` per
request), model-free checks, the LLM judge (with its repair round), the shard write, through
the engine's Ray actor and the LLM cache. Every batch it sends the engine is recorded; the
baseline, in the same run, replays the very same batches (prompts, sampling, n) through
`LLM.chat` of the same loaded engine inside its actor (bench/engines.py), prefix cache emptied
before each side. Both report output tokens/s; the ratio is the stage's efficiency (target >= 0.95).

Then, on the bare engine with an empty prefix cache each time: the answering requests as the
stage sends them (one request, n samples) vs the same prompts sent as n requests of one
sample: prompt tokens prefilled, wall time, output tokens/s.

The queries are the bundled sample's seed instructions (real user requests).

    .venv/bin/python bench/respond_throughput.py [--queries 16] [--set respond.samples=4] [--smoke]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from dataclasses import replace

import pyarrow as pa
import smoke
from engines import bare_chat, engine_pool, on_engine, reset_prefix_cache
from synth_throughput import Timed

from synthq.tasks.core.config import FactoryConfig, load_config, parse_override
from synthq.tasks.core.lake import Lake, StageResult
from synthq.tasks.core.records import CURATED, REJECTED, table
from synthq.tasks.sample import SEEDS

SMOKE = ["respond.max_answer_tokens=48", "respond.expert_max_tokens=64", "respond.judge_max_tokens=128"]
KINDS = ("expert", "answer", "judge")


def curated_queries(n: int) -> pa.Table:
    seeds = [json.loads(line) for line in SEEDS.read_text().splitlines() if line.strip()][:n]
    base = {f.name: None for f in CURATED}
    rows = [
        {**base, "id": f"seed-{s['id']}", "query": s["prompt"], "document_id": "", "document_url": "", "demonstration_ids": [],
         "thought": "", "scene": "", "query_compositions": dict.fromkeys(("ability", "knowledge", "extra_information", "output"), ""),
         "model": "seed", "prompt_version": "seed", "score_total": 7, "topic": -1, "moderation": "", "moderation_categories": []}
        for s in seeds
    ]
    return table(rows, CURATED)


def run_stage(cfg: FactoryConfig, queries) -> dict:
    from synthq.tasks.shards.stage import run_shard
    from synthq.tasks.respond.process import STAGE_SPEC, query_specs

    lake = Lake(cfg.lake)
    lake.write_shard("curated", "00000", StageResult(queries, REJECTED.empty_table()), input_id="bench", config="bench")
    engine = engine_pool(cfg)
    on_engine(engine, reset_prefix_cache)
    timed, load = Timed(engine), os.getloadavg()[0]
    start = time.perf_counter()
    rows = [run_shard(STAGE_SPEC, spec, cfg, timed) for spec in query_specs(lake, queries.num_rows)]
    elapsed = time.perf_counter() - start
    return {"seconds": elapsed, "rows": rows, "timed": timed, "engine": engine, "load": (load, os.getloadavg()[0]),
            **rows[0]["stats"]["llm"]}


def replay(engine, batches: list[list]) -> tuple[dict, dict, dict]:
    """The stage's batches replayed in order; then the answers as n-sample requests vs n requests
    (in the engine's actor: on_engine)."""
    engine.llm.reset_prefix_cache()
    parts = [bare_chat(engine, requests) for requests in batches]
    whole = {k: sum(p[k] for p in parts) for k in parts[0]} | {"parts": parts}
    answers = next(requests for requests in batches if requests[0].id.startswith("answer:"))
    engine.llm.reset_prefix_cache()
    one = bare_chat(engine, answers)
    engine.llm.reset_prefix_cache()
    split = [replace(r, id=f"{r.id}/{k}", n=1) for r in answers for k in range(r.n)]
    many = bare_chat(engine, split)
    return whole, one, many


def per_kind(batches, queries: int) -> dict:
    """Prompt and output tokens per query for the expert call, the answers and the judge."""
    out = {k: {"requests": 0, "prompt_tokens": 0, "output_tokens": 0} for k in KINDS}
    for requests, results in batches:
        for req, res in zip(requests, results):
            kind = out[req.id.split(":", 1)[0]]
            kind["requests"] += 1
            kind["prompt_tokens"] += res.prompt_tokens
            kind["output_tokens"] += sum(s.output_tokens for s in res.samples())
    return {k: {key: v / queries for key, v in d.items()} for k, d in out.items()}


def report(stage: dict, replay: dict, one: dict, many: dict, queries: int, samples: int) -> None:
    s_rate, b_rate = stage["output_tokens"] / stage["seconds"], replay["output_tokens"] / replay["seconds"]
    row = stage["rows"][0]
    print(f"\nstage: {queries} queries x {samples} samples in {stage['seconds']:.1f}s; answers kept {row['kept']}, "
          f"rejected rows {row['rejected']} {row['reasons']}; load average {stage['load'][0]:.1f} -> {stage['load'][1]:.1f}")
    print(f"  {stage['calls']} LLM calls, output {stage['output_tokens']} tokens = {s_rate:.1f} tok/s")
    inside = sum(c["seconds"] for c in stage["timed"].calls)
    print(f"  in the engine {inside:.1f}s, outside (prompts, checks, parsing, cache, shard write) {stage['seconds'] - inside:.1f}s")
    print(f"bare LLM.chat, the same {replay['requests']} requests in the same batches: {replay['seconds']:.1f}s, "
          f"output {replay['output_tokens']} tokens = {b_rate:.1f} tok/s")
    print(f"ratio stage / bare (output tokens/s): {s_rate / b_rate:.3f}")
    for call, (requests, _), bare in zip(stage["timed"].calls, stage["timed"].batches, replay["parts"]):
        print(f"  batch {requests[0].id.split(':')[0]:7s} {call['requests']:3d} requests: stage {call['seconds']:6.1f}s "
              f"{call['output_tokens']:6d} tokens, bare {bare['seconds']:6.1f}s {bare['output_tokens']:6d} tokens")
    prefill_one, prefill_many = one["prompt_tokens"] - one["cached_tokens"], many["prompt_tokens"] - many["cached_tokens"]
    r_one, r_many = one["output_tokens"] / one["seconds"], many["output_tokens"] / many["seconds"]
    print(f"\nanswers, {samples} samples per query: one request with n={samples}: {one['requests']} requests, "
          f"{prefill_one} prompt tokens prefilled, {one['seconds']:.1f}s, {r_one:.1f} output tok/s")
    print(f"  as {samples} requests of one sample: {many['requests']} requests, {prefill_many} prompt tokens prefilled, "
          f"{many['seconds']:.1f}s, {r_many:.1f} output tok/s")
    print(f"ratio n-in-one / n requests: prefill tokens {prefill_one / max(prefill_many, 1):.3f} "
          f"({prefill_many - prefill_one} saved), output tokens/s {r_one / r_many:.3f}")
    print("\ntokens per query (stage, repairs included):")
    for kind, d in per_kind(stage["timed"].batches, queries).items():
        print(f"  {kind:7s} requests {d['requests']:.2f}  prompt {d['prompt_tokens']:7.0f}  output {d['output_tokens']:6.0f}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--queries", type=int, default=16, help="seed instructions of the sample to answer (40 in all)")
    ap.add_argument("--set", dest="sets", action="append", default=[], help="config override, e.g. respond.samples=4")
    args = smoke.parse(ap, queries=2)
    queries, sets = args.queries, (SMOKE + args.sets) if args.smoke else args.sets
    with tempfile.TemporaryDirectory() as tmp:
        cfg = load_config(None, {"lake": tmp, **dict(parse_override(s) for s in sets)})
        stage = run_stage(cfg, curated_queries(queries))
        whole, one, many = on_engine(stage["engine"], replay, [requests for requests, _ in stage["timed"].batches])
    report(stage, whole, one, many, queries, cfg.respond.samples)


if __name__ == "__main__":
    main()
