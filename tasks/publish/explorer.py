"""The explorer's database: an SQLite export of a lake, for looking at rows in a browser.

One table per record type (documents, seeds, demonstrations, instructions, responses, pairs),
the rows of every release (`release_rows`, one row per release and instruction), the releases
from the catalog, and every rejection of every stage with its reason. Foreign keys link a
released row to its document, a demonstration to its seed and document, an answer to its
query, so the explorer (`explorer_app.py`, on Datasette) turns them into links. Queries and
documents get full-text indexes.

The export is rebuilt only when the lake changed: its fingerprint covers every manifest row
and every catalogued release. It is written to a temp file and moved into place, so a viewer
never sees half an export.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import sqlite_utils
from fsspec.implementations.local import LocalFileSystem

from synthq.tasks.core import records
from synthq.tasks.core.lake import Lake
from synthq.tasks.core.report import DATASETS
from synthq.tasks.publish import catalog
from synthq.tasks.publish.release import DATA_FILE

EXPORT_VERSION = "1"  # bump when the tables change, so old exports are rebuilt
BATCH = 2000  # rows per insert: bounded memory on large lakes

SEEDS = records._schema(
    ("id", pa.string(), "Id of the real seed instruction."),
    ("prompt", pa.string(), "The seed instruction text."),
)
RELEASES = records._schema(
    ("key", pa.string(), "The release as <name>/v<N>."),
    ("name", pa.string(), "Dataset name."),
    ("version", pa.int64(), "Release version."),
    ("rows", pa.int64(), "Queries in the release."),
    ("documents", pa.int64(), "Distinct documents behind them."),
    ("tokens", pa.int64(), "Query tokens (the model's tokenizer)."),
    ("parent", pa.string(), "The release this one follows."),
    ("missing_shards", pa.string(), "Upstream shards a partial release lacks."),
    ("created_at", pa.string(), "When it was published (UTC)."),
    ("path", pa.string(), "Where its files are."),
)
FIRST = ("id", "query", "score_total", "topic", "document_id", "demonstration_ids")  # what a reader looks at first
RELEASE_ROWS = pa.schema([
    pa.field("release", pa.string(), metadata={"description": "The release (<name>/v<N>) the row belongs to."}),
    *(records.CURATED.field(n) for n in FIRST),
    *(f for f in records.CURATED if f.name not in FIRST),
])
REJECTIONS = pa.schema([
    pa.field("dataset", pa.string(), metadata={"description": "The lake dataset whose stage removed the record."}),
    *records.REJECTED,
])

# table -> (schema, primary key, foreign keys as (column, table, column))
TABLES: dict[str, tuple[pa.Schema, tuple[str, ...], list[tuple[str, str, str]]]] = {
    "releases": (RELEASES, ("key",), []),
    "documents": (records.DOCUMENTS, ("id",), []),
    "seeds": (SEEDS, ("id",), []),
    "demonstrations": (records.DEMONSTRATIONS, ("id",),
                       [("seed_id", "seeds", "id"), ("document_id", "documents", "id")]),
    "instructions": (records.INSTRUCTIONS, ("id",), [("document_id", "documents", "id")]),
    "instruction_demonstrations": (records._schema(
        ("instruction_id", pa.string(), "The instruction."),
        ("demonstration_id", pa.string(), "A demonstration shown when it was synthesized."),
    ), ("instruction_id", "demonstration_id"),
        [("instruction_id", "instructions", "id"), ("demonstration_id", "demonstrations", "id")]),
    "release_rows": (RELEASE_ROWS, ("release", "id"),
                     [("release", "releases", "key"), ("document_id", "documents", "id")]),
    "responses": (records.RESPONSES, ("id",), [("query_id", "instructions", "id"), ("document_id", "documents", "id")]),
    "pairs": (records.PAIRS, ("id",), [("query_id", "instructions", "id"), ("chosen_id", "responses", "id"),
                                       ("rejected_id", "responses", "id"), ("document_id", "documents", "id")]),
    "rejections": (REJECTIONS, (), []),
}
SEARCHABLE = {"documents": ["title", "text"], "instructions": ["query"], "release_rows": ["query"],
              "demonstrations": ["seed_prompt", "scene"], "rejections": ["detail", "record"]}
FROM_LAKE = {"documents": "documents", "demonstrations": "demonstrations", "instructions": "instructions",
             "responses": "responses", "pairs": "pairs"}


def export_path(lake: Lake) -> Path:
    """Where the export of this lake lives: <lake>/explorer/synthq.db on a local lake, a
    per-lake folder of the user's cache for a remote one (SQLite needs a local file)."""
    if isinstance(lake.fs, LocalFileSystem):
        return Path(lake.path("explorer", "synthq.db"))
    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    return cache / "synthq" / "explorer" / hashlib.sha256(lake.url.encode()).hexdigest()[:16] / "synthq.db"


def fingerprint(lake: Lake) -> str:
    """Changes whenever a shard is written or pruned anywhere in the lake, or a release is published."""
    h = hashlib.sha256(EXPORT_VERSION.encode())
    for name in DATASETS:
        for m in lake.manifests(name):
            h.update(f"{name}/{m['shard']}:{m['checksum']}:{m['finished_at']}\n".encode())
    with catalog.local_catalog(lake) as path:
        for r in catalog.releases(path):
            h.update(f"release {r['name']}/v{r['version']}:{r['created_at']}\n".encode())
    return h.hexdigest()


def current_fingerprint(db_path: Path) -> str | None:
    if not db_path.exists():
        return None
    db = sqlite_utils.Database(db_path)
    try:
        if "about_this_export" not in db.table_names():
            return None
        rows = {r["key"]: r["value"] for r in db["about_this_export"].rows}
        return rows.get("fingerprint")
    finally:
        db.close()


