"""Synthesize flow: documents + demonstrations -> instructions, one shard of documents per task."""

from __future__ import annotations

from dataclasses import replace

from prefect import flow, get_run_logger

from synthq.flows.runtime import run_stage
from synthq.tasks.core.config import FactoryConfig
from synthq.tasks.core.lake import Lake
from synthq.tasks.shards.stage import dataset_identity, upstream_specs
from synthq.tasks.synthesize import carry
from synthq.tasks.synthesize.process import STAGE_SPEC


@flow(name="synthesize")
def synthesize_flow(config: FactoryConfig = FactoryConfig()) -> dict:
    lake = Lake(config.lake)
    demonstrations = dataset_identity(lake, "demonstrations")
    specs = [replace(s, reads={"demonstrations": demonstrations}) for s in upstream_specs(lake, "documents")]
    kept = carry.snapshot(lake, STAGE_SPEC, specs, config)
    if kept:
        get_run_logger().info("synthesize: %d rows of documents already synthesized are carried into redone shards", kept)
    try:
        return run_stage(STAGE_SPEC, specs, config)
    finally:
        carry.clear(lake)
