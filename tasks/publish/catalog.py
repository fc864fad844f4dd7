"""The release catalog: an SQLite file in the lake, one row per published release, the
benchmark results users attach to releases, and the ledger of the models synthq trained on
its releases and scored (`evaluations`: one row per benchmark metric, with what made it).

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

from synthq.tasks.core.errors import LakeError
from synthq.tasks.core.lake import Lake

CATALOG = "catalog.sqlite"

SCHEMA = """
CREATE TABLE IF NOT EXISTS releases (
    name TEXT NOT NULL,
    version INTEGER NOT NULL,
    path TEXT NOT NULL,
    rows INTEGER NOT NULL,
    documents INTEGER NOT NULL,
    tokens INTEGER,
    parent INTEGER,
    config_digest TEXT NOT NULL,
    created_at REAL NOT NULL,
    PRIMARY KEY (name, version)
);
CREATE TABLE IF NOT EXISTS results (
    name TEXT NOT NULL,
    version INTEGER NOT NULL,
    benchmark TEXT NOT NULL,
    metric TEXT NOT NULL,
    value REAL NOT NULL,
    model TEXT NOT NULL,
    source TEXT NOT NULL,
    added_at REAL NOT NULL,
    PRIMARY KEY (name, version, benchmark, metric, model)
);
CREATE TABLE IF NOT EXISTS evaluations (
    run TEXT NOT NULL,              -- the key of what produced the row (see synthq.flows.evaluate)
    name TEXT NOT NULL,
    version INTEGER NOT NULL,       -- 0 for the base model's own scores (the baseline)
    subset TEXT NOT NULL,
    fraction REAL NOT NULL,         -- 0 for the baseline
    rows INTEGER NOT NULL,          -- rows trained on
    tokens INTEGER NOT NULL,        -- tokens trained on
    release_fingerprint TEXT NOT NULL,
    base_model TEXT NOT NULL,
    model_path TEXT NOT NULL,
    benchmark TEXT NOT NULL,
    metric TEXT NOT NULL,
    value REAL NOT NULL,
    stderr REAL,
    harness TEXT NOT NULL,
    data_sha256 TEXT NOT NULL,      -- of the benchmark's prompts ('' when the harness loads them)
    "limit" INTEGER,
    generation TEXT NOT NULL,       -- JSON: the harness settings
    training TEXT NOT NULL,         -- JSON: evaluate.train (and dpo), with the seed
    seed INTEGER NOT NULL,
    device TEXT NOT NULL,
    seconds REAL NOT NULL,          -- training and scoring, wall time
    smoke INTEGER NOT NULL,         -- a limited benchmark or a short training: not a real point
    decontaminated INTEGER NOT NULL,
    added_at REAL NOT NULL,
    PRIMARY KEY (run, benchmark, metric)
)
"""
EVALUATION_COLUMNS = (
    "run", "name", "version", "subset", "fraction", "rows", "tokens", "release_fingerprint", "base_model", "model_path",
    "benchmark", "metric", "value", "stderr", "harness", "data_sha256", "limit", "generation", "training", "seed", "device",
    "seconds", "smoke", "decontaminated",
)


def _connect(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, timeout=30)
    conn.executescript(SCHEMA)
    columns = {row[1] for row in conn.execute("PRAGMA table_info(releases)")}
    if "tokens" not in columns:  # catalogs written before releases counted tokens
        conn.execute("ALTER TABLE releases ADD COLUMN tokens INTEGER")
    if "missing_shards" not in columns:  # catalogs written before partial releases were possible
        conn.execute("ALTER TABLE releases ADD COLUMN missing_shards TEXT NOT NULL DEFAULT ''")
    return conn


def record(
    path: Path, *, name: str, version: int, release_path: str, rows: int, documents: int, tokens: int | None,
    parent: int | None, config_digest: str, missing_shards: list[str] = (),
) -> None:
    """One release; `missing_shards` ('dataset/shard') names what a partial release lacks."""
    with closing(_connect(path)) as conn, conn:
        conn.execute(
            "INSERT INTO releases (name, version, path, rows, documents, tokens, parent, config_digest, created_at, missing_shards) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (name, version, release_path, rows, documents, tokens, parent, config_digest, time.time(), ",".join(missing_shards)),
        )


def releases(path: Path, name: str | None = None) -> list[dict]:
    if not path.exists():
        return []
    with closing(_connect(path)) as conn:
        conn.row_factory = sqlite3.Row
        query = "SELECT * FROM releases" + (" WHERE name = ?" if name else "") + " ORDER BY name, version"
        return [dict(r) for r in conn.execute(query, (name,) if name else ())]


def resolve_release(path: Path, ref: str) -> tuple[str, int]:
    """'<name>/v<N>' or '<name>' (its latest version) -> (name, version) of a catalogued release."""
    name, _, ver = ref.partition("/")
    known = releases(path, name)
    if not known:
        names = sorted({r["name"] for r in releases(path)})
        raise LakeError(f"No release named '{name}' in the catalog; known: {', '.join(names) or 'none'}.")
    if not ver:
        return name, known[-1]["version"]
    if not (ver.startswith("v") and ver[1:].isdigit()):
        raise LakeError(f"Release '{ref}' must look like <name>/v<N> (or just <name> for the latest).")
    if int(ver[1:]) not in {r["version"] for r in known}:
        versions = ", ".join(f"v{r['version']}" for r in known)
        raise LakeError(f"Release '{ref}' does not exist; '{name}' has {versions}.")
    return name, int(ver[1:])


def add_results(path: Path, name: str, version: int, rows: list[dict], source: str) -> int:
    """Attach results to a release; a result for the same benchmark, metric and model is replaced."""
    now = time.time()
    with closing(_connect(path)) as conn, conn:
        conn.executemany(
            "INSERT OR REPLACE INTO results VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [(name, version, r["benchmark"], r["metric"], r["value"], r["model"], source, now) for r in rows],
        )
    return len(rows)


def record_evaluation(path: Path, rows: list[dict]) -> int:
    """A run's rows, all in one transaction (a killed run leaves none); a run's rows again replace it."""
    now = time.time()
    names = ", ".join(f'"{c}"' for c in (*EVALUATION_COLUMNS, "added_at"))
    marks = ", ".join("?" * (len(EVALUATION_COLUMNS) + 1))
    with closing(_connect(path)) as conn, conn:
        conn.executemany(f"INSERT OR REPLACE INTO evaluations ({names}) VALUES ({marks})",
                         [(*(r[c] for c in EVALUATION_COLUMNS), now) for r in rows])
    return len(rows)


def evaluations(path: Path, name: str | None = None, run: str | None = None) -> list[dict]:
    """Ledger rows (of one dataset, or one run), ordered by benchmark, metric, rows trained on."""
    if not path.exists():
        return []
    where = [(c, v) for c, v in (("name", name), ("run", run)) if v]
    query = ("SELECT * FROM evaluations" + (" WHERE " + " AND ".join(f"{c} = ?" for c, _ in where) if where else "")
             + " ORDER BY benchmark, metric, rows, added_at")
    with closing(_connect(path)) as conn:
        conn.row_factory = sqlite3.Row
        return [dict(r) for r in conn.execute(query, tuple(v for _, v in where))]


def scaling_points(path: Path, name: str | None = None) -> list[dict]:
    """Every attached result joined with its release's size, and every ledger row at the rows
    its model trained on (`trained`; the baseline at 0 rows, `smoke` runs flagged), ordered by
    benchmark, metric, size."""
    if not path.exists():
        return []
    query = (
        "SELECT r.name, r.version, r.benchmark, r.metric, r.model, r.value, rel.rows "
        "FROM results r JOIN releases rel ON rel.name = r.name AND rel.version = r.version"
        + (" WHERE r.name = ?" if name else "")
    )
    with closing(_connect(path)) as conn:
        conn.row_factory = sqlite3.Row
        attached = [dict(r) | {"trained": False, "smoke": False, "fraction": 1.0} for r in conn.execute(query, (name,) if name else ())]
    trained = [{"name": e["name"], "version": e["version"], "benchmark": e["benchmark"], "metric": e["metric"],
                "model": e["model_path"], "value": e["value"], "rows": e["rows"], "trained": True, "smoke": bool(e["smoke"]),
                "fraction": e["fraction"]} for e in evaluations(path, name)]
    return sorted(attached + trained, key=lambda p: (p["benchmark"], p["metric"], p["rows"]))


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
