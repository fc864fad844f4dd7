"""The real engine: the bundled model on vLLM (CPU build here, same code on GPU) in its Ray actor."""

import pytest

from tasks.attribute.outputs import SeedAnalysis
from tasks.llm.engine import Request, complete, schema_for
from tasks.sample import SEEDS

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
