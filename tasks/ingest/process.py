"""The ingest stage over shards: plan shards of input files, extract each, drop duplicates.

Exact duplicates are found across the whole dataset, not per shard: `duplicate_ids` picks,
for every repeated document id, the copies to drop (all but the first in shard order).
"""

from __future__ import annotations

import glob
import hashlib
import os

import pyarrow as pa

from tasks.core.config import FactoryConfig, IngestConfig
from tasks.core.context import StageContext
from tasks.core.errors import InputError
from tasks.core.lake import Lake, StageResult
from tasks.core.stage import ShardSpec, Stage
from tasks.core.records import DOCUMENTS, REJECTED, rejection, table
from tasks.ingest.extract import STAGE, extract_page
from tasks.sample import PAGES, resolve

HTML_SUFFIXES = (".html", ".htm", ".xhtml")


def list_pages(pages: str) -> list[str]:
    """Sorted HTML files of a folder (recursively) or a glob; a clear error when there are none."""
    where = resolve(pages, PAGES)
    if os.path.isdir(where):
        files = [
            os.path.join(root, name)
            for root, _, names in os.walk(where)
            for name in names
            if name.lower().endswith(HTML_SUFFIXES)
        ]
    else:
        files = [f for f in glob.glob(where, recursive=True) if os.path.isfile(f)]
    if not files:
        raise InputError(f"No HTML files found at '{where}': give a folder of .html files or a glob.")
    return sorted(files)


def plan_shards(files: list[str], shard_size: int) -> list[tuple[str, list[str], str]]:
    """(shard name, files, input id) per shard; the input id changes when any file changes."""
    shards = []
    for start in range(0, len(files), shard_size):
        chunk = files[start : start + shard_size]
        stamp = "\n".join(f"{f}:{os.path.getsize(f)}:{int(os.path.getmtime(f))}" for f in chunk)
        shards.append((f"{start // shard_size:05d}", chunk, hashlib.sha256(stamp.encode()).hexdigest()[:16]))
    return shards


def extract_all(files: list[str], cfg: IngestConfig) -> StageResult:
    docs, rejected = [], []
    for path in files:
        doc, rej = extract_page(path, cfg)
        (docs if doc else rejected).append(doc or rej)
    return StageResult(table(docs, DOCUMENTS), table(rejected, REJECTED), {"pages": len(files)})


def process(paths: pa.Table, ctx: StageContext) -> StageResult:
    """A shard of input files (column `path`) -> documents."""
    return extract_all(paths.column("path").to_pylist(), ctx.cfg.ingest)


def file_specs(cfg: FactoryConfig) -> list[ShardSpec]:
    files = list_pages(cfg.ingest.pages)
    return [ShardSpec(name, input_id, rows=pa.table({"path": chunk})) for name, chunk, input_id in plan_shards(files, cfg.shard_size)]


def drop_cross_shard_duplicates(lake: Lake) -> int:
    """Move exact duplicates across shards to rejected (first copy kept); returns how many."""
    manifests = lake.manifests(DATASET)
    drop = duplicate_ids([(m["shard"], lake.read_shard(DATASET, m["shard"]).column("id").to_pylist()) for m in manifests])
    for m in manifests:
        if m["shard"] in drop:
            result = split_duplicates(lake.read_shard(DATASET, m["shard"]), lake.read_shard(DATASET, m["shard"], rejected=True), drop[m["shard"]])
            result.stats = m["stats"]
            lake.write_shard(DATASET, m["shard"], result, input_id=m["input"], config=m["config"])
    return sum(map(len, drop.values()))


DATASET = "documents"
STAGE_SPEC = Stage(DATASET, ("ingest",), process)


def duplicate_ids(shard_ids: list[tuple[str, list[str]]]) -> dict[str, set[int]]:
    """shard -> row positions to drop, keeping the first copy of each id in shard order."""
    seen: set[str] = set()
    drop: dict[str, set[int]] = {}
    for shard, ids in shard_ids:
        for pos, doc_id in enumerate(ids):
            if doc_id in seen:
                drop.setdefault(shard, set()).add(pos)
            seen.add(doc_id)
    return drop


def split_duplicates(kept: pa.Table, rejected: pa.Table, positions: set[int]) -> StageResult:
    """Move the rows at `positions` from kept to rejected with reason 'duplicate'."""
    rows = kept.to_pylist()
    dropped = [
        rejection(STAGE, "duplicate", f"same text as an earlier document ({r['id']})", r["id"], r)
        for i, r in enumerate(rows)
        if i in positions
    ]
    keep = [r for i, r in enumerate(rows) if i not in positions]
    moved = pa.concat_tables([rejected, table(dropped, REJECTED)])
    return StageResult(table(keep, DOCUMENTS), moved)
