"""Publish flow: the curated set -> the next immutable release, with card, stats and catalog
row; the release index grows by the new rows; the scaling view is refreshed as artifacts."""

from __future__ import annotations

from collections import Counter

from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact, create_table_artifact

from synthq.flows.runtime import StageFailed
from synthq.tasks.core.config import FactoryConfig
from synthq.tasks.core.lake import Lake
from synthq.tasks.core.release_index import release_index
from synthq.tasks.core.report import failed_shards, failure_summary, lake_report, pairs_markdown
from synthq.tasks.curate.select import screened_vectors
from synthq.tasks.llm.tokens import Tokens
from synthq.tasks.publish import catalog
from synthq.tasks.publish.hub import hub_token, push_release
from synthq.tasks.publish.release import DATA_FILE, head, publish
from synthq.tasks.publish.scaling import plot_into_lake, table_rows
from synthq.tasks.publish.subsets import curated_ids, training_subsets, verifiable_rows


def scaling_artifacts(lake: Lake, name: str | None = None) -> str | None:
    """Write the scaling plot into the lake and show it with its table in the Prefect UI;
    returns the plot's path, or None while no release has benchmark results."""
    with catalog.local_catalog(lake) as path:
        points = catalog.scaling_points(path, name)
    if not points:
        return None
    target = plot_into_lake(lake, points, name)
    rows = table_rows(points)
    create_table_artifact(rows, key="scaling-table", description="Benchmark score vs. release size")
    create_markdown_artifact(
        key="scaling-plot",
        markdown=f"## Benchmark score vs. release size\n\nPlot: `{target}`\n\n"
        + "\n".join(f"- {r['benchmark / metric']}: {r['gain per 10x rows']:+.4g} per 10x rows" for r in rows if r["gain per 10x rows"] is not None),
        description="Scaling plot (log x) and trend per benchmark",
    )
    return target


@flow(name="scaling")
def scaling_flow(config: FactoryConfig = FactoryConfig()) -> str | None:
    """Refresh the scaling plot and its artifacts (e.g. after attaching benchmark results)."""
    return scaling_artifacts(Lake(config.lake), config.publish.name)


def nothing_curated(stages: dict[str, dict]) -> str:
    """Why there is nothing to publish, with the stages' largest drop reasons."""
    drops = []
    for name in ("demonstrations", "instructions", "scored", "curated"):
        top = Counter(stages.get(name, {}).get("reasons", {})).most_common(3)
        if top:
            drops.append(f"{name}: " + ", ".join(f"{k} {v}" for k, v in top))
    why = f" Largest drops: {'; '.join(drops)}." if drops else ""
    return ("Nothing to publish: curation kept no instruction." + why
            + " See `synthq report` for every reason, and the curate settings (curate.checks, curate.min_score) that set them.")


@flow(name="publish")
def publish_flow(config: FactoryConfig = FactoryConfig()) -> dict:
    lake = Lake(config.lake)
    token = hub_token(config.publish.hub_token_env) if config.publish.push_to_hub else None
    missing = failed_shards(lake)
    if missing and not config.publish.allow_partial:
        raise StageFailed(f"Not publishing a partial release: {failure_summary(missing)} "
                          "(or set publish.allow_partial=true to publish what there is, with the gaps in its card)")
    stages = {r["dataset"]: r for r in lake_report(lake)}
    if not lake.report("curated")["kept"]:
        raise StageFailed(nothing_curated(stages))
    subsets = training_subsets(lake, curated_ids(lake), config.respond.variants(), partial=bool(missing)) if config.respond.enabled else {}
    if config.synthesize.constraints.enabled:
        subsets["verifiable"] = verifiable_rows(lake)
    curated = (lake.read_shard("curated", s) for s in lake.shards("curated"))  # one shard at a time
    info = publish(
        lake, config.publish.name, curated, stages, config.model_dump(),
        config.digest("ingest", "attribute", "synthesize", "curate", "respond", "engine"),
        count_tokens=Tokens(config.engine).count, index=release_index(lake, config), subsets=subsets, missing=missing,
        known=screened_vectors(lake, config),
    )
    logger = get_run_logger()
    hub = ""
    if token:
        url = push_release(lake, info["path"], config.publish.push_to_hub, token, private=config.publish.hub_private)
        info["hub_url"] = url
        hub = f"\n\nPushed to the Hub: {url}"
        logger.info("pushed %s/v%d to %s", info["name"], info["version"], url)
    info["scaling_plot"] = scaling_artifacts(lake, info["name"])
    plot_line = f"\n\nScaling plot: `{info['scaling_plot']}`" if info["scaling_plot"] else ""
    counts = ", ".join(f"{k}: {v}" for k, v in info["subsets"].items())
    pairs = head(lake, f"{info['path']}/preferences/{DATA_FILE}", 3) if info["subsets"].get("preferences") else []
    sample = f"\n\n## Sample preference pairs\n\n{pairs_markdown(pairs)}" if pairs else ""
    create_markdown_artifact(
        key="release",
        markdown=f"## Release {info['name']}/v{info['version']}\n\n{info['rows']} rows from {info['documents']} documents, "
        f"mean score {info['score_mean']:.2f}/7.\n\nSubsets (rows): {counts}\n\nPath: `{info['path']}` "
        f"(dataset card: `{info['path']}/README.md`; load a subset with `datasets.load_dataset(path, \"sft\")`)"
        f"{hub}{plot_line}\n\nExplore its rows, documents, demonstrations and rejections in the browser: "
        f"`synthq view --lake {lake.url} {info['name']}/v{info['version']}`{sample}\n",
        description="The published release",
    )
    logger.info("published %s/v%d: %d rows at %s", info["name"], info["version"], info["rows"], info["path"])
    if config.publish.evaluate:  # the release trained on and scored, onto its scaling curve
        from synthq.flows.evaluate import evaluate_flow

        info["evaluation"] = evaluate_flow(config, f"{info['name']}/v{info['version']}")
    return info
