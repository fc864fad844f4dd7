"""Curate flow: score every shard of instructions, then select over the whole scored set.

Selection screens each scored shard in Ray tasks, decides over the survivors' vectors in one
Ray task, then writes the curated rows shard by shard (see synthq.tasks.curate.select)."""

from __future__ import annotations

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NONE
from prefect.artifacts import create_markdown_artifact

from synthq.flows.runtime import ensure_ray, run_stage
from synthq.tasks.core.config import FactoryConfig
from synthq.tasks.core.lake import Lake
from synthq.tasks.shards.stage import upstream_specs
from synthq.tasks.curate import score, select
from synthq.tasks.curate.report import render_markdown, write_report


@task(cache_policy=NONE, task_run_name="selection")
def selection_task(config: FactoryConfig) -> tuple[str, dict]:
    """Screen the scored shards (Ray tasks) and decide over them (one Ray task); a rerun on the
    same input reuses the verdicts."""
    ensure_ray(config)
    fp, stats = select.run_selection(Lake(config.lake), config, remote=True)
    get_run_logger().info("selection: kept %d %s", stats.get("kept", 0),
                          {k: v for k, v in stats.items() if k in ("near_duplicates", "duplicates_of_release", "contamination_hits")})
    return fp, stats


@flow(name="curate")
def curate_flow(config: FactoryConfig = FactoryConfig()) -> dict:
    lake = Lake(config.lake)
    scored = run_stage(score.STAGE_SPEC, upstream_specs(lake, "instructions"), config)
    fp, _ = selection_task(config)
    curated = run_stage(select.STAGE_SPEC, select.selection_specs(lake, fp), config)
    report = write_report(lake)
    create_markdown_artifact(key="curation-report", markdown=render_markdown(report), description="Curation: counts, scores, topics")
    return {"scored": scored, "curated": curated, "report": report}
