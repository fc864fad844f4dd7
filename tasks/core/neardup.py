"""Semantic deduplication with FAISS: within a batch and against every earlier release.

Shared by curation (which drops near-duplicates, of each other and of released rows) and
publishing (which adds each release's new rows to the release index), so it lives in core.

Vectors are unit-length, so inner product is cosine similarity. Below `ivf_threshold`
vectors every pair is compared (exact); past it, vectors are clustered by k-means into about
4·√n clusters and a vector is compared only with the members of its `nprobe` nearest
clusters, as an inverted-file (IVF) index would search, but as dense matrix products so the
CPU's BLAS does the work. `bench/dedup_scale.py` measures time and recall at a million rows.

Vectors may be float16 (curation holds one per surviving query, so half the memory): each
block is compared in float32, where the error on a cosine is about 1e-5.

Within a batch, rows come ranked best first; a row is dropped when a better-ranked row that
was kept lies within the threshold, so the kept member of each duplicate group is the best.

The release index, which both search, is in release_index.py.
"""

from __future__ import annotations

import hashlib
import math
import os
import tempfile
import uuid
from dataclasses import dataclass

import faiss
import numpy as np
from fsspec.implementations.local import LocalFileSystem

from synthq.tasks.core.config import CurateConfig
from synthq.tasks.core.files import cache_dir
from synthq.tasks.core.lake import Lake

SEARCH_BATCH = 16_384
BLOCK = 4_096
KMEANS_POINTS = 32  # training points per k-means cluster: a sample, cast to float32, not every vector


def f32(vecs: np.ndarray) -> np.ndarray:
    """A block of vectors as FAISS and BLAS want them (a float32 array is not copied)."""
    return np.ascontiguousarray(vecs, dtype=np.float32)


def kmeans(vecs: np.ndarray, k: int, niter: int, seed: int, points: int = KMEANS_POINTS, rows: np.ndarray | None = None) -> faiss.Kmeans:
    """Spherical k-means over the vectors (of `rows` of them), trained on at most `points` × k
    of them drawn at random (kept in order), as FAISS would sample them, without a float32
    copy of the rest."""
    rows = np.arange(len(vecs)) if rows is None else rows
    if len(rows) > k * points:
        rows = np.sort(np.random.default_rng(seed).choice(rows, size=k * points, replace=False))
    km = faiss.Kmeans(vecs.shape[1], k, niter=niter, seed=seed, spherical=True, min_points_per_centroid=1,
                      max_points_per_centroid=points)
    km.train(f32(vecs[rows]))
    return km


def nearest_centroids(km: faiss.Kmeans, vecs: np.ndarray, k: int, rows: np.ndarray | None = None) -> np.ndarray:
    """The `k` nearest centroids of each vector (of `rows` of them), searched batch by batch
    (int32: half of what FAISS returns, for the n × k of them)."""
    rows = np.arange(len(vecs)) if rows is None else rows
    out = np.empty((len(rows), k), dtype=np.int32)
    for start in range(0, len(rows), SEARCH_BATCH):
        out[start : start + SEARCH_BATCH] = km.index.search(f32(vecs[rows[start : start + SEARCH_BATCH]]), k)[1]
    return out


def mapped_index(lake: Lake, path: str, ivf: bool) -> faiss.Index:
    """A stored FAISS index (IVF or flat) memory-mapped read-only, for searching: the processes
    of a node that load it share one copy of its vectors (the page cache) instead of holding one
    each, and loading it reads nothing until a search touches it. A lake on another filesystem
    (an object store) is copied to this node's cache once per version of the file. FAISS aborts
    the process on adding to a mapped index: one that grows is built again instead (see
    release_index.py's segments)."""
    local = path if isinstance(lake.fs, LocalFileSystem) else node_copy(lake, path)
    return faiss.read_index(local, faiss.IO_FLAG_MMAP | faiss.IO_FLAG_READ_ONLY if ivf else faiss.IO_FLAG_MMAP_IFC)


def write_index(lake: Lake, path: str, index: faiss.Index) -> None:
    """A FAISS index written to the lake atomically, streamed (never held as bytes)."""
    lake.write_with(path, lambda f: faiss.write_index(index, faiss.PyCallbackIOWriter(f.write)))


