"""The engine layer's overhead per request, and its memory, against an endpoint that answers
instantly (an OpenAI-compatible stub written for this benchmark, in its own process).

Baseline, measured in the same run: the bare `openai` async client sending the same requests
with the same concurrency. Then the same requests go through synthq's path, shard by shard as
a stage sends them: OpenAIEngine, then `complete()` (JSON parse and pydantic validation), with
and without the LLM cache in a temporary lake. Memory is sampled after every shard: it should
stay flat, because nothing is kept per request once its shard is done.

    .venv/bin/python bench/engine_overhead.py [--requests 1000000] [--shard 500]
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import socket
import subprocess
import sys
import tempfile
import time

from pydantic import BaseModel

import smoke

from synthq.tasks.core.config import EngineConfig
from synthq.tasks.core.lake import Lake
from synthq.tasks.llm.cache import CachedEngine, compact
from synthq.tasks.llm.engine import Request, complete, schema_for
from synthq.tasks.llm.openai_engine import OpenAIEngine

STUB = r'''
import json, sys
from aiohttp import web
BODY = json.dumps({"id": "x", "object": "chat.completion", "created": 0, "model": "stub",
    "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": "{\"answer\": \"ok\"}"}}],
    "usage": {"prompt_tokens": 12, "completion_tokens": 5, "total_tokens": 17}})
async def chat(request):
    await request.read()
    return web.Response(text=BODY, content_type="application/json")
app = web.Application()
app.router.add_post("/v1/chat/completions", chat)
web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), print=None, access_log=None)
'''


class Answer(BaseModel):
    answer: str


def rss_mib() -> float:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS")) / 1024


def requests(start: int, n: int) -> list[Request]:
    schema = schema_for(Answer)
    return [Request(f"r{i}", [{"role": "user", "content": f"question {i}"}], schema, 16, 0.0) for i in range(start, start + n)]


async def raw(base_url: str, n: int, concurrency: int) -> float:
    from openai import AsyncOpenAI

    gate = asyncio.Semaphore(concurrency)
    async with AsyncOpenAI(base_url=base_url, api_key="x", max_retries=0) as client:
        async def one(i):
            async with gate:
                resp = await client.chat.completions.create(
                    model="stub", messages=[{"role": "user", "content": f"question {i}"}], max_tokens=16,
                    response_format={"type": "json_schema", "json_schema": {"name": "output", "schema": schema_for(Answer)}},
                )
                return resp.choices[0].message.content

        start = time.perf_counter()
        await asyncio.gather(*(one(i) for i in range(n)))
        return time.perf_counter() - start


def through_synthq(engine, total: int, shard: int, progress: bool = False) -> tuple[float, list[float], int]:
    start, memory, valid = time.perf_counter(), [], 0
    step = max(shard, total // 10 // shard * shard)
    for first in range(0, total, shard):
        out = complete(engine, requests(first, min(shard, total - first)), Answer)
        valid += sum(o.value is not None for o in out)
        memory.append(rss_mib())
        done = first + len(out)
        if progress and done % step == 0:
            print(f"  {done:,} requests, {done / (time.perf_counter() - start):,.0f} req/s, RSS {memory[-1]:.0f} MiB", flush=True)
    return time.perf_counter() - start, memory, valid


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--requests", type=int, default=1_000_000)
    ap.add_argument("--shard", type=int, default=500)
    ap.add_argument("--concurrency", type=int, default=64)
    ap.add_argument("--baseline", type=int, default=20_000, help="requests for the bare-client baseline")
    args = smoke.parse(ap, requests=2_000, shard=200, baseline=500)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    stub = subprocess.Popen([sys.executable, "-c", STUB, str(port)])
    base_url = f"http://127.0.0.1:{port}/v1"
    try:
        time.sleep(2)
        n_base = min(args.baseline, args.requests)
        t_raw = asyncio.run(raw(base_url, n_base, args.concurrency))
        print(f"bare openai client: {n_base:,} requests in {t_raw:.1f}s = {n_base / t_raw:,.0f} req/s")

        engine = OpenAIEngine(EngineConfig(kind="openai", base_url=base_url, model="stub", max_concurrency=args.concurrency, max_retries=0))
        t_eng, mem, valid = through_synthq(engine, args.requests, args.shard, progress=True)
        per_raw, per_eng = t_raw / n_base, t_eng / args.requests
        print(f"synthq engine + complete(): {args.requests:,} requests in {t_eng:.1f}s = {args.requests / t_eng:,.0f} req/s, valid {valid:,}")
        print(f"  overhead per request over the bare client: {1e6 * (per_eng - per_raw):.0f} µs (ratio {per_eng / per_raw:.2f})")
        tenth = max(1, len(mem) // 10)
        print(f"  RSS after the first 10% of shards {max(mem[:tenth]):.0f} MiB, at the end {mem[-1]:.0f} MiB, peak {max(mem):.0f} MiB")

        with tempfile.TemporaryDirectory() as lake:
            n_cache = min(args.requests, n_base)
            cached = CachedEngine(engine, Lake(lake), "stub")
            t_miss, _, _ = through_synthq(cached, n_cache, args.shard)
            compact(Lake(lake))  # as each LLM stage does after its shards
            t_hit, _, _ = through_synthq(cached, n_cache, args.shard)
            print(f"with the LLM cache ({n_cache:,} requests): all misses {n_cache / t_miss:,.0f} req/s, all hits {n_cache / t_hit:,.0f} req/s")
        print(f"peak RSS of this process: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")
    finally:
        stub.terminate()


if __name__ == "__main__":
    main()
