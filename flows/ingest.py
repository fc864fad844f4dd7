"""Ingest flow: HTML files -> documents (extraction in shards on Ray, then exact dedup)."""

from __future__ import annotations

from prefect import flow, get_run_logger

from flows.runtime import publish_report, run_stage
from tasks.core.config import FactoryConfig
from tasks.core.lake import Lake
from tasks.ingest.process import STAGE_SPEC, drop_cross_shard_duplicates, file_specs


@flow(name="ingest")
def ingest_flow(config: FactoryConfig = FactoryConfig()) -> dict:
    specs = file_specs(config)
    get_run_logger().info("ingest: %d shards of files into %s", len(specs), config.lake)
    run_stage(STAGE_SPEC, specs, config, report=False)
    lake = Lake(config.lake)
    dropped = drop_cross_shard_duplicates(lake)
    if dropped:
        get_run_logger().info("ingest: %d exact duplicates across shards moved to rejected", dropped)
    return publish_report(lake, STAGE_SPEC.dataset)
