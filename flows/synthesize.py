"""Synthesize flow: documents + demonstrations -> instructions, one shard of documents per task."""

from __future__ import annotations

from prefect import flow

from flows.runtime import run_stage
from tasks.core.config import FactoryConfig
from tasks.core.lake import Lake
from tasks.core.stage import upstream_specs
from tasks.synthesize.process import STAGE_SPEC


@flow(name="synthesize")
def synthesize_flow(config: FactoryConfig = FactoryConfig()) -> dict:
    return run_stage(STAGE_SPEC, upstream_specs(Lake(config.lake), "documents"), config)