def node_copy(lake: Lake, path: str) -> str:
    """A local copy of a lake file in this node's cache (`SYNTHQ_CACHE`/indexes), made once per
    version of the file (its fsspec checksum); the copies of its older versions are removed
    (a process that still maps one keeps it until it ends)."""
    folder = cache_dir() / "indexes"
    folder.mkdir(parents=True, exist_ok=True)
    key = hashlib.sha256(f"{lake.url}|{path}".encode()).hexdigest()[:16]
    target = folder / f"{key}-{hashlib.sha256(str(lake.fs.checksum(path)).encode()).hexdigest()[:16]}.faiss"
    if not target.exists():
        tmp = folder / f".{key}-{uuid.uuid4().hex}"
        lake.fs.get_file(path, str(tmp))
        os.replace(tmp, target)  # whole or absent: another process on the node may be copying it too
        for old in folder.glob(f"{key}-*.faiss"):
            if old != target:
                old.unlink(missing_ok=True)
    return str(target)


def scratch_array(shape: tuple[int, int], dtype=np.float16) -> np.ndarray:
    """A writable array mapped from a nameless file in this node's cache folder
    (`SYNTHQ_CACHE`/scratch), for a matrix as large as the rows it is made for: its pages
    are the page cache's, which the kernel writes out and evicts under memory pressure,
    so the process needs the disk for it, not the memory, and a killed process leaves
    no file (it is unlinked from the start; the mapping keeps it until it is dropped)."""
    folder = cache_dir() / "scratch"
    folder.mkdir(parents=True, exist_ok=True)
    if not shape[0] * shape[1]:
        return np.zeros(shape, dtype=dtype)  # nothing to map: mmap refuses an empty file
    with tempfile.TemporaryFile(dir=folder) as f:
        f.truncate(shape[0] * shape[1] * np.dtype(dtype).itemsize)
        return np.memmap(f, dtype=dtype, mode="r+", shape=shape)  # the mapping holds its own descriptor


@dataclass(frozen=True)
class IndexSpec:
    threshold: int  # vectors past which the index is IVF instead of flat
    nprobe: int


def nlist_for(n: int) -> int:
    return max(1, min(65_536, 4 * int(math.sqrt(n))))


def trained_ivf(dim: int, nlist: int, sample: np.ndarray, nprobe: int, encoding: str = "Flat", seed: int = 0) -> faiss.Index:
    """An empty IVF inner-product index of `nlist` lists (k-means on `sample`, 10 iterations),
    its vectors stored as `encoding` (FAISS factory name: Flat, SQ8, ...), searching `nprobe` lists."""
    index = faiss.index_factory(dim, f"IVF{nlist},{encoding}", faiss.METRIC_INNER_PRODUCT)
    ivf = faiss.extract_index_ivf(index)
    ivf.cp.seed, ivf.cp.niter = seed, 10
    index.train(sample)
    ivf.nprobe = min(nprobe, nlist)
    return index


def build_index(parts: list[np.ndarray], spec: IndexSpec, seed: int = 0) -> faiss.Index:
    """A flat (exact) index for small sets, an IVF index past spec.threshold, over the rows of
    `parts` in order (arrays or memory-mapped files: trained on a sample, filled part by part,
    never concatenated). The IVF index keeps its vectors as float16 (SQfp16: half the memory
    and the file of float32; a cosine moves by about 1e-4)."""
    total, dim = sum(len(p) for p in parts), parts[0].shape[1]
    if total < spec.threshold:
        index = faiss.IndexFlatIP(dim)
    else:
        nlist = nlist_for(total)
        rows = np.sort(np.random.default_rng(seed).choice(total, size=min(total, 64 * nlist), replace=False))
        offsets = np.cumsum([0] + [len(p) for p in parts])
        sample = np.concatenate([f32(p[rows[(rows >= lo) & (rows < hi)] - lo]) for p, lo, hi in zip(parts, offsets, offsets[1:])])
        index = trained_ivf(dim, nlist, sample, spec.nprobe, "SQfp16", seed)
    for part in parts:
        for start in range(0, len(part), SEARCH_BATCH * 8):
            index.add(f32(part[start : start + SEARCH_BATCH * 8]))
    return index


