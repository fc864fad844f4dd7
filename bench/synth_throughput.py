"""Synthesize stage end to end vs bare `vllm.LLM.chat` on exactly the same prompts.

The stage run is what a shard task does: read the documents shard, group documents and build
the requests, send them through the engine pool (Ray actor) and the LLM cache, parse and
validate (with one repair round), write the shard. The baseline, measured in the same run,
hands the very same prompts with the same sampling to `LLM.chat` of the same loaded engine,
inside its actor (bench/engines.py), with the prefix cache emptied before each side. Both
report output tokens/s; the ratio is the stage's efficiency (target >= 0.95). One-time costs
of a worker process (model load, tokenizer and embedder load, embedding the demonstration
pool) are left out of both and printed apart. Tokens per instruction come from the stage's
shard statistics.

The lake (documents + demonstrations from the bundled sample) is built once with synthq's
own commands and kept under the model cache; other benches reuse it. With RAY_ADDRESS set, the
bench (and the commands building that lake) join that Ray cluster and its loaded engine.

    .venv/bin/python bench/synth_throughput.py [--docs 16] [--set synthesize.group_size=8 ...]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import smoke
from engines import bare_chat, engine_pool, on_engine, reset_prefix_cache

from synthq.tasks.core.config import FactoryConfig, load_config, parse_override
from synthq.tasks.shards.context import StageContext
from synthq.tasks.core.lake import Lake, StageResult
from synthq.tasks.core.records import REJECTED
from synthq.tasks.llm.models import cache_dir

READY = "_bench_ready"


SMOKE_SEEDS = 4  # seeds grounded for the smoke runs' sample lake


def sample_lake(smoke: bool = False) -> Path:
    """Documents and demonstrations of the bundled sample (ingest + attribute on the bundled
    model), built once and kept in the cache. For --smoke: from a few seeds, grounded by the
    test suite's stub endpoint (tests/llm/faults.py: instant, schema-valid answers), since the
    benches measure the synthesis that follows, not the grounding."""
    lake = cache_dir() / "bench" / ("sample-lake-smoke" if smoke else "sample-lake")
    if (lake / READY).exists():
        return lake
    shutil.rmtree(lake, ignore_errors=True)
    lake.mkdir(parents=True)
    with contextlib.ExitStack() as stack:
        extra = []
        if smoke:
            from synthq.tasks.sample import SEEDS

            sys.path[:0] = [str(Path(__file__).resolve().parents[1])]
            from tests.llm.faults import Faulty

            stub = stack.enter_context(Faulty(rate=0.0))
            seeds = lake / "seeds.jsonl"
            seeds.write_text("\n".join(SEEDS.read_text().splitlines()[:SMOKE_SEEDS]) + "\n")
            extra = [f"attribute.seeds={seeds}", "attribute.document_tokens=256", "attribute.min_retrieval_score=-1",
                     *(f"{k}={v}" for k, v in stub.engine_settings().items())]
        for command in ("ingest", "attribute"):
            print(f"building the sample lake once: synthq {command}", flush=True)
            sets = [x for s in ["shard_size=64", *extra] for x in ("--set", s)]
            subprocess.run([str(Path(sys.executable).parent / "synthq"), command, "--lake", str(lake), *sets], check=True)
    (lake / READY).touch()
    return lake


def working_config(tmp: str, docs: int, sets: list[str], smoke: bool = False) -> FactoryConfig:
    """A fresh copy of the sample lake, cut to `docs` documents in one shard."""
    shutil.copytree(sample_lake(smoke), tmp, dirs_exist_ok=True, ignore=shutil.ignore_patterns("cache"))
    cfg = load_config(None, {"lake": tmp, "shard_size": 64, **dict(parse_override(s) for s in sets)})
    lake = Lake(tmp)
    table = lake.read("documents")
    if table.num_rows > docs or len(lake.shards("documents")) > 1:
        for shard in lake.shards("documents"):
            lake.fs.rm(lake.path("documents", "_manifest", f"{shard}.json"))
        one = StageResult(table.slice(0, docs), REJECTED.empty_table(), {})
        lake.write_shard("documents", "00000", one, input_id=f"bench-{docs}", config="bench")
    return cfg


def stage_context(cfg: FactoryConfig, engine=None) -> StageContext:
    """The context a shard task builds, with its one-time loads done (tokenizer, embedder,
    demonstration vectors): what every later shard of a worker finds ready."""
    from synthq.tasks.core.embeddings import embed
    from synthq.tasks.synthesize.process import prepare

    ctx = StageContext(cfg=cfg, lake=Lake(cfg.lake), engine=engine)
    ctx.tokens.count("warm")
    embed(["warm"], cfg.embedder)
    prepare(ctx)
    return ctx


class Timed:
    """The engine with each call's size, duration and output tokens recorded: the first round,
    then the repair round."""

    def __init__(self, inner):
        self.inner, self.model_name, self.calls, self.batches = inner, inner.model_name, [], []

    def generate(self, requests):
        start = time.perf_counter()
        out = self.inner.generate(requests)
        self.calls.append({"requests": len(requests), "seconds": time.perf_counter() - start,
                           "output_tokens": sum(s.output_tokens for r in out for s in r.samples())})
        self.batches.append((requests, out))
        return out


def run_stage(cfg: FactoryConfig, engine) -> dict:
    from synthq.tasks.shards.stage import run_shard, upstream_specs
    from synthq.tasks.synthesize.process import STAGE_SPEC

    start = time.perf_counter()
    stage_context(cfg)
    on_engine(engine, reset_prefix_cache)
    print(f"stage: worker warmed in {time.perf_counter() - start:.0f}s (not timed)", flush=True)
    timed, load = Timed(engine), os.getloadavg()[0]
    start = time.perf_counter()
    rows = [run_shard(STAGE_SPEC, spec, cfg, timed) for spec in upstream_specs(Lake(cfg.lake), "documents")]
    elapsed = time.perf_counter() - start
    stats = rows[0]["stats"]
    # the shard's LLM totals, then the engine calls as timed here (a list, not the manifest's count)
    return {"seconds": elapsed, "kept": rows[0]["kept"], "rejected": rows[0]["rejected"],
            "load": (load, os.getloadavg()[0]), **stats, **stats["llm"], "calls": timed.calls}


def same_prompts(cfg: FactoryConfig, requests) -> int:
    """How many of these requests the stage sent: each has an entry in the stage's LLM cache."""
    from synthq.tasks.llm.cache import CachedEngine, compact, lookup

    lake = Lake(cfg.lake)
    compact(lake)  # the stage's shards left their answers pending, each in its own scope
    keys = [CachedEngine(None, lake, cfg.engine.model).key(r) for r in requests]
    found = lookup(lake, set(keys), "_")
    return sum(k in found for k in keys)


