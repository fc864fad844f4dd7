"""The loop closed on CPU: a release (its answers from the stub endpoint), then `synthq evaluate`
trains the bundled model on it (TRL's SFTTrainer in Ray Train, a few steps) and scores it and
the base model on IFEval (a few of its packaged prompts) with lm-evaluation-harness. The ledger,
the model folder, the scaling plot and a bare harness run on the saved model are checked; a
rerun does nothing; bad input fails with one line, before any training."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from synthq.flows.cli import app
from synthq.tasks.core.config import load_config
from synthq.tasks.core.lake import Lake, StageResult
from synthq.tasks.core.records import REJECTED
from synthq.tasks.publish import catalog
from tests.llm.faults import Faulty
from tests.respond.helpers import curated

pytestmark = pytest.mark.slow

SETTINGS = {  # a smoke evaluation: 4 steps of one short row, 4 prompts of IFEval, short answers
    "evaluate.train.max_steps": 4, "evaluate.train.batch_size": 1, "evaluate.train.max_length": 128,
    "evaluate.limit": 4, "evaluate.max_gen_toks": 48, "evaluate.eval_batch_size": 4,
}


def _publish(lake_dir: str, **overrides) -> dict:
    """A release of the respond helpers' four queries, answered by the stub endpoint."""
    from synthq.flows.publish import publish_flow
    from synthq.flows.respond import respond_flow

    Lake(lake_dir).write_shard("curated", "00000", StageResult(curated(), REJECTED.empty_table()), input_id="x", config="x")
    with Faulty(rate=0.0) as stub:
        cfg = load_config(None, {"lake": lake_dir, **stub.engine_settings(), "respond.min_margin": 0, **overrides})
        respond_flow(cfg)
        return publish_flow(cfg)


@pytest.fixture(scope="module")
def released(prefect_server, ray_local, tmp_path_factory) -> str:
    lake_dir = str(tmp_path_factory.mktemp("evaluate") / "lake")
    _publish(lake_dir, **{"curate.benchmarks": ["ifeval"]})  # curation checked the release against IFEval's prompts
    return lake_dir


def _evaluate(lake_dir: str, *args: str):
    sets = [x for k, v in SETTINGS.items() for x in ("--set", f"{k}={v}")]
    return CliRunner().invoke(app, ["evaluate", *args, "--lake", lake_dir, *sets])


