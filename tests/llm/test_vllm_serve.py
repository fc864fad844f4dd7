"""The openai engine against a real `vllm serve` (CPU build, bundled model): the session's one
server (tests/conftest.py)."""

from __future__ import annotations

import json
import time

import pytest

from synthq.tasks.attribute.outputs import SeedAnalysis
from synthq.tasks.core.config import EngineConfig
from synthq.tasks.llm.engine import Request, complete, schema_for
from synthq.tasks.llm.openai_engine import OpenAIEngine
from synthq.tasks.llm.vllm_engine import has_gpu
from synthq.tasks.sample import SEEDS

pytestmark = pytest.mark.slow


def test_structured_output_through_vllm_serve(vllm_server):
    engine = OpenAIEngine(EngineConfig(kind="openai", base_url=vllm_server, model="smollm2", max_concurrency=8, frequency_penalty=0.3))
    prompts = [json.loads(line)["prompt"] for line in SEEDS.read_text().splitlines()[:8]]
    reqs = [
        Request(f"s{i}", [{"role": "system", "content": "Reply with JSON: the intent and at most 5 keywords."}, {"role": "user", "content": p}],
                schema_for(SeedAnalysis), max_tokens=256, temperature=0.3, frequency_penalty=0.3)
        for i, p in enumerate(prompts)
    ]
    start = time.perf_counter()
    out = complete(engine, reqs, SeedAnalysis, repair=False)
    print(f"vllm serve: {len(reqs)} requests in {time.perf_counter() - start:.1f}s, valid {sum(o.value is not None for o in out)}")
    assert [o.id for o in out] == [r.id for r in reqs]
    assert sum(o.value is not None for o in out) >= len(out) // 2
    assert all(o.usage["prompt_tokens"] > 0 and o.usage["output_tokens"] > 0 for o in out)
    for o in out:  # constrained decoding: whatever came back is JSON unless cut off
        assert o.reason in (None, "llm_truncated", "llm_schema_mismatch")


def test_long_prompts_on_the_cpu_server_without_per_request_seeds(vllm_server):
    """Prompts long enough to be prefilled in chunks: a seeded request would stop vLLM's CPU
    server ("CPU Generator does not use offset"), so seeds per request are off for it."""
    engine = OpenAIEngine(EngineConfig(kind="openai", base_url=vllm_server, model="smollm2", seed_per_request=has_gpu()))
    text = " ".join(json.loads(line)["prompt"] for line in SEEDS.read_text().splitlines())
    reqs = [
        Request(f"long{i}", [{"role": "system", "content": "Reply with JSON: the intent and at most 5 keywords."},
                             {"role": "user", "content": f"Request {i}: {text}"[:6000]}],
                schema_for(SeedAnalysis), max_tokens=48, temperature=0.3)
        for i in range(3)
    ]
    out = engine.generate(reqs)
    assert [r.error for r in out] == [None, None, None]
    assert all(r.prompt_tokens > 1000 and r.output_tokens > 0 for r in out)

