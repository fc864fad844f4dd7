"""The release catalog: an SQLite file in the lake, one row per published release.

On a local lake the file is used in place; on a remote lake (s3://, ...) it is copied to a
temp folder, changed there and written back atomically.
"""

from __future__ import annotations

import sqlite3
import tempfile
import time
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path

from fsspec.implementations.local import LocalFileSystem

from tasks.core.lake import Lake

CATALOG = "catalog.sqlite"

SCHEMA = """
CREATE TABLE IF NOT EXISTS releases (
    name TEXT NOT NULL,
    version INTEGER NOT NULL,
    path TEXT NOT NULL,
    rows INTEGER NOT NULL,
    documents INTEGER NOT NULL,
    parent INTEGER,
    config_digest TEXT NOT NULL,
    created_at REAL NOT NULL,
    PRIMARY KEY (name, version)
)
"""


def _connect(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, timeout=30)
    conn.execute(SCHEMA)
    return conn


def record(path: Path, *, name: str, version: int, release_path: str, rows: int, documents: int, parent: int | None, config_digest: str) -> None:
    with closing(_connect(path)) as conn, conn:
        conn.execute(
            "INSERT INTO releases VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (name, version, release_path, rows, documents, parent, config_digest, time.time()),
        )


def releases(path: Path, name: str | None = None) -> list[dict]:
    if not path.exists():
        return []
    with closing(_connect(path)) as conn:
        conn.row_factory = sqlite3.Row
        query = "SELECT * FROM releases" + (" WHERE name = ?" if name else "") + " ORDER BY name, version"
        return [dict(r) for r in conn.execute(query, (name,) if name else ())]


@contextmanager
def local_catalog(lake: Lake, write: bool = False) -> Iterator[Path]:
    """A local path to the lake's catalog; with write=True, changes are written back."""
    remote = lake.path(CATALOG)
    if isinstance(lake.fs, LocalFileSystem):
        yield Path(remote)
        return
    with tempfile.TemporaryDirectory() as tmp:
        local = Path(tmp) / CATALOG
        if lake.fs.exists(remote):
            local.write_bytes(lake.fs.cat_file(remote))
        yield local
        if write:
            lake.write_bytes(remote, local.read_bytes())
