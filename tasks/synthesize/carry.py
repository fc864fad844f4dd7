"""Instructions carried over when shards of documents are redone but their documents are not new.

Synthesis groups the documents of a shard, so a shard cut differently (another `shard_size`,
documents re-ingested) shows each document other demonstrations, and the LLM cache, keyed by
the prompt, would miss. Before the stage runs, the rows (kept and rejected) of every finished
shard written with the current key are set aside once; a redone shard takes its documents'
rows from there and plans requests only for documents that have none. Nothing is generated
twice for a document under the same prompt, config and (with `refresh`) demonstrations.
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from synthq.tasks.core.config import FactoryConfig
from synthq.tasks.core.lake import Lake
from synthq.tasks.shards.stage import ShardSpec, Stage

FOLDER = "cache/carry/instructions"


def _path(lake: Lake, part: str) -> str:
    return lake.path(FOLDER, f"{part}.parquet")


def clear(lake: Lake) -> None:
    folder = lake.path(FOLDER)
    if lake.fs.exists(folder):
        lake.fs.rm(folder, recursive=True)


def snapshot(lake: Lake, stage: Stage, specs: list[ShardSpec], cfg: FactoryConfig) -> int:
    """Set aside the rows that shards about to be redone may reuse; returns how many."""
    clear(lake)
    digest = stage.digest(cfg)

    def current(shard: str, input_id: str, reads: dict) -> bool:
        return lake.is_finished(stage.dataset, shard, input_id=input_id, config=digest, reads=reads if cfg.refresh else None)

    if all(current(s.shard, s.input_id, s.reads) for s in specs):
        return 0
    reads = specs[0].reads if specs else {}
    usable = [m["shard"] for m in lake.manifests(stage.dataset) if m["config"] == digest and (not cfg.refresh or m.get("reads", {}) == reads)]
    if not usable:
        return 0
    kept = pa.concat_tables([lake.read_shard(stage.dataset, s) for s in usable])
    rejected = pa.concat_tables([lake.read_shard(stage.dataset, s, rejected=True) for s in usable])
    lake.write_table(_path(lake, "kept"), kept)
    lake.write_table(_path(lake, "rejected"), rejected)
    return kept.num_rows + rejected.num_rows


def carried(lake: Lake, document_ids: list[str]) -> tuple[list[dict], list[dict]]:
    """(kept rows, rejected rows) set aside for these documents."""
    if not document_ids or not lake.fs.exists(_path(lake, "kept")):
        return [], []  # a shard with no documents left has none to look up
    wanted = pa.array(document_ids, pa.string())

    def rows(part: str, column: str) -> list[dict]:  # only this shard's rows are read into memory
        with lake.fs.open(_path(lake, part), "rb") as f:
            return pq.read_table(f, filters=pc.field(column).isin(wanted)).to_pylist()

    return rows("kept", "document_id"), rows("rejected", "record_id")