def stage_requests(cfg: FactoryConfig) -> list:
    """The requests the synthesize stage builds for the lake's documents with this config."""
    from synthq.tasks.synthesize.plan import build_requests

    ctx = stage_context(cfg)
    docs = ctx.lake.read("documents").to_pylist()
    return [p.request for p in build_requests(docs, ctx.extras["demonstrations"], ctx)]


def bench_args(docs: int, server: bool = False) -> argparse.Namespace:
    """--docs, --set and --smoke (2 documents, outputs cut at 128 tokens), shared by the synthesis
    benches; --server for those that also measure an OpenAI-compatible server."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--docs", type=int, default=docs, help="documents of the sample to synthesize from (36 in all)")
    ap.add_argument("--set", dest="sets", action="append", default=[], help="config override, e.g. synthesize.group_size=4")
    if server:
        ap.add_argument("--server", help="base URL of a running vLLM OpenAI-compatible server with the engine's settings "
                                         "(default: one is started for the bench)")
    args = smoke.parse(ap, docs=2)
    if args.smoke:
        args.sets = ["synthesize.max_output_tokens=128", "synthesize.prompt_tokens=2200", *args.sets]
    return args


def run_bare(cfg: FactoryConfig, engine) -> dict:
    requests = stage_requests(cfg)
    matched = same_prompts(cfg, requests)
    load = os.getloadavg()[0]
    on_engine(engine, reset_prefix_cache)
    bare = on_engine(engine, bare_chat, requests)
    return {**bare, "same_prompts": matched, "load": (load, os.getloadavg()[0])}


def report(stage: dict, bare: dict) -> None:
    n = stage["documents"]
    s_rate, b_rate = stage["output_tokens"] / stage["seconds"], bare["output_tokens"] / bare["seconds"]
    print(f"\nstage: {n} documents in {stage['seconds']:.1f}s, kept {stage['kept']}, rejected {stage['rejected']}, "
          f"repaired {stage.get('llm', {}).get('repaired', 0)}; {stage['groups']} groups of {stage['mean_group_size']:.1f}, "
          f"{stage['mean_demonstrations']:.1f} demonstrations ({stage['mean_shared_block_tokens']:.0f} tokens) shared per group")
    print(f"  output {stage['output_tokens']} tokens = {s_rate:.1f} tok/s; machine load average {stage['load'][0]:.1f} -> {stage['load'][1]:.1f}")
    for name, call in zip(("first round", "repair round"), stage["calls"]):
        print(f"  {name}: {call['requests']} requests, {call['seconds']:.1f}s in the engine, {call['output_tokens'] / call['seconds']:.1f} output tok/s")
    outside = stage["seconds"] - sum(c["seconds"] for c in stage["calls"])
    print(f"  outside the engine (grouping, prompts, parsing, cache and shard writes): {outside:.1f}s")
    print(f"bare LLM.chat: {bare['requests']} requests ({bare['same_prompts']} found in the stage's LLM cache: same prompts) "
          f"in {bare['seconds']:.1f}s, output {bare['output_tokens']} tokens = {b_rate:.1f} tok/s, {bare['truncated']} cut at max_tokens; "
          f"load average {bare['load'][0]:.1f} -> {bare['load'][1]:.1f}")
    first = stage["calls"][0]
    print(f"ratio stage / bare (output tokens/s): {s_rate / b_rate:.3f}   (wall time ratio bare/stage: {bare['seconds'] / stage['seconds']:.3f})")
    print(f"ratio first round (same requests through pool, cache, Ray) / bare: {first['output_tokens'] / first['seconds'] / b_rate:.3f}")
    print("\ntokens per instruction (stage, repairs included; per document):")
    for key in ("prompt_tokens", "cached_tokens", "output_tokens"):
        print(f"  {key:14s} {stage[key] / n:8.0f}")
    print(f"  prefilled      {(stage['prompt_tokens'] - stage['cached_tokens']) / n:8.0f}  (prompt minus prefix-cache hits)")
    print(f"bare, first attempt only: prompt {bare['prompt_tokens'] / bare['requests']:.0f}, cached {bare['cached_tokens'] / bare['requests']:.0f}, "
          f"output {bare['output_tokens'] / bare['requests']:.0f} per request")


def main() -> None:
    args = bench_args(16)
    with tempfile.TemporaryDirectory() as tmp:
        cfg = working_config(tmp, args.docs, args.sets, args.smoke)
        engine = engine_pool(cfg)
        stage = run_stage(cfg, engine)
        bare = run_bare(cfg, engine)
    report(stage, bare)


if __name__ == "__main__":
    main()
