"""The lake: the one place that reads and writes datasets.

A lake is a root URL handled by fsspec (a local folder by default). Each dataset is a folder
of Parquet shards written atomically, plus the records it rejected and a manifest row per
shard:

    <root>/<dataset>/part-<shard>.parquet            kept records
    <root>/<dataset>/rejected/part-<shard>.parquet   removed records, with reason
    <root>/<dataset>/_manifest/<shard>.json          input, config hash, counts, checksum
    <root>/<dataset>/_<name>/part-<shard>.parquet    sidecars: per-row data aligned with kept
    <root>/<dataset>/_failed/<shard>.json            a shard whose last run failed, with the error
    <root>/<dataset>/_batch.json                     an unfinished batch (see open_batch)

The manifest is written last, so its presence marks a finished shard: a rerun with the same
input and config skips it, and a crash mid-shard leaves nothing that looks finished.
"""

from __future__ import annotations

import hashlib
import io
import json
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import IO, Callable

import fsspec
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from synthq.tasks.core.errors import LakeError


@dataclass
class StageResult:
    """What a stage's `process` returns for one shard."""

    kept: pa.Table
    rejected: pa.Table
    stats: dict = field(default_factory=dict)
    sidecars: dict[str, pa.Table] = field(default_factory=dict)  # name -> rows aligned with kept


STALE_AFTER = 6 * 3600  # seconds after which an unfinished write was left by a killed process


def _modified(info: dict) -> float | None:
    """A file's modification time (epoch seconds) from its fsspec info: local and object stores name it differently."""
    stamp = info.get("mtime", info.get("LastModified", info.get("last_modified")))
    if stamp is None:
        return None
    return stamp.timestamp() if hasattr(stamp, "timestamp") else float(stamp)


