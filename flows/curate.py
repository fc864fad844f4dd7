"""Curate flow: score every shard of instructions, then select over the whole scored set."""

from __future__ import annotations

from prefect import flow
from prefect.artifacts import create_markdown_artifact

from synthq.flows.runtime import run_stage
from synthq.tasks.core.config import FactoryConfig
from synthq.tasks.core.lake import Lake
from synthq.tasks.shards.stage import upstream_specs
from synthq.tasks.curate import score, select
from synthq.tasks.curate.report import render_markdown, write_report


@flow(name="curate")
def curate_flow(config: FactoryConfig = FactoryConfig()) -> dict:
    lake = Lake(config.lake)
    scored = run_stage(score.STAGE_SPEC, upstream_specs(lake, "instructions"), config)
    curated = run_stage(select.STAGE_SPEC, [select.selection_spec(lake, config)], config)
    report = write_report(lake)
    create_markdown_artifact(key="curation-report", markdown=render_markdown(report), description="Curation: counts, scores, topics")
    return {"scored": scored, "curated": curated, "report": report}
