"""The respond stage on the real engine (bundled model on vLLM), through its Prefect flow and
publish, then TRL training two steps on the release's files; and the reward-model judge with
a small sequence-classification model built here (random weights: the mechanics, not scores)."""

import math

import pyarrow.parquet as pq
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


@pytest.fixture(scope="module")
def released(tmp_path_factory, prefect_server, engine):
    """Curated queries -> respond flow -> publish flow on the real engine."""
    from synthq.flows.publish import publish_flow
    from synthq.flows.respond import respond_flow

    lake_dir = str(tmp_path_factory.mktemp("respond") / "lake")
    lake = _lake_with_curated(lake_dir)
    cfg = load_config(None, {"lake": lake_dir, "shard_size": 2, "respond.samples": 3, "respond.min_margin": 0,
                             "respond.max_answer_tokens": 256})
    respond_flow(cfg)
    info = publish_flow(cfg)
    return lake, cfg, info


def test_every_query_is_in_sft_or_rejected_with_samples_from_one_request(released):
    lake, cfg, info = released
    answers = lake.read("responses").to_pylist()
    rejected = lake.read("responses", rejected=True).to_pylist()
    sft_ids = set(pq.read_table(f"{info['path']}/sft").column("prompt_id").to_pylist())
    rejected_queries = {r["record_id"] for r in rejected if ":" not in r["record_id"]}  # no_valid_answer
    assert sft_ids | rejected_queries == set(curated().column("id").to_pylist()) and sft_ids
    assert not sft_ids & rejected_queries
    # samples of one query differ (drawn from one request), and carry their expert identity and judge
    by_query = {}
    for a in answers:
        by_query.setdefault((a["query_id"], a["variant"]), []).append(a)
    assert any(len({a["response"] for a in group}) > 1 for group in by_query.values())
    assert all(a["judge"] == "llm:SmolLM2-135M-Instruct" and 1 <= a["score"] <= 10 for a in answers)
    no_expert = {r["record_id"].split(":")[0] for r in rejected if r["record_id"].endswith(":expert:0")}
    assert all(bool(a["expert"]) == (a["query_id"] not in no_expert) for a in answers)  # identity, or its rejection
    llm = [m["stats"]["llm"] for m in lake.manifests("responses")]
    judged = len(answers) + sum(r["detail"].startswith("judge:") for r in rejected)
    queries = curated().num_rows
    assert sum(x["calls"] for x in llm) == queries + queries + judged  # expert + ONE answering request per query + judges
    assert all(x["output_tokens"] > 0 for x in llm)
    assert info["subsets"]["sft"] == len(sft_ids) and info["subsets"]["queries"] == queries


def test_rerun_answers_nothing_again(released, engine):
    import ray

    from synthq.flows.respond import respond_flow
    from synthq.tasks.llm.ray_engine import NAMESPACE, actor_name

    lake, cfg, _ = released
    actor = ray.get_actor(actor_name(cfg.engine), namespace=NAMESPACE)
    before, manifests = ray.get(actor.stats.remote())["batches"], lake.manifests("responses")
    respond_flow(cfg)
    assert ray.get(actor.stats.remote())["batches"] == before and lake.manifests("responses") == manifests


def test_trl_trains_two_steps_on_the_published_subsets(released, tmp_path):
    import datasets
    import torch
    from transformers import AutoModelForCausalLM
    from trl import DPOConfig, DPOTrainer, SFTConfig, SFTTrainer

    from synthq.tasks.llm.models import resolve_model

    _, _, info = released
    # float32 throughout: the model's config says bfloat16 and TRL turns on bf16 autocast, which a CPU
    # without avx512_bf16 emulates (a 2-step run took 7 minutes instead of one)
    model = AutoModelForCausalLM.from_pretrained(resolve_model("bundled"), dtype=torch.float32)
    common = dict(use_cpu=True, max_steps=2, per_device_train_batch_size=2, report_to=[], save_strategy="no", max_length=256,
                  bf16=False, gradient_checkpointing=False)
    sft = datasets.load_dataset(info["path"], "sft", split="train")
    loss = SFTTrainer(model=model, args=SFTConfig(output_dir=str(tmp_path / "sft"), **common), train_dataset=sft).train().training_loss
    assert math.isfinite(loss) and loss > 0
    prefs = datasets.load_dataset(info["path"], "preferences", split="train")
    assert prefs.num_rows >= 1
    loss = DPOTrainer(model=model, args=DPOConfig(output_dir=str(tmp_path / "dpo"), **common), train_dataset=prefs).train().training_loss
    assert math.isfinite(loss)


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


def test_reward_model_judge_in_its_ray_actor(engine, tmp_path, lake_dir):
    from synthq.tasks.shards.stage import run_shard, upstream_specs
    from synthq.tasks.respond import pairs, process

    lake = _lake_with_curated(lake_dir)
    cfg = load_config(None, {"lake": lake_dir, "respond.judge": "reward_model", "respond.expert": False, "respond.min_margin": 0,
                             "respond.reward_model": _tiny_reward_model(tmp_path / "tiny-rm"), "respond.max_answer_tokens": 384,
                             # three samples per query, so that a pair remains when the bundled model's text fails a check
                             "respond.samples": 3})
    specs = process.query_specs(lake, 2)
    for spec in specs:
        run_shard(process.STAGE_SPEC, spec, cfg, engine)
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
