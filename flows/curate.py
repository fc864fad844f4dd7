"""Curate flow: score every shard of instructions, then select over the whole scored set."""

from __future__ import annotations

from prefect import flow

from flows.runtime import run_stage
from tasks.core.config import FactoryConfig
from tasks.core.lake import Lake
from tasks.core.stage import upstream_specs
from tasks.curate import score, select


@flow(name="curate")
def curate_flow(config: FactoryConfig = FactoryConfig()) -> dict:
    lake = Lake(config.lake)
    scored = run_stage(score.STAGE_SPEC, upstream_specs(lake, "instructions"), config)
    curated = run_stage(select.STAGE_SPEC, [select.selection_spec(lake, config.curate)], config)
    return {"scored": scored, "curated": curated}
