"""Shard fan-out on real Prefect and Ray: a failed shard is reported, not fatal, unless asked."""

import os
import subprocess
import sys

import pyarrow as pa
import pytest
from prefect import flow

from synthq.flows.runtime import StageFailed, run_stage
from synthq.tasks.core.config import FactoryConfig
from synthq.tasks.core.lake import Lake
from synthq.tasks.shards.stage import ShardSpec
from synthq.tasks.ingest.process import STAGE_SPEC, units_table
from synthq.tasks.sample import PAGES


def _html_unit(name: str) -> pa.Table:
    return units_table([{"kind": "html", "uri": str(PAGES / name), "start": 0, "stop": -1, "stamp": "x"}])


@flow
def _ingest_two_shards(cfg: FactoryConfig) -> dict:
    good = ShardSpec("00000", "good", rows=_html_unit("02-python-comprehensions-generators.html"))
    bad = ShardSpec("00001", "bad", rows=pa.table({"wrong_column": ["x"]}))  # process() cannot read it
    return run_stage(STAGE_SPEC, [good, bad], cfg)


def test_bad_shard_does_not_fail_the_run(prefect_server, ray_local, lake_dir):
    report = _ingest_two_shards(FactoryConfig(lake=lake_dir))
    assert report["shards"] == 1 and report["kept"] == 1
    assert Lake(lake_dir).manifest("documents", "00001") is None  # left unfinished: a rerun retries it


def test_cli_runs_show_a_line_per_shard_when_not_on_a_terminal(prefect_server, ray_local, lake_dir):
    import io

    from rich.console import Console

    from synthq.tasks.core.progress import show_progress

    out = io.StringIO()
    with show_progress(Console(file=out, force_terminal=False, width=200)):
        _ingest_two_shards(FactoryConfig(lake=lake_dir))
    lines = out.getvalue().splitlines()
    assert lines[0] == "documents: 2 shards to run"
    assert lines[-1].startswith("documents: 2/2 shards, ") and lines[-1].endswith("kept 1, rejected 0, 1 shard(s) failed")


def test_bad_shard_fails_the_run_when_asked(prefect_server, ray_local, lake_dir):
    with pytest.raises(StageFailed, match="1 of 2 shards failed"):
        _ingest_two_shards(FactoryConfig(lake=lake_dir, fail_on_shard_error=True))


def test_stage_report_shows_counts_and_sample_rows(lake_dir):
    from synthq.flows.runtime import sample_markdown

    lake = Lake(lake_dir)
    pages = _html_unit("02-python-comprehensions-generators.html")
    from synthq.tasks.shards.stage import run_shard

    run_shard(STAGE_SPEC, ShardSpec("00000", "x", rows=pages), FactoryConfig(lake=lake_dir), None)
    md = sample_markdown(lake, "documents")
    assert md.startswith("\n\n### Sample rows") and "| title | url | n_words |" in md
    assert "comprehension" in md.lower()
    assert sample_markdown(lake, "nothing-here") == ""


def test_the_cli_gives_a_busy_node_time_to_start_its_local_prefect_server():
    """Prefect reads its settings at import: the CLI's package sets them first."""
    code = ("import synthq.flows.cli; from prefect.settings import get_current_settings as s; "
            "print(s().server.ephemeral.startup_timeout_seconds, s().server.analytics_enabled)")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_SERVER_")}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True).stdout.split()
    assert out == ["120", "False"]
