"""The ingest stage over shards: read each shard's units, extract and clean every page, and
sign the kept documents for near-duplicate search.

A shard's input is a table of units (see `synthq.tasks.ingest.sources`): HTML files, row ranges of
JSONL/Parquet files or Hugging Face datasets, WARC/WET files, or shards of crawled pages.
MinHash signatures travel with each shard as a sidecar, computed once, in parallel; the
dedup across the whole corpus (`synthq.tasks.ingest.dedup`) runs after every shard is written.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator

import pyarrow as pa

from synthq.tasks.core.config import FactoryConfig, IngestConfig
from synthq.tasks.shards.context import StageContext
from synthq.tasks.core.lake import Lake, StageResult
from synthq.tasks.core.records import DOCUMENTS, REJECTED, table
from synthq.tasks.shards.stage import ShardSpec, Stage
from synthq.tasks.ingest.crawled import read_crawled
from synthq.tasks.ingest.extract import extract_page
from synthq.tasks.ingest.minhash import SIDECAR, sidecar_table, signatures
from synthq.tasks.ingest.readers import read_units
from synthq.tasks.ingest.sources import Plan

DATASET = "documents"


def read_pages(units: list[dict], lake: Lake, cfg: IngestConfig, stats: dict) -> Iterator:
    """Raw pages (or rejections) of every unit of a shard, crawled shards from the lake."""
    crawled = [u for u in units if u["kind"] == "crawled"]
    others = [u for u in units if u["kind"] != "crawled"]
    for unit in crawled:
        yield from read_crawled(lake, unit["uri"])
    if others:
        yield from read_units(others, cfg, stats)


def process(units: pa.Table, ctx: StageContext) -> StageResult:
    """A shard of units -> documents, rejections by reason, and the documents' signatures."""
    cfg = ctx.cfg.ingest
    docs, rejected, read_stats, seen = [], [], {}, Counter()
    for item in read_pages(units.to_pylist(), ctx.lake, cfg, read_stats):
        if isinstance(item, dict):  # the reader's own rejection
            rejected.append(item)
            continue
        seen["pages"] += 1
        doc, rej = extract_page(item, cfg)
        (docs if doc else rejected).append(doc or rej)
    sigs = signatures([d["text"] for d in docs], cfg.dedup)
    # the age of every document of this ingest batch (the run, resumed or not): within a batch
    # dedup then keeps copies by shard name, the same choice whatever order shards finished in
    batch = ctx.lake.batch_time(DATASET)
    stats = {**seen, "records": read_stats, "ingested_at": batch if batch is not None else time.time()}
    return StageResult(
        table(docs, DOCUMENTS), table(rejected, REJECTED), stats, sidecars={SIDECAR: sidecar_table([d["id"] for d in docs], sigs, cfg.dedup)}
    )


# What a shard's output depends on: not which sources were named (a shard names its own
# input), nor the crawl or cross-corpus dedup settings (they act outside the shard).
CONFIG_FIELDS = tuple(
    f"ingest.{f}"
    for f in ("quality", "languages", "min_language_score", "fast", "text_column", "html_column",
              "url_column", "max_page_bytes", "dedup.num_perm", "dedup.shingle_words")
)
STAGE_SPEC = Stage(DATASET, CONFIG_FIELDS, process)


def units_table(units: list[dict]) -> pa.Table:
    return pa.Table.from_pylist(units, schema=pa.schema([("kind", pa.string()), ("uri", pa.string()), ("start", pa.int64()), ("stop", pa.int64()), ("stamp", pa.string())]))


def shard_specs(plan: Plan, crawled_units: list[dict]) -> list[ShardSpec]:
    """One spec per planned shard, and one per crawled shard (named after it)."""
    specs = [ShardSpec(name, input_id, rows=units_table(units)) for name, input_id, units in plan.shards]
    specs += [ShardSpec(f"crawl-{u['uri']}", u["stamp"], rows=units_table([u])) for u in crawled_units]
    return specs


def kept_shards(lake: Lake, cfg: FactoryConfig) -> tuple[str, ...]:
    """Shards of earlier ingests that this run keeps: all of them in append mode, none otherwise."""
    return tuple(lake.shards(DATASET)) if cfg.ingest.append else ()
