"""The release catalog: an SQLite file in the lake, one row per published release."""

from __future__ import annotations

import sqlite3
import time
from contextlib import closing
from pathlib import Path

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