def groups_for(vecs: np.ndarray, spec: IndexSpec, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """(queries, members) index pairs to compare: everything with everything below the
    threshold; past it, each k-means cluster's members against the rows that probe it."""
    n = len(vecs)
    if n < spec.threshold:
        everything = np.arange(n)
        return [(everything, everything)]
    nlist, k = nlist_for(n), min(spec.nprobe, nlist_for(n))
    probes = nearest_centroids(kmeans(vecs, nlist, 10, seed), vecs, k)  # n × k
    home = probes[:, 0]
    members = np.split(np.argsort(home, kind="stable").astype(np.int32), np.cumsum(np.bincount(home, minlength=nlist))[:-1])
    queries, bounds = rows_by_cluster(probes, nlist)
    del probes, home
    return [(q, m) for q, m in zip(np.split(queries, bounds), members) if len(m)]


def rows_by_cluster(probes: np.ndarray, nlist: int, chunk: int = 65_536) -> tuple[np.ndarray, np.ndarray]:
    """Each row once per cluster it probes (`probes`: n × k cluster numbers), grouped by cluster,
    rows ascending within a group, as int32, and where each group ends: a counting sort chunk
    by chunk of rows, so no sort order of all n × k entries (int64) is held."""
    counts = np.bincount(probes.ravel(), minlength=nlist)
    fill = np.cumsum(counts) - counts  # each group's next free slot
    out = np.empty(probes.size, dtype=np.int32)
    for start in range(0, len(probes), chunk):
        block = probes[start : start + chunk].ravel()
        order = np.argsort(block, kind="stable")  # within a group: in row order
        keys = block[order]
        firsts = np.flatnonzero(np.r_[True, keys[1:] != keys[:-1]])
        place = np.arange(len(keys)) - np.repeat(firsts, np.diff(np.r_[firsts, len(keys)]))  # position in its run
        out[fill[keys] + place] = start + order // probes.shape[1]
        fill += np.bincount(block, minlength=nlist)
    return out, np.cumsum(counts)[:-1]


def pairs(vecs: np.ndarray, groups, threshold: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(row, better-ranked neighbour, cosine) for every pair within the threshold, unique."""
    found_rows, found_ids, found_sims = [], [], []
    for queries, members in groups:
        for qs in range(0, len(queries), BLOCK):
            q = queries[qs : qs + BLOCK]
            qv = f32(vecs[q])
            for ms in range(0, len(members), BLOCK):
                m = members[ms : ms + BLOCK]
                qi, mi = np.nonzero(qv @ f32(vecs[m]).T >= threshold - 1e-6)
                rows, ids = q[qi], m[mi]
                better = ids < rows  # only better-ranked rows can drop a row
                if better.any():
                    rows, ids = rows[better], ids[better]
                    found_rows.append(rows)
                    found_ids.append(ids)
                    found_sims.append(np.einsum("ij,ij->i", f32(vecs[rows]), f32(vecs[ids])))
    if not found_rows:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty, np.zeros(0, dtype=np.float32)
    rows, ids, sims = (np.concatenate(x) for x in (found_rows, found_ids, found_sims))
    _, first = np.unique(rows.astype(np.int64) * len(vecs) + ids, return_index=True)  # a pair found through two clusters
    return rows[first], ids[first], sims[first]


def within(vecs: np.ndarray, threshold: float, spec: IndexSpec, seed: int = 0, groups=None) -> tuple[np.ndarray, list[tuple[int, int, float]]]:
    """Greedy dedup of ranked vectors: (kept positions, [(dropped, kept twin, cosine)]).

    Comparisons are dense matrix products (BLAS), exact below spec.threshold rows; past it,
    only rows sharing one of their spec.nprobe nearest k-means clusters are compared."""
    n = len(vecs)
    kept = np.ones(n, dtype=bool)
    rows, ids, sims = pairs(vecs, groups if groups is not None else groups_for(vecs, spec, seed), threshold)
    order = np.lexsort((-sims, rows))  # by row, then most similar neighbour first
    rows, ids, sims = rows[order], ids[order], sims[order]
    cuts = np.flatnonzero(np.diff(rows)) + 1
    dropped = []
    for r, i, s in zip(np.split(rows, cuts), np.split(ids, cuts), np.split(sims, cuts)):
        if len(r) == 0:
            continue
        alive = kept[i]  # rows come in rank order: every twin's fate is already known
        if alive.any():
            first = int(np.argmax(alive))
            kept[r[0]] = False
            dropped.append((int(r[0]), int(i[first]), float(s[first])))
    return np.flatnonzero(kept), dropped


def index_spec(cfg: CurateConfig) -> IndexSpec:
    return IndexSpec(cfg.ivf_threshold, cfg.ivf_nprobe)
