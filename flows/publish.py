"""Publish flow: the curated set -> the next immutable release, with card, stats and catalog row."""

from __future__ import annotations

from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact

from tasks.core.config import FactoryConfig
from tasks.core.lake import Lake
from tasks.core.report import lake_report
from tasks.publish.release import publish

@flow(name="publish")
def publish_flow(config: FactoryConfig = FactoryConfig()) -> dict:
    lake = Lake(config.lake)
    stages = {r["dataset"]: r for r in lake_report(lake)}
    info = publish(lake, config.publish.name, lake.read("curated"), stages, config.model_dump(), config.digest("ingest", "attribute", "synthesize", "curate", "engine"))
    create_markdown_artifact(
        key="release",
        markdown=f"## Release {info['name']}/v{info['version']}\n\n{info['rows']} rows from {info['documents']} documents, "
        f"mean score {info['score_mean']:.2f}/7.\n\nPath: `{info['path']}` (dataset card: `{info['path']}/README.md`)\n",
        description="The published release",
    )
    get_run_logger().info("published %s/v%d: %d rows at %s", info["name"], info["version"], info["rows"], info["path"])
    return info