class Lake:
    def __init__(self, root: str):
        self.url = str(root)
        self.fs, self.root = fsspec.core.url_to_fs(self.url)
        self.fs.makedirs(self.root, exist_ok=True)

    def path(self, *parts: str) -> str:
        return "/".join([self.root.rstrip("/"), *parts])

    def exists(self, *parts: str) -> bool:
        return self.fs.exists(self.path(*parts))

    def prune_folder(self, folder: str, keep: set[str]) -> None:
        """Remove what `folder` holds except the names in `keep` and hidden names (writes in progress)."""
        if self.exists(folder):
            for path in self.fs.ls(self.path(folder), detail=False):
                name = path.rstrip("/").rsplit("/", 1)[-1]
                if name not in keep and not name.startswith("."):
                    self.fs.rm(path, recursive=True)

    def sweep_stale(self, folder: str, prefixes: tuple[str, ...] = (".staging-", ".tmp-"), age: float = STALE_AFTER) -> list[str]:
        """Remove the writes in progress in `folder` (hidden names with these prefixes) whose
        newest file is older than `age` seconds: what a killed process left. One whose age the
        store does not tell is kept. Returns the names removed."""
        removed = []
        if not self.exists(folder):
            return removed
        now = time.time()
        for info in self.fs.ls(self.path(folder), detail=True):
            name = info["name"].rstrip("/").rsplit("/", 1)[-1]
            if not name.startswith(prefixes):
                continue
            files = list(self.fs.find(info["name"], detail=True).values()) if info["type"] == "directory" else []
            files = files or [info]  # an empty folder: its own time
            stamps = [t for t in map(_modified, files) if t is not None]
            if stamps and len(stamps) == len(files) and now - max(stamps) > age:
                self.fs.rm(info["name"], recursive=True)
                removed.append(name)
        return removed

    # -- writing -----------------------------------------------------------------------
    def write_bytes(self, path: str, data: bytes) -> None:
        """Write a file atomically: a temp file beside it, then a rename."""
        self.write_with(path, lambda f: f.write(data))

    def write_with(self, path: str, write: Callable[[IO[bytes]], object]) -> None:
        """Write a file atomically, `write` streaming it into the open temp file beside it (so
        a large file is never held whole in memory), then a rename."""
        parent = path.rsplit("/", 1)[0]
        self.fs.makedirs(parent, exist_ok=True)
        tmp = f"{parent}/.tmp-{uuid.uuid4().hex}"
        with self.fs.open(tmp, "wb") as f:
            write(f)
        self.fs.mv(tmp, path)

    def write_table(self, path: str, tbl: pa.Table, row_group_size: int | None = None) -> str:
        """Write one Parquet file atomically; return its sha256."""
        buf = io.BytesIO()
        pq.write_table(tbl, buf, compression="zstd", row_group_size=row_group_size)
        data = buf.getvalue()
        self.write_bytes(path, data)
        return hashlib.sha256(data).hexdigest()

    def write_shard(
        self, dataset: str, shard: str, result: StageResult, *, input_id: str, config: str, reads: dict | None = None
    ) -> dict:
        """Write kept + rejected for one shard, then its manifest row (last). An earlier
        manifest of the shard goes first, so a run killed or cancelled mid-shard leaves the
        shard unfinished (invisible to readers, redone by the next run), never half-written."""
        stale = self.path(dataset, "_manifest", f"{shard}.json")
        if self.fs.exists(stale):
            self.fs.rm(stale)
        self.clear_failed(dataset, shard)
        checksum = self.write_table(self.path(dataset, f"part-{shard}.parquet"), result.kept)
        self.write_table(self.path(dataset, "rejected", f"part-{shard}.parquet"), result.rejected)
        for name, tbl in result.sidecars.items():
            self.write_table(self.path(dataset, f"_{name}", f"part-{shard}.parquet"), tbl)
        reasons = Counter(result.rejected.column("reason").to_pylist()) if result.rejected.num_rows else {}
        row = {
            "shard": shard,
            "input": input_id,
            "config": config,
            "reads": reads or {},
            "kept": result.kept.num_rows,
            "rejected": result.rejected.num_rows,
            "reasons": dict(reasons),
            "stats": result.stats,
            "checksum": checksum,
            "finished_at": time.time(),
        }
        self.write_bytes(self.path(dataset, "_manifest", f"{shard}.json"), json.dumps(row).encode())
        return row

    def mark_failed(self, dataset: str, shard: str, error: str) -> None:
        """Remember that a shard failed (publish refuses a partial lake unless told to)."""
        row = {"dataset": dataset, "shard": shard, "error": error[:500], "failed_at": time.time()}
        self.write_bytes(self.path(dataset, "_failed", f"{shard}.json"), json.dumps(row).encode())

    def clear_failed(self, dataset: str, shard: str) -> None:
        marker = self.path(dataset, "_failed", f"{shard}.json")
        if self.fs.exists(marker):
            self.fs.rm(marker)

    def failures(self, dataset: str) -> list[dict]:
        """The shards of a dataset whose last run failed, with their errors."""
        folder = self.path(dataset, "_failed")
        if not self.fs.exists(folder):
            return []
        return [json.loads(self.fs.cat_file(p)) for p in sorted(self.fs.ls(folder, detail=False)) if p.endswith(".json")]

    def open_batch(self, dataset: str) -> float:
        """The start time of the dataset's current batch: the open one an interrupted run left,
        or a new one from now. Records of one batch are one age, however the batch was cut up
        by crashes and reruns, until `close_batch`."""
        started = self.batch_time(dataset)
        if started is None:
            started = time.time()
            self.write_bytes(self.path(dataset, "_batch.json"), json.dumps({"started": started}).encode())
        return started

    def batch_time(self, dataset: str) -> float | None:
        marker = self.path(dataset, "_batch.json")
        return json.loads(self.fs.cat_file(marker))["started"] if self.fs.exists(marker) else None

    def close_batch(self, dataset: str) -> None:
        if self.fs.exists(self.path(dataset, "_batch.json")):
            self.fs.rm(self.path(dataset, "_batch.json"))

    # -- reading -----------------------------------------------------------------------
    def manifest(self, dataset: str, shard: str) -> dict | None:
        p = self.path(dataset, "_manifest", f"{shard}.json")
        if not self.fs.exists(p):
            return None
        return json.loads(self.fs.cat_file(p))

    def manifests(self, dataset: str) -> list[dict]:
        folder = self.path(dataset, "_manifest")
        if not self.fs.exists(folder):
            return []
        files = sorted(p for p in self.fs.ls(folder, detail=False) if p.endswith(".json"))
        return [json.loads(self.fs.cat_file(p)) for p in files]

    def is_finished(self, dataset: str, shard: str, *, input_id: str, config: str, reads: dict | None = None) -> bool:
        """Written from this input with this config (and, when `reads` is given, from these
        identities of the other datasets it read)."""
        row = self.manifest(dataset, shard)
        if not row or row["input"] != input_id or row["config"] != config:
            return False
        return reads is None or row.get("reads", {}) == reads

    def shards(self, dataset: str) -> list[str]:
        """Names of the finished shards of a dataset, in order."""
        return [row["shard"] for row in self.manifests(dataset)]

    def read_shard(self, dataset: str, shard: str, *, rejected: bool = False, columns: list[str] | None = None) -> pa.Table:
        parts = [dataset, "rejected"] if rejected else [dataset]
        with self.fs.open(self.path(*parts, f"part-{shard}.parquet"), "rb") as f:
            return pq.read_table(f, columns=columns)

    def read_sidecar(self, dataset: str, name: str, shard: str) -> pa.Table:
        """The sidecar `name` of a shard: per-row data (signatures) aligned with its kept rows."""
        with self.fs.open(self.path(dataset, f"_{name}", f"part-{shard}.parquet"), "rb") as f:
            return pq.read_table(f)

    def read(self, dataset: str, *, rejected: bool = False) -> pa.Table:
        """All finished shards of a dataset as one table."""
        shards = self.shards(dataset)
        if not shards:
            raise LakeError(
                f"The lake {self.url} has no '{dataset}' dataset yet: run the stage that writes it first."
            )
        # promote: shards written before a column was added read it as null
        return pa.concat_tables([self.read_shard(dataset, s, rejected=rejected) for s in shards], promote_options="default")

    def read_rows(self, dataset: str, ids: set[str], columns: list[str], key: str = "id") -> pa.Table:
        """The rows of a dataset whose `key` is in `ids`, with `columns` (key first), read shard by
        shard so that at most one shard's columns are in memory at once; ids not found are absent."""
        wanted, parts = pa.array(sorted(ids), pa.string()), []
        names = [key] + [c for c in columns if c != key]
        for shard in self.shards(dataset) if ids else []:
            with self.fs.open(self.path(dataset, f"part-{shard}.parquet"), "rb") as f:
                pf = pq.ParquetFile(f)
                found = pc.is_in(pf.read(columns=[key]).column(key), value_set=wanted)
                if pc.any(found).as_py():
                    parts.append(pf.read(columns=names).filter(found))
        if not parts:
            return pa.table({c: pa.array([], pa.string()) for c in names})
        return pa.concat_tables(parts, promote_options="default")

    def prune(self, dataset: str, keep: set[str]) -> list[str]:
        """Remove shards not in `keep` (left by an earlier run with other input), sidecars included."""
        for failed in self.failures(dataset):
            if failed["shard"] not in keep:  # no longer part of the input
                self.clear_failed(dataset, failed["shard"])
        gone = [s for s in self.shards(dataset) if s not in keep]
        folders = [self.path(dataset), self.path(dataset, "rejected")] + self._sidecar_folders(dataset) if gone else []
        for shard in gone:
            self.fs.rm(self.path(dataset, "_manifest", f"{shard}.json"))
            for p in (f"{folder}/part-{shard}.parquet" for folder in folders):
                if self.fs.exists(p):
                    self.fs.rm(p)
        return gone

    def _sidecar_folders(self, dataset: str) -> list[str]:
        names = (p.rstrip("/").rsplit("/", 1)[1] for p in self.fs.ls(self.path(dataset), detail=False))
        return [self.path(dataset, n) for n in names if n.startswith("_") and n != "_manifest"]

    def report(self, dataset: str, manifests: list[dict] | None = None) -> dict:
        """Totals over the manifests (read here unless given): kept, rejected and rejected-by-reason."""
        rows = self.manifests(dataset) if manifests is None else manifests
        reasons: Counter = Counter()
        for row in rows:
            reasons.update(row["reasons"])
        return {
            "dataset": dataset,
            "shards": len(rows),
            "kept": sum(r["kept"] for r in rows),
            "rejected": sum(r["rejected"] for r in rows),
            "reasons": dict(reasons),
        }
