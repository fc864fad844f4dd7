"""The openai engine against a local vLLM OpenAI-compatible server vs the in-process engine.

The same synthesis requests (the stage's grouped requests over sample documents) go first
through OpenAIEngine to `vllm serve` (the CPU build's API server, started here with the
engine's settings, or the one `--server` names), then through the in-process engine (the
factory's engine pool, bench/engines.py). A server started here is stopped before the pool
loads: two busy engines do not fit 2 cores at once (an idle one costs nothing). Each engine is
warmed with one request, and the pool's prefix cache emptied, before the timed run. Reported:
requests/s and output tokens/s of each, and their ratio.

On the same server, before it stops, Bespoke Curator's online backend gets the same messages
and schema (bench/peers/curator.py: its own environment, installed by a full run): output
tokens/s from the server's counter, the ratio, and what each does with outputs that fail the
schema, counted.

    .venv/bin/python bench/openai_vs_inprocess.py [--docs 12] [--server http://127.0.0.1:8000/v1]
"""

from __future__ import annotations

import os
import tempfile
import time
from collections import Counter
from dataclasses import replace
from pathlib import Path

from peers import curator
from peers.envs import peer_python
from engines import engine_pool, on_engine, openai_server, reset_prefix_cache
from synth_throughput import bench_args, stage_requests, working_config

from synthq.tasks.core.config import FactoryConfig
from synthq.tasks.llm.engine import Request


def timed(engine, requests: list[Request]) -> dict:
    engine.generate([replace(requests[0], id="warm", max_tokens=8)])
    load = os.getloadavg()[0]
    start = time.perf_counter()
    results = engine.generate(requests)
    seconds = time.perf_counter() - start
    errors = [r.error for r in results if r.error]
    return {
        "seconds": seconds, "rps": len(requests) / seconds, "errors": len(errors), "first_error": errors[:1],
        "output_tokens": sum(r.output_tokens for r in results), "cached": sum(r.cached_tokens for r in results),
        "prompt_tokens": sum(r.prompt_tokens for r in results), "load": (load, os.getloadavg()[0]),
        "verdicts": dict(Counter("error" if r.error else curator.verdict(r.text, q.schema, r.finish_reason) for r, q in zip(results, requests))),
    }


def over_http(cfg: FactoryConfig, requests: list[Request], workdir: str, peer: Path | None, server: str | None) -> tuple[dict, dict | None]:
    from synthq.tasks.llm.openai_engine import OpenAIEngine
    from synthq.tasks.llm.vllm_engine import has_gpu

    log_path = os.path.join(workdir, "serve.log")
    with openai_server(cfg.engine, server, log_path) as (url, name):
        # the CPU build's server fails on seeded requests whose prompts are prefilled in chunks
        http = cfg.engine.model_copy(update={"kind": "openai", "base_url": url, "model": name, "seed_per_request": has_gpu()})
        before = curator.generated_tokens(url)
        result = timed(OpenAIEngine(http), requests)
        result["server_tokens"] = curator.generated_tokens(url) - before
        if result["errors"] and os.path.exists(log_path):
            print(open(log_path).read()[-3000:])
        work = Path(workdir) / "curator"
        work.mkdir()
        return result, curator.curator(peer, url, name, requests, work) if peer else None


def in_process(cfg: FactoryConfig, requests: list[Request]) -> dict:
    engine = engine_pool(cfg)
    on_engine(engine, reset_prefix_cache)
    return timed(engine, requests)


def main() -> None:
    args = bench_args(12, server=True)
    with tempfile.TemporaryDirectory() as tmp:
        cfg = working_config(tmp, args.docs, args.sets, args.smoke)
        requests = stage_requests(cfg)
        peer, why = peer_python(curator.PEER_ENV, curator.PEER, install=not args.smoke)
        http, theirs = over_http(cfg, requests, tmp, peer, args.server)
        local = in_process(cfg, requests)
    print(f"\n{len(requests)} synthesis requests, same prompts and sampling")
    for name, r in (("openai engine -> vllm serve", http), ("in-process engine", local)):
        print(f"{name:28s} {r['seconds']:7.1f}s  {r['rps']:.3f} req/s  {r['output_tokens'] / r['seconds']:6.1f} output tok/s  "
              f"prompt {r['prompt_tokens']} (cached {r['cached']})  errors {r['errors']} {r['first_error'] or ''}  "
              f"load average {r['load'][0]:.1f} -> {r['load'][1]:.1f}")
    print(f"ratio openai / in-process: requests/s {http['rps'] / local['rps']:.3f}, "
          f"output tok/s {(http['output_tokens'] / http['seconds']) / (local['output_tokens'] / local['seconds']):.3f}")
    n, mine = len(requests), http["server_tokens"] / http["seconds"]
    print(f"outputs against the schema: openai engine {http['verdicts']}, in-process {local['verdicts']}")
    if theirs is None:
        print(f"Curator not run: {why}")
        return
    rate = theirs["tokens"] / theirs["seconds"]
    print(f"Curator {theirs['versions']['bespokelabs-curator']} -> same vllm serve: {theirs['seconds']:.1f}s, {theirs['tokens']:.0f} output tokens "
          f"(retries included), {rate:.1f} output tok/s; answered {theirs['answered']} of {n} ({theirs['valid']} valid), left out {n - theirs['answered']}")
    print(f"ratio openai engine / Curator: output tok/s (server counter) {mine / rate:.3f}; "
          f"valid outputs {http['verdicts'].get('valid', 0)} / {theirs['valid']} of {n}")


if __name__ == "__main__":
    main()
