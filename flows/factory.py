"""The factory flow: ingest -> attribute -> synthesize -> curate -> respond -> publish, on one lake.

The engine starts loading at the beginning, in its Ray actor, while ingest runs.
"""

from __future__ import annotations

from prefect import flow

from synthq.flows.attribute import attribute_flow
from synthq.flows.curate import curate_flow
from synthq.flows.ingest import ingest_flow
from synthq.flows.publish import publish_flow
from synthq.flows.respond import respond_flow
from synthq.flows.runtime import StageFailed, engine_for
from synthq.flows.synthesize import synthesize_flow
from synthq.tasks.core.config import FactoryConfig
from synthq.tasks.core.lake import Lake
from synthq.tasks.core.report import failed_shards, failure_summary


@flow(name="factory")
def factory_flow(config: FactoryConfig = FactoryConfig()) -> dict:
    engine_for(config)  # start the model load now; every stage finds the same engine
    ingest_flow(config)
    attribute_flow(config)
    synthesize_flow(config)
    curate_flow(config)
    respond_flow(config)
    info = publish_flow(config)
    missing = failed_shards(Lake(config.lake))
    if missing:  # published only because publish.allow_partial is set: the run still failed
        raise StageFailed(f"Published the partial release {info['name']}/v{info['version']}: {failure_summary(missing)}")
    return info
