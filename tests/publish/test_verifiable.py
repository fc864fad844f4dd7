"""The `verifiable` subset of a release and its reward: curated queries that carry constraints
are published as `prompt` + `constraints`, load by name with `datasets`, and TRL's GRPOTrainer
trains two steps on them with synthq's reward function on the bundled model."""

import json
import math

import pytest

from synthq.tasks.core.constraints import as_record, constraint_reward
from synthq.tasks.core.lake import Lake, StageResult
from synthq.tasks.core.records import CURATED, REJECTED, table
from tests.respond.helpers import curated

CONSTRAINTS = [
    [{"kind": "punctuation:no_comma", "args": {}}, {"kind": "length_constraints:number_words", "args": {"num_words": 40, "relation": "less than"}}],
    [],  # a query without constraints: not in the subset
    [{"kind": "change_case:english_lowercase", "args": {}}],
    [{"kind": "keywords:existence", "args": {"keywords": ["starter", "flour"]}}],
]


@pytest.fixture(scope="module")
def release(prefect_server, tmp_path_factory) -> dict:
    from synthq.flows.publish import publish_flow
    from synthq.tasks.core.config import load_config

    lake_dir = str(tmp_path_factory.mktemp("verifiable") / "lake")
    rows = curated().to_pylist()
    for row, constraints in zip(rows, CONSTRAINTS):
        row["constraints"] = [as_record(c) for c in constraints]
    Lake(lake_dir).write_shard("curated", "00000", StageResult(table(rows, CURATED), REJECTED.empty_table()), input_id="x", config="x")
    cfg = load_config(None, {"lake": lake_dir, "respond.enabled": False, "synthesize.constraints.enabled": True})
    return publish_flow(cfg)


def test_the_subset_holds_each_constrained_query_as_prompt_and_constraints(release):
    import datasets

    subset = datasets.load_dataset(release["path"], "verifiable", split="train")
    assert subset.column_names == ["prompt", "constraints", "prompt_id"]
    assert subset.num_rows == 3 == release["subsets"]["verifiable"]
    first = subset[0]
    assert first["prompt"][0]["role"] == "user" and first["prompt"][0]["content"]
    assert [c["kind"] for c in first["constraints"]] == ["punctuation:no_comma", "length_constraints:number_words"]
    assert json.loads(first["constraints"][1]["args"]) == {"num_words": 40, "relation": "less than"}
    card = open(f"{release['path']}/README.md").read()
    assert "constraint_reward" in card and "`verifiable`" in card


def test_grpo_trains_two_steps_with_the_constraint_reward(release, tmp_path):
    import datasets
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import GRPOConfig, GRPOTrainer

    from synthq.tasks.llm.models import resolve_model

    subset = datasets.load_dataset(release["path"], "verifiable", split="train")
    seen = []

    def reward(completions, constraints, **kwargs):
        scores = constraint_reward(completions, constraints, **kwargs)
        seen.extend(scores)
        return scores

    folder = resolve_model("bundled")
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32)  # float32: see test_factory's TRL test
    args = GRPOConfig(output_dir=str(tmp_path), use_cpu=True, bf16=False, max_steps=2, per_device_train_batch_size=2,
                      num_generations=2, max_completion_length=24, report_to=[], save_strategy="no", logging_steps=1, seed=0)
    trainer = GRPOTrainer(model=model, reward_funcs=[reward], args=args, train_dataset=subset,
                          processing_class=AutoTokenizer.from_pretrained(folder))
    loss = trainer.train().training_loss
    assert math.isfinite(loss)
    assert seen and all(0.0 <= s <= 1.0 for s in seen)
    rewards = [log["reward"] for log in trainer.state.log_history if "reward" in log]
    assert rewards and all(0.0 <= r <= 1.0 for r in rewards)
    print(f"GRPO: 2 steps, loss {loss:.4f}, rewards per step {rewards}, {len(seen)} completions scored, mean {sum(seen) / len(seen):.3f}")