def test_evaluate_trains_scores_and_fills_the_ledger_then_a_rerun_does_nothing(released):
    import lm_eval
    from lm_eval.tasks import TaskManager
    from transformers import AutoModelForCausalLM

    from synthq.tasks.core.packaged import benchmark_file, sha256_of
    from synthq.tasks.evaluate.train import dtype_name

    done = _evaluate(released, "synthq-instructions")
    assert done.exit_code == 0, done.output + repr(done.exception)
    lake = Lake(released)
    with catalog.local_catalog(lake) as path:
        rows = catalog.evaluations(path, "synthq-instructions")
    base = [r for r in rows if r["version"] == 0]
    trained = [r for r in rows if r["version"] == 1]
    metrics = {"prompt_level_strict_acc", "inst_level_strict_acc", "prompt_level_loose_acc", "inst_level_loose_acc"}
    assert {r["metric"] for r in base} == {r["metric"] for r in trained} == metrics
    assert all(r["rows"] == 0 and r["fraction"] == 0 for r in base)
    sft_rows = json.loads(lake.fs.cat_file(f"{lake.path('releases', 'synthq-instructions', 'v1')}/stats.json"))["subsets"]["sft"]
    for r in trained:  # every provenance field
        assert r["rows"] == sft_rows > 0 and r["tokens"] > 0 and r["fraction"] == 1.0 and len(r["release_fingerprint"]) == 64
        assert r["harness"] == f"lm-eval {lm_eval.__version__}" and r["data_sha256"] == sha256_of(benchmark_file("ifeval"))
        assert r["limit"] == 4 and json.loads(r["generation"])["max_gen_toks"] == 48 and json.loads(r["training"])["max_steps"] == 4
        assert r["seed"] == 0 and r["device"] == "cpu" and r["seconds"] > 0 and r["base_model"] == "bundled"
        assert r["smoke"] == 1 and r["decontaminated"] == 1  # 4 prompts, 4 steps: drawn apart, out of the trend
    assert all(r["smoke"] == 1 for r in base)

    # the model is kept in the lake, with what made it, and loads
    folder = trained[0]["model_path"]
    assert folder.startswith(lake.path("models", "synthq-instructions", "v1"))
    assert {"_done", "config.json", "model.safetensors", "train.json", "loss.json"} <= set(os.listdir(folder))
    assert json.loads(Path(folder, "train.json").read_text())["settings"]["max_steps"] == 4
    assert [h["step"] for h in json.loads(Path(folder, "loss.json").read_text())] == [1, 2, 3, 4]
    AutoModelForCausalLM.from_pretrained(folder)
    plot = Path(lake.path("releases", "scaling-synthq-instructions.png"))
    assert plot.stat().st_size > 10_000

    # the score is what lm-eval itself gives on the saved folder: its own IFEval task, pointed at the packaged prompts
    tasks = Path(folder).parent / "bare-tasks"
    tasks.mkdir(exist_ok=True)
    included = Path(lm_eval.__file__).parent / "tasks" / "ifeval" / "ifeval.yaml"
    (tasks / "ifeval_local.yaml").write_text(
        f"include: {included}\ntask: ifeval_local\ndataset_path: json\n"
        f"dataset_kwargs:\n  data_files:\n    train: {benchmark_file('ifeval')}\n")
    bare = lm_eval.simple_evaluate(model="hf", model_args=f"pretrained={folder},dtype={dtype_name(False)}", tasks=["ifeval_local"],
                                   task_manager=TaskManager(include_path=str(tasks)), limit=4, apply_chat_template=True,
                                   gen_kwargs="max_gen_toks=48", batch_size=4, device="cpu")
    mine = {r["metric"]: r["value"] for r in trained}
    assert {m: bare["results"]["ifeval_local"][f"{m},none"] for m in metrics} == mine

    # the same command again: the ledger has every run, nothing is trained or scored
    stamp = os.stat(Path(folder, "_done")).st_mtime_ns
    again = _evaluate(released, "synthq-instructions")
    assert again.exit_code == 0, again.output
    with catalog.local_catalog(lake) as path:
        assert catalog.evaluations(path, "synthq-instructions") == rows
    assert os.stat(Path(folder, "_done")).st_mtime_ns == stamp


def test_nested_shares_of_a_release():
    import pyarrow as pa

    from synthq.tasks.evaluate.data import share

    rows = pa.table({"id": list(range(1000))})
    ladder = [set(share(rows, f, seed=3).column("id").to_pylist()) for f in (0.1, 0.3, 1.0)]
    assert [len(s) for s in ladder] == [100, 300, 1000]
    assert ladder[0] < ladder[1] < ladder[2]  # every row of the 0.1 share is in the 0.3 one
    assert share(rows, 0.1, seed=4).column("id").to_pylist() != share(rows, 0.1, seed=3).column("id").to_pylist()


@pytest.mark.parametrize("args, message", [
    (["--set", "evaluate.base_model=/nowhere/model"], "not a model folder"),
    (["--set", "evaluate.benchmarks=[mmlu_nonexistent]"], "unknown benchmark 'mmlu_nonexistent'"),
    (["--fractions", "0.5,1.5"], "evaluate.fractions must be shares in (0, 1]"),
    (["--fractions", "half"], "--fractions 'half'"),
    (["synthq-instructions/v9"], "does not exist"),
])
def test_bad_input_fails_with_one_line_and_no_ledger_row(released, args, message):
    done = CliRunner().invoke(app, ["evaluate", *args, "--lake", released])
    assert done.exit_code == 2 and message in " ".join(done.output.split()), done.output


def test_a_release_without_answers_or_a_base_model_that_is_not_a_causal_lm(prefect_server, ray_local, tmp_path):
    lake_dir = str(tmp_path / "lake")
    _publish(lake_dir, **{"respond.enabled": False})
    done = CliRunner().invoke(app, ["evaluate", "--lake", lake_dir])
    assert done.exit_code == 2 and "has no 'sft' subset" in " ".join(done.output.split()), done.output
    vision = tmp_path / "vit"
    vision.mkdir()
    (vision / "config.json").write_text(json.dumps({"model_type": "vit"}))
    done = CliRunner().invoke(app, ["evaluate", "--lake", lake_dir, "--set", f"evaluate.base_model={vision}"])
    assert done.exit_code == 2 and "not a causal language model" in done.output, done.output
    with catalog.local_catalog(Lake(lake_dir)) as path:
        assert catalog.evaluations(path) == []