def refresh(lake: Lake, db_path: Path | None = None) -> tuple[Path, bool]:
    """The export of `lake`, rebuilt only if the lake changed since; returns (path, rebuilt)."""
    db_path = db_path or export_path(lake)
    digest = fingerprint(lake)
    if current_fingerprint(db_path) == digest:
        return db_path, False
    db_path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=db_path.parent, prefix=".export-", suffix=".db")
    os.close(fd)
    try:
        build(lake, Path(tmp), digest)
        os.replace(tmp, db_path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return db_path, True


def build(lake: Lake, db_path: Path, digest: str = "") -> dict[str, int]:
    """Write the whole export into db_path (a new file); returns rows per table."""
    db = sqlite_utils.Database(db_path, recreate=True)
    try:
        for name, (schema, pk, fks) in TABLES.items():
            _create(db, name, schema, pk, fks)
        with catalog.local_catalog(lake) as path:
            found = catalog.releases(path)
        _insert(db, "releases", iter([[_release(r) for r in found]]))
        for table, dataset in FROM_LAKE.items():
            for shard in lake.shards(dataset):  # shard by shard: a large lake never sits in memory whole
                _insert(db, table, _batches(lake.read_shard(dataset, shard), TABLES[table][0]))
        _insert(db, "seeds", iter([_seeds(db)]))
        _insert(db, "instruction_demonstrations", iter([_links(db)]))
        for r in found:
            _insert(db, "release_rows", _release_rows(lake, r))
        for dataset in DATASETS:
            for shard in lake.shards(dataset):
                rejected = lake.read_shard(dataset, shard, rejected=True)
                _insert(db, "rejections", _batches(rejected, REJECTIONS, {"dataset": dataset}))
        for table, columns in SEARCHABLE.items():
            db[table].enable_fts(columns, create_triggers=False)
        counts = {name: db[name].count for name in TABLES}
        about = {"fingerprint": digest, "lake": lake.url, "exported_at": _iso(time.time()),
                 "export_version": EXPORT_VERSION, "rows": json.dumps(counts)}
        db["about_this_export"].insert_all([{"key": k, "value": v} for k, v in about.items()], pk="key")
        db.vacuum()
        return counts
    finally:
        db.close()


def _sql_type(dtype: pa.DataType) -> type:
    if pa.types.is_integer(dtype) or pa.types.is_boolean(dtype):
        return int
    if pa.types.is_floating(dtype):
        return float
    return str


def _create(db: sqlite_utils.Database, name: str, schema: pa.Schema, pk: tuple[str, ...], fks: list) -> None:
    columns = {f.name: _sql_type(f.type) for f in schema if not pa.types.is_binary(f.type)}
    db[name].create(columns, pk=(pk[0] if len(pk) == 1 else pk) if pk else None, foreign_keys=fks, not_null=set(pk))


def _insert(db: sqlite_utils.Database, name: str, batches: Iterator[list[dict]]) -> None:
    pk = TABLES[name][1]
    for rows in batches:
        if rows:
            db[name].insert_all(rows, replace=bool(pk), batch_size=500)  # a duplicate id keeps its last row


def _cell(value):
    """An Arrow value as an SQLite value: nested values as JSON, timestamps as ISO text."""
    if isinstance(value, (list, dict)):
        return json.dumps(value, ensure_ascii=False, default=str)
    if isinstance(value, dt.datetime):
        return value.isoformat()
    return value


def _batches(tbl: pa.Table, schema: pa.Schema, extra: dict | None = None) -> Iterator[list[dict]]:
    names = [f.name for f in schema if not pa.types.is_binary(f.type) and f.name in tbl.column_names]
    for batch in tbl.select(names).to_batches(max_chunksize=BATCH):
        yield [{**(extra or {}), **{k: _cell(v) for k, v in row.items()}} for row in batch.to_pylist()]


def _iso(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def release_key(name: str, version: int) -> str:
    return f"{name}/v{version}"


def _release(r: dict) -> dict:
    return {
        "key": release_key(r["name"], r["version"]), "name": r["name"], "version": r["version"],
        "rows": r["rows"], "documents": r["documents"], "tokens": r["tokens"],
        "parent": release_key(r["name"], r["parent"]) if r["parent"] else None,
        "missing_shards": r.get("missing_shards") or "", "created_at": _iso(r["created_at"]), "path": r["path"],
    }


def _release_rows(lake: Lake, r: dict) -> Iterator[list[dict]]:
    data = f"{r['path']}/data/{DATA_FILE}"
    if not lake.fs.exists(data):  # a catalogued release whose files were removed: nothing to show
        return
    with lake.fs.open(data, "rb") as f:
        tbl = pq.read_table(f)
    yield from _batches(tbl, RELEASE_ROWS, {"release": release_key(r["name"], r["version"])})


def _seeds(db: sqlite_utils.Database) -> list[dict]:
    """The seeds behind the demonstrations (the lake keeps them there, with their prompt)."""
    return [{"id": i, "prompt": p} for i, p in
            db.execute("SELECT seed_id, MIN(seed_prompt) FROM demonstrations GROUP BY seed_id").fetchall()]


def _links(db: sqlite_utils.Database) -> list[dict]:
    """instruction -> demonstration, one row per pair, from each instruction's demonstration_ids."""
    out = []
    for iid, ids in db.execute("SELECT id, demonstration_ids FROM instructions").fetchall():
        out += [{"instruction_id": iid, "demonstration_id": d} for d in dict.fromkeys(json.loads(ids or "[]"))]
    return out
