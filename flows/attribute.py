"""Attribute flow: seeds + documents -> demonstrations (keywords, retrieval, grounding)."""

from __future__ import annotations

from dataclasses import replace

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NONE

from synthq.flows.runtime import ensure_ray, run_stage
from synthq.tasks.attribute.process import STAGE_SPEC, seed_specs, write_bad_seeds
from synthq.tasks.attribute.retrieve import build_index, built_index, index_key
from synthq.tasks.core.config import FactoryConfig
from synthq.tasks.core.lake import Lake
from synthq.tasks.core.parallel import run_alone
from synthq.tasks.ingest.dedup import apply_drops, find_duplicates
from synthq.tasks.ingest.web import fetch_documents

# search mode grounds seeds in pages fetched and cleaned as ingest does
STAGE = replace(STAGE_SPEC, services={"fetch_documents": fetch_documents})


@task(cache_policy=NONE)
def index_documents(config: FactoryConfig) -> str:
    """Build the retrieval index (embedding new documents shards in Ray tasks) in a Ray worker of
    its own: the whole index, and the BM25 one, are never held by the flow's process. An index
    built from the same documents and settings is kept."""
    lake, cfg = Lake(config.lake), config.attribute
    key = index_key(lake, config.embedder, cfg.retrieval, cfg.index)
    info = built_index(lake, key)
    if info:
        return f"{info['documents']} documents (the index already built from them)"
    ensure_ray(config)
    args = (lake, config.embedder, cfg.retrieval, cfg.index, True, key)  # True: new shards embedded in Ray tasks
    info = run_alone(build_index, args, remote=True)
    if info["kind"] == "ivf" and info["documents"]:
        return (f"{info['documents']} documents in an IVF index ({info['nlist']} lists, {info['nprobe']} searched; "
                f"recall@1 against exact search {info['recall_at_1']:.3f} on {info['recall_sample']} documents)")
    return f"{info['documents']} documents in a flat index (exact search)"


@flow(name="attribute")
def attribute_flow(config: FactoryConfig = FactoryConfig()) -> dict:
    lake = Lake(config.lake)
    specs, bad, detected = seed_specs(config)
    log = get_run_logger()
    for source, how in detected.items():
        log.info("attribute: seeds %s: %s", source, how)
    log.info("attribute: %d valid seeds in %d shards, %d bad seed lines", sum(s.rows.num_rows for s in specs), len(specs), len(bad))
    log.info("attribute: indexed %s for retrieval", index_documents(config))
    extra = ()
    if bad:
        write_bad_seeds(lake, bad, STAGE_SPEC.digest(config))
        extra = ("bad-seeds",)
    report = run_stage(STAGE, specs, config, extra_shards=extra)
    if config.attribute.retrieval == "search":  # shards may have fetched the same page: dedup as ingest does
        dropped = apply_drops(lake, find_duplicates(lake, config.ingest.dedup))
        log.info("attribute: search pages joined the documents; %d duplicates of earlier pages moved to rejected", dropped)
    return report
