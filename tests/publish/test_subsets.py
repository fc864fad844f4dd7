"""Training subsets of a release: sft and preferences next to the queries, declared in the
card so `datasets.load_dataset(release, NAME)` loads each; every curated query accounted for."""

from pathlib import Path

import pyarrow as pa
import pytest
import yaml

from synthq.tasks.core.config import load_config
from synthq.tasks.shards.context import StageContext
from synthq.tasks.core.errors import LakeError
from synthq.tasks.core.lake import Lake
from synthq.tasks.publish.release import publish
from synthq.tasks.publish.subsets import curated_ids, training_subsets
from synthq.tasks.respond import pairs, process
from tests.respond.helpers import QUERIES, Scripted, curated, judgement

STAGES = {"curated": {"kept": 4, "rejected": 0, "reasons": {}}}


def _respond(lake_dir: str, **overrides) -> tuple[Lake, object]:
    """The respond stage's two datasets written to the lake, as its flow writes them: two shards
    of two queries each."""
    lake, cfg = Lake(lake_dir), load_config(None, {"lake": lake_dir, **overrides})
    engine = Scripted({"q01": [("", "stop"), ("", "stop")]}, judge=lambda text: judgement(min(10, 1 + len(text) % 10)))
    ctx = StageContext(cfg=cfg, lake=lake, engine=engine)
    for shard, queries in (("00000", curated().slice(0, 2)), ("00001", curated().slice(2))):
        lake.write_shard("curated", shard, _result(queries), input_id="x", config="x")
        lake.write_shard("responses", shard, process.process(queries, ctx), input_id="x", config="x")
        lake.write_shard("pairs", shard, pairs.process(lake.read_shard("responses", shard), ctx), input_id="x", config="x")
    return lake, cfg


def _result(tbl):
    from synthq.tasks.core.lake import StageResult
    from synthq.tasks.core.records import REJECTED

    return StageResult(tbl, REJECTED.empty_table())


def test_subsets_load_by_name_and_train_formats(lake_dir):
    import datasets

    lake, cfg = _respond(lake_dir, **{"respond.samples": 3, "respond.min_margin": 0})
    subsets = training_subsets(lake, curated_ids(lake), cfg.respond.variants())
    shards = (lake.read_shard("curated", s) for s in lake.shards("curated"))  # as the flow reads them: one at a time
    info = publish(lake, "ds", shards, STAGES, {}, "x", subsets=subsets)
    path = info["path"]
    queries = datasets.load_dataset(path, "queries", split="train")
    sft = datasets.load_dataset(path, "sft", split="train")
    prefs = datasets.load_dataset(path, "preferences", split="train")
    assert datasets.load_dataset(path, split="train").num_rows == queries.num_rows == 4  # queries is the default
    assert sft.num_rows == 3 and "q01" not in sft["prompt_id"]  # q01 had no valid answer
    row = sft[0]
    assert [m["role"] for m in row["messages"]] == ["system", "user", "assistant"]
    assert row["prompt"] == row["messages"][:2] and row["completion"] == row["messages"][2:]
    assert row["messages"][1]["content"] == row["query"] and row["messages"][0]["content"].startswith("You are")
    pair = prefs[0]
    assert [m["role"] for m in pair["prompt"]] == ["system", "user"]
    assert pair["chosen"][0]["role"] == pair["rejected"][0]["role"] == "assistant"
    assert pair["score_chosen"] >= pair["score_rejected"]
    assert info["subsets"] == {"queries": 4, "sft": 3, "preferences": prefs.num_rows}
    card = (Path(path) / "README.md").read_text()
    header = yaml.safe_load(card.split("---")[1])
    assert [c["config_name"] for c in header["configs"]] == ["queries", "sft", "preferences"]
    assert "| `sft` | 3 | llm:SmolLM2-135M-Instruct |" in card and "lowest" in card


def test_rationale_both_publishes_each_variant(lake_dir):
    lake, cfg = _respond(lake_dir, **{"respond.rationale": "both"})
    subsets = {k: pa.concat_tables(parts) for k, parts in training_subsets(lake, curated_ids(lake), cfg.respond.variants()).items()}
    assert set(subsets) == {"sft", "preferences", "sft_rationale", "preferences_rationale"}
    assert set(subsets["sft"].column("variant").to_pylist()) == {"direct"}
    assert set(subsets["sft_rationale"].column("variant").to_pylist()) <= {"rationale"}


def test_publish_stops_when_responses_do_not_cover_the_curated_set(lake_dir):
    lake, cfg = _respond(lake_dir)
    more = curated([*QUERIES, "A fifth query nobody answered yet?"])
    with pytest.raises(LakeError, match="1 curated queries have neither an answer nor a rejection"):
        training_subsets(lake, set(more.column("id").to_pylist()), cfg.respond.variants())
    with pytest.raises(LakeError, match="no responses"):
        training_subsets(Lake(lake_dir + "-empty"), set(more.column("id").to_pylist()), cfg.respond.variants())
