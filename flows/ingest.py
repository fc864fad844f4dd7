"""Ingest flow: sources -> documents.

Plan the shards (files, tables, WARC/WET, datasets), crawl the URL seeds into the lake
first if there are any, extract and clean every shard on Ray, then drop exact and near
duplicates across the whole corpus, earlier ingests included, with distributed Ray tasks.
"""

from __future__ import annotations

import ray
from prefect import flow, get_run_logger, task
from prefect.cache_policies import NONE

from synthq.flows.runtime import ensure_ray, publish_report, run_stage
from synthq.tasks.core.config import FactoryConfig
from synthq.tasks.core.lake import Lake
from synthq.tasks.ingest.crawled import crawl_to_lake
from synthq.tasks.ingest.dedup import apply_drops, find_duplicates
from synthq.tasks.ingest.process import STAGE_SPEC, kept_shards, shard_specs
from synthq.tasks.ingest.sources import plan


@task(cache_policy=NONE, task_run_name="crawl-{n_seeds}-seeds")
def crawl_task(seeds: list[str], config: FactoryConfig, n_seeds: int) -> list[dict]:
    """The crawl runs in one Ray task (it is I/O-bound and polite per host, not CPU-bound)."""
    ref = ray.remote(crawl_to_lake).options(num_cpus=0.5).remote(seeds, config.ingest.crawl, config.lake, config.shard_size)
    summary = ray.get(ref)
    stats = summary.get("stats", {})
    get_run_logger().info(
        "crawl %s: %d pages, %d refused or failed %s, %s requests, %s retries",
        "reused from the lake" if summary.get("reused") else "finished", stats.get("pages", 0),
        sum(summary["rejected"].values()), summary["rejected"] or "", stats.get("requests", 0), stats.get("retries", 0),
    )
    return summary["units"]


@task(cache_policy=NONE)
def dedup_task(config: FactoryConfig) -> int:
    lake = Lake(config.lake)
    return apply_drops(lake, find_duplicates(lake, config.ingest.dedup))


@flow(name="ingest")
def ingest_flow(config: FactoryConfig = FactoryConfig()) -> dict:
    log = get_run_logger()
    ensure_ray(config)
    found = plan(config.ingest.sources, config.ingest, config.shard_size)
    log.info("ingest: %s; %d shards; %d seed URLs to crawl", found.summary, len(found.shards), len(found.crawl_seeds))
    crawled = crawl_task(found.crawl_seeds, config, len(found.crawl_seeds)) if found.crawl_seeds else []
    lake = Lake(config.lake)
    earlier = kept_shards(lake, config)
    lake.open_batch(STAGE_SPEC.dataset)  # a run that resumes a killed one continues its batch
    run_stage(STAGE_SPEC, shard_specs(found, crawled), config, extra_shards=earlier, report=False)
    dropped = dedup_task(config)
    lake.close_batch(STAGE_SPEC.dataset)
    if dropped:
        log.info("ingest: %d duplicates and near-duplicates moved to rejected", dropped)
    return publish_report(lake, STAGE_SPEC.dataset)
