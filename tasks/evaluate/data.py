"""What a model is trained on: a release's subset, or a nested, seeded share of it.

The shares are nested by construction: one seeded permutation of the subset's rows, and the
share f takes its first ceil(f * n) rows, so every row of the 0.1 share is in the 0.3 share.
The fingerprint of a subset is the sha256 of its Parquet files, so a result is tied to the
exact rows it came from.
"""

from __future__ import annotations

import hashlib
import math

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from synthq.tasks.core.errors import InputError
from synthq.tasks.core.lake import Lake


def subset_files(lake: Lake, release_path: str, subset: str) -> list[str]:
    """The Parquet files of a release's subset; a clear error when the release has none."""
    folder = f"{release_path.rstrip('/')}/{subset}"
    files = sorted(f for f in lake.fs.glob(f"{folder}/*.parquet")) if lake.fs.exists(folder) else []
    if not files:
        have = sorted(p.rsplit("/", 1)[-1] for p in lake.fs.ls(release_path, detail=False) if lake.fs.isdir(p))
        raise InputError(f"Release {release_path} has no '{subset}' subset (it has: {', '.join(have) or 'nothing'}); "
                         "publish it with the respond stage on (respond.enabled), or pick another evaluate.subset.")
    return files


def fingerprint(lake: Lake, files: list[str]) -> str:
    digest = hashlib.sha256()
    for path in files:
        with lake.fs.open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def read_subset(lake: Lake, files: list[str], columns: list[str] | None = None) -> pa.Table:
    tables = [pq.read_table(lake.fs.open(path, "rb"), columns=columns) for path in files]
    return pa.concat_tables(tables) if tables else pa.table({})


def share(rows: pa.Table, fraction: float, seed: int) -> pa.Table:
    """The first ceil(fraction * n) rows of a seeded permutation, in their original order."""
    n = rows.num_rows
    take = np.random.default_rng(seed).permutation(n)[: math.ceil(fraction * n)]
    return rows.take(pa.array(np.sort(take)))


def training_rows(lake: Lake, release_path: str, subset: str, fraction: float, seed: int) -> pa.Table:
    """The share of the subset a model trains on; an error when the subset has no rows."""
    rows = read_subset(lake, subset_files(lake, release_path, subset))
    if not rows.num_rows:
        raise InputError(f"Release {release_path}: its '{subset}' subset has no rows; nothing to train on.")
    return share(rows, fraction, seed)
