"""Respond flow: curated queries -> judged answers (one shard of queries per task), then
preference pairs; the report artifact shows counts by reason and three sample pairs."""

from __future__ import annotations

from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact

from synthq.flows.runtime import ensure_ray, run_stage
from synthq.tasks.core.config import FactoryConfig
from synthq.tasks.core.lake import Lake
from synthq.tasks.shards.stage import upstream_specs
from synthq.tasks.respond import pairs, process
from synthq.tasks.respond.report import respond_markdown


@flow(name="respond")
def respond_flow(config: FactoryConfig = FactoryConfig()) -> dict | None:
    if not config.respond.enabled:
        get_run_logger().info("respond.enabled is off: releases will hold queries only")
        return None
    lake = Lake(config.lake)
    if config.respond.judge == "reward_model":
        from synthq.tasks.llm.ray_engine import reward_actor

        ensure_ray(config)
        reward_actor(config.respond)  # loads once here; every shard task finds the same actor
    responses = run_stage(process.STAGE_SPEC, process.query_specs(lake, config.shard_size), config)
    made = run_stage(pairs.STAGE_SPEC, upstream_specs(lake, "responses"), config)
    create_markdown_artifact(key="preference-pairs", markdown=respond_markdown(lake), description="Preference pairs: counts and samples")
    return {"responses": responses, "pairs": made}
