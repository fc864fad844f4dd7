"""The reward-model judge in its Ray actor, with a small sequence-classification model built
here (random weights: the mechanics, not scores), judging answers from the stub endpoint: the
reward model is what is tested. The respond stage with the LLM judge on the real engine, and
TRL training on its release, are part of the factory's run (tests/flows/test_factory.py)."""

import pytest

from synthq.tasks.core.config import load_config
from synthq.tasks.core.lake import Lake
from tests.respond.helpers import curated

pytestmark = pytest.mark.slow


def _lake_with_curated(lake_dir: str) -> Lake:
    from synthq.tasks.core.lake import StageResult
    from synthq.tasks.core.records import REJECTED

    lake = Lake(lake_dir)
    lake.write_shard("curated", "00000", StageResult(curated(), REJECTED.empty_table()), input_id="x", config="x")
    return lake


def _tiny_reward_model(folder) -> str:
    """A 2-layer Llama sequence classifier with the bundled model's tokenizer, saved to disk."""
    from transformers import AutoConfig, AutoModelForSequenceClassification, AutoTokenizer

    from synthq.tasks.llm.models import resolve_model

    tok = AutoTokenizer.from_pretrained(resolve_model("bundled"))
    config = AutoConfig.for_model("llama", vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                                  num_attention_heads=2, num_key_value_heads=2, num_labels=1, pad_token_id=tok.pad_token_id or tok.eos_token_id)
    AutoModelForSequenceClassification.from_config(config).save_pretrained(folder)
    tok.save_pretrained(folder)
    return str(folder)


def test_reward_model_judge_in_its_ray_actor(ray_local, tmp_path, lake_dir):
    from synthq.tasks.llm.openai_engine import OpenAIEngine
    from synthq.tasks.shards.stage import run_shard, upstream_specs
    from synthq.tasks.respond import pairs, process
    from tests.llm.faults import Faulty

    lake = _lake_with_curated(lake_dir)
    with Faulty(rate=0.0) as stub:
        cfg = load_config(None, {"lake": lake_dir, "respond.judge": "reward_model", "respond.expert": False, "respond.min_margin": 0,
                                 "respond.reward_model": _tiny_reward_model(tmp_path / "tiny-rm"), "respond.max_answer_tokens": 384,
                                 "respond.samples": 3, **stub.engine_settings()})
        for spec in process.query_specs(lake, 2):
            run_shard(process.STAGE_SPEC, spec, cfg, OpenAIEngine(cfg.engine))
    answers = lake.read("responses").to_pylist()
    assert answers and all(a["judge"] == "reward_model:tiny-rm" and a["judge_prompt_version"] == "" for a in answers)
    assert all(isinstance(a["score"], float) and a["score_helpfulness"] is None for a in answers)
    assert len({round(a["score"], 6) for a in answers}) > 1  # a real forward pass per answer
    for spec in upstream_specs(lake, "responses"):
        run_shard(pairs.STAGE_SPEC, spec, cfg, None)
    made = lake.read("pairs").to_pylist()
    why = [(r["reason"], r["detail"]) for r in lake.read("responses", rejected=True).to_pylist()]
    assert made, why
    assert all(p["score_chosen"] > p["score_rejected"] and p["judge"] == "reward_model:tiny-rm" for p in made)
