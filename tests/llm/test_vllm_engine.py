"""The real engine: the bundled model on vLLM (CPU build here, same code on GPU) in its Ray actor."""

import pytest

from synthq.tasks.attribute.outputs import SeedAnalysis
from synthq.tasks.llm.engine import Request, complete, schema_for
from synthq.tasks.sample import SEEDS

pytestmark = pytest.mark.slow


def test_structured_output_from_the_bundled_model(engine):
    import json

    prompts = [json.loads(line)["prompt"] for line in SEEDS.read_text().splitlines()[:16]]
    reqs = [
        Request(f"t{i}", [{"role": "system", "content": "Reply with JSON: the intent and at most 5 keywords."}, {"role": "user", "content": p}],
                schema_for(SeedAnalysis), max_tokens=384, temperature=0.3)
        for i, p in enumerate(prompts)
    ]
    out = complete(engine, reqs, SeedAnalysis)
    assert [o.id for o in out] == [r.id for r in reqs]
    valid = [o for o in out if o.value is not None]
    print(f"schema-valid: {len(valid)}/{len(out)}")
    assert len(valid) >= len(out) // 2
    assert all(o.reason in ("llm_truncated", "llm_schema_mismatch", "llm_invalid_json") for o in out if o.value is None)
    assert all(o.usage["output_tokens"] > 0 for o in out)
    assert engine.model_name == "SmolLM2-135M-Instruct"
    assert len(engine.handles) == 1  # the pool on a machine without GPUs: one engine


def test_the_pool_keeps_a_group_together_and_its_prefix_is_cached(engine):
    import ray

    shared = "You answer in JSON. " + " ".join(f"Background fact {i}: the sky is blue." for i in range(60))
    reqs = [
        Request(f"g{i}", [{"role": "system", "content": shared}, {"role": "user", "content": f"Name color {i}."}],
                schema_for(SeedAnalysis), max_tokens=64, temperature=0.0, group="shared")
        for i in range(3)
    ]
    before = ray.get(engine.handles[0].stats.remote())["batches"]
    out = engine.generate(reqs)
    assert [r.id for r in out] == ["g0", "g1", "g2"]
    assert ray.get(engine.handles[0].stats.remote())["batches"] == before + 1
    assert all(r.cached_tokens >= 0.8 * r.prompt_tokens for r in out[1:])  # prefilled once


def test_calls_sent_at_once_share_the_engines_batches(engine):
    """Three shards' calls at once: the first runs, the two that arrive meanwhile go in together."""
    import ray

    def call(tag: str, n: int) -> list[Request]:
        return [Request(f"{tag}{i}", [{"role": "user", "content": f"Say a word about the number {i} ({tag})."}], None,
                        max_tokens=24, temperature=0.0) for i in range(n)]

    actor = engine.handles[0]
    before = ray.get(actor.stats.remote())
    refs = [actor.generate.remote(call(tag, n)) for tag, n in (("a", 2), ("b", 3), ("c", 1))]
    out = ray.get(refs)
    after = ray.get(actor.stats.remote())
    assert [[r.id for r in results] for results in out] == [["a0", "a1"], ["b0", "b1", "b2"], ["c0"]]
    assert all(r.output_tokens > 0 and r.error is None for results in out for r in results)
    assert after["batches"] - before["batches"] == 3 and after["engine_batches"] - before["engine_batches"] == 2
