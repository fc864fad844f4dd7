"""Crawled pages in the lake: the crawl writes them in shards, ingest reads them back.

A crawl is named by its seeds and settings. Its pages land in `pages/` as shards of raw
responses (the page bytes as fetched), its refusals and failures in `pages/rejected/`, and a
marker in `pages/_crawls/` says the crawl finished: a rerun with the same seeds and
settings reuses the pages instead of fetching them again. Each crawled shard then becomes
one ingest shard, so extraction runs in parallel like any other source.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Iterator
from itertools import islice

from synthq.tasks.core.config import CrawlConfig
from synthq.tasks.core.lake import Lake, StageResult
from synthq.tasks.core.records import PAGES, REJECTED, table
from synthq.tasks.ingest.crawl import crawl
from synthq.tasks.ingest.raw import RawPage

DATASET = "pages"


def crawl_id(seeds: list[str], cfg: CrawlConfig) -> str:
    blob = json.dumps({"seeds": sorted(seeds), "crawl": cfg.model_dump()}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:12]


def _done_marker(lake: Lake, cid: str) -> str:
    return lake.path(DATASET, "_crawls", f"{cid}.json")


def _page_row(page: RawPage) -> dict:
    return {"url": page.url, "html": page.html, "text": page.text, "fetch_time": page.fetch_time}


def _batches(items: Iterator, size: int) -> Iterator[list]:
    while batch := list(islice(items, size)):
        yield batch


def crawl_to_lake(seeds: list[str], cfg: CrawlConfig, lake_url: str, shard_pages: int) -> dict:
    """Crawl (unless this crawl already finished); returns the crawl's summary: one unit per
    crawled shard, rejections by reason, and the crawler's counts (requests, retries, ...)."""
    lake = Lake(lake_url)
    cid = crawl_id(seeds, cfg)
    marker = _done_marker(lake, cid)
    if lake.fs.exists(marker):
        return {**json.loads(lake.fs.cat_file(marker)), "reused": True}
    units, reasons, stats = [], Counter(), {}
    for n, batch in enumerate(_batches(crawl(seeds, cfg, stats), shard_pages)):
        pages = [_page_row(x) for x in batch if isinstance(x, RawPage)]
        refused = [x for x in batch if not isinstance(x, RawPage)]
        reasons.update(r["reason"] for r in refused)
        shard = f"{cid}-{n:05d}"
        row = lake.write_shard(
            DATASET, shard, StageResult(table(pages, PAGES), table(refused, REJECTED)), input_id=cid, config=cid
        )
        units.append({"kind": "crawled", "uri": shard, "start": 0, "stop": -1, "stamp": row["checksum"]})
    summary = {"seeds": seeds, "units": units, "rejected": dict(reasons), "stats": stats}
    lake.write_bytes(marker, json.dumps(summary, default=str).encode())
    return summary


def read_crawled(lake: Lake, shard: str) -> Iterator[RawPage | dict]:
    """The pages of one crawled shard as raw pages, then the crawl's rejections for it."""
    for row in lake.read_shard(DATASET, shard).to_pylist():
        yield RawPage(url=row["url"], source="crawl", fetch_time=row["fetch_time"], html=row["html"], text=row["text"])
    yield from lake.read_shard(DATASET, shard, rejected=True).to_pylist()
