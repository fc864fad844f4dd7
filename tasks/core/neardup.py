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

The release index lives at `releases/<name>/_index/`: one vector file and one id file per
release version (only the rows that version added), an `index.json` saying which versions
it holds, and its segments, each the FAISS index of a run of versions (see ReleaseIndex).
Publishing a version adds its new rows; nothing already indexed is embedded again, and
the segments it does not merge are not read.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import os
import tempfile
import uuid
from dataclasses import dataclass

import faiss
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from fsspec.implementations.local import LocalFileSystem

from synthq.tasks.core.config import CurateConfig, FactoryConfig
from synthq.tasks.core.errors import LakeError
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
    ReleaseIndex's segments)."""
    local = path if isinstance(lake.fs, LocalFileSystem) else node_copy(lake, path)
    return faiss.read_index(local, faiss.IO_FLAG_MMAP | faiss.IO_FLAG_READ_ONLY if ivf else faiss.IO_FLAG_MMAP_IFC)


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


@dataclass
class ReleaseMatch:
    position: int  # row of the queried batch
    release_id: str
    version: int
    similarity: float


SEGMENT_CAP = 2_000_000  # rows past which a segment of the release index is not merged into a larger one


@dataclass
class Segment:
    """The index of a run of consecutive release versions."""

    file: str  # in the index folder
    versions: list[int]
    count: int
    kind: str  # flat or ivf


class ReleaseIndex:
    """The embeddings of every row released under one dataset name, searchable and growing.

    The index is kept as segments, each the FAISS index of a run of consecutive versions.
    Indexing a version builds one segment from its new rows and the trailing segments no larger
    than what is being built (binary-counter merging: segment sizes fall geometrically, so there
    are about log2 of the rows of them and each row is rebuilt about as often), from the lake's
    vector files; the other segments are not read, and none grows past SEGMENT_CAP rows by
    merging. A search maps every segment and keeps the best match. The index of an earlier
    version of this code (one `index.faiss`) is read as one segment."""

    def __init__(self, lake: Lake, name: str, spec: IndexSpec, embedder: str):
        self.lake, self.name, self.spec, self.embedder = lake, name, spec, embedder
        self.folder = lake.path("releases", name, "_index")
        meta = self._read_json("index.json") or {"versions": [], "count": 0, "kind": "flat", "embedder": None, "dim": None}
        if meta["count"] and "segments" not in meta:  # one index.faiss of every version
            meta["segments"] = [{"file": "index.faiss", "versions": meta["versions"], "count": meta["count"], "kind": meta["kind"]}]
        self.meta = {**meta, "segments": meta.get("segments", [])}
        self.segments = [Segment(**seg) for seg in self.meta["segments"]]
        self._indexes: list[faiss.Index] | None = None  # memory-mapped, one per segment
        self._ids: pa.StringArray | None = None
        self._versions: np.ndarray | None = None

    def _read_json(self, name: str) -> dict | None:
        path = f"{self.folder}/{name}"
        return json.loads(self.lake.fs.cat_file(path)) if self.lake.fs.exists(path) else None

    @property
    def versions(self) -> list[int]:
        return list(self.meta["versions"])

    def fingerprint(self) -> str:
        return f"{self.name}:{','.join(map(str, self.versions))}:{self.meta['count']}"

    def _vectors(self, version: int) -> np.ndarray:
        """A version's vectors: memory-mapped from a local lake, read whole from another."""
        path = f"{self.folder}/vectors-v{version}.npy"
        if isinstance(self.lake.fs, LocalFileSystem):
            return np.load(path, mmap_mode="r")
        return np.load(io.BytesIO(self.lake.fs.cat_file(path)))

    def _load_ids(self) -> None:
        """The ids and versions of the indexed rows, in version order (a segment's rows follow
        those of the segments before it)."""
        if self._ids is not None:
            return
        parts, versions = [], []
        for v in self.versions:
            part = pq.read_table(io.BytesIO(self.lake.fs.cat_file(f"{self.folder}/ids-v{v}.parquet"))).column("id")
            parts += part.chunks
            versions.append(np.full(len(part), v, dtype=np.int32))
        self._ids = pa.chunked_array(parts, pa.string()).combine_chunks()  # 20 bytes per row, not a Python string each
        self._versions = np.concatenate(versions) if versions else np.zeros(0, dtype=np.int32)

    def _load(self) -> None:
        """The ids, and every segment memory-mapped for searching. A segment whose file does not
        hold its rows (the single index of the earlier layout, rewritten by a publish that
        stopped before index.json) is rebuilt from its versions' vectors and written again."""
        self._load_ids()
        if self._indexes is not None:
            return
        self._indexes = []
        for seg in self.segments:
            path = f"{self.folder}/{seg.file}"
            index = mapped_index(self.lake, path, seg.kind == "ivf")
            if index.ntotal != seg.count:
                index = build_index([self._vectors(v) for v in seg.versions], self.spec)
                self.lake.write_with(path, lambda f, index=index: faiss.write_index(index, faiss.PyCallbackIOWriter(f.write)))
            if isinstance(index, faiss.IndexIVF):
                index.nprobe = min(self.spec.nprobe, index.nlist)
            self._indexes.append(index)

    def released(self, ids: list[str] | pa.Array | pa.ChunkedArray) -> np.ndarray:
        """Whether each id is a released row's."""
        self._load_ids()
        ids = ids if isinstance(ids, (pa.Array, pa.ChunkedArray)) else pa.array(ids, pa.string())
        return np.asarray(pc.is_in(ids, value_set=self._ids), dtype=bool)

    def nearest(self, vecs: np.ndarray, threshold: float, rows: np.ndarray | None = None) -> list[ReleaseMatch]:
        """For each vector (each of `rows` of them, gathered batch by batch: no copy of them
        all) within `threshold` of a released row, that row (its best match over the segments);
        positions count in `rows` when given."""
        self._load()
        rows = np.arange(len(vecs)) if rows is None else rows
        if not self._indexes or len(rows) == 0:
            return []
        self._check(vecs.shape[1])
        offsets = np.cumsum([0] + [seg.count for seg in self.segments])
        matches = []
        for start in range(0, len(rows), SEARCH_BATCH):
            batch = f32(vecs[rows[start : start + SEARCH_BATCH]])
            best, where = np.full(len(batch), -np.inf, dtype=np.float32), np.full(len(batch), -1, dtype=np.int64)
            for index, offset in zip(self._indexes, offsets):
                sims, pos = index.search(batch, 1)
                better = (pos[:, 0] >= 0) & (sims[:, 0] > best)
                best[better], where[better] = sims[better, 0], offset + pos[better, 0]
            for k in np.flatnonzero(best >= threshold):
                p = int(where[k])
                matches.append(ReleaseMatch(start + int(k), self._ids[p].as_py(), int(self._versions[p]), float(best[k])))
        return matches

    def _check(self, dim: int) -> None:
        if self.meta["embedder"] not in (None, self.embedder) or self.meta["dim"] not in (None, dim):
            raise LakeError(
                f"The release index of '{self.name}' was built with embedder '{self.meta['embedder']}' "
                f"({self.meta['dim']} dims), but this run embeds with '{self.embedder}' ({dim} dims). "
                f"Use the same embedder, or delete {self.folder} and publish again to rebuild it."
            )

    def add(self, version: int, ids: list[str] | pa.Array, vecs: np.ndarray) -> None:
        """Index the rows a release version added (idempotent per version): one new segment
        of them and the trailing segments it absorbs; the others are not read."""
        if version in self.meta["versions"]:
            return
        self._check(vecs.shape[1])
        vecs = np.ascontiguousarray(vecs, dtype=np.float32)
        ids = ids if isinstance(ids, pa.Array) else pa.array(ids, pa.string())
        self.lake.write_with(f"{self.folder}/vectors-v{version}.npy", lambda f: np.save(f, vecs))
        self.lake.write_table(f"{self.folder}/ids-v{version}.parquet", pa.table({"id": ids}))
        kept, merged, size = list(self.segments), [], len(ids)
        while size and kept and kept[-1].count <= size and size + kept[-1].count <= SEGMENT_CAP:
            merged.insert(0, kept.pop())
            size += merged[0].count
        if size:  # a version that added no rows makes no segment
            versions = [v for seg in merged for v in seg.versions] + [version]
            index = build_index([self._vectors(v) for v in versions[:-1]] + [vecs], self.spec)
            kind = "ivf" if isinstance(index, faiss.IndexIVF) else "flat"
            kept.append(Segment(f"segment-v{versions[0]}-v{version}.faiss", versions, size, kind))
            self.lake.write_with(f"{self.folder}/{kept[-1].file}", lambda f: faiss.write_index(index, faiss.PyCallbackIOWriter(f.write)))
            del index
        self.segments = kept
        self.meta = {
            "versions": self.versions + [version], "count": self.meta["count"] + len(ids),
            "kind": "ivf" if any(s.kind == "ivf" for s in self.segments) else "flat",
            "embedder": self.embedder, "dim": int(vecs.shape[1]), "segments": [vars(s) for s in self.segments],
        }
        if self._ids is not None:
            self._ids = pa.concat_arrays([self._ids, ids])
            self._versions = np.concatenate([self._versions, np.full(len(ids), version, dtype=np.int32)])
        self._indexes = None  # mapped again at the next search
        # index.json last: a crash before it leaves the version unindexed, and the next publish redoes it
        self.lake.write_bytes(f"{self.folder}/index.json", json.dumps(self.meta, indent=2).encode())
        listed = {seg.file for seg in self.segments}
        for path in self.lake.fs.glob(f"{self.folder}/*.faiss"):  # merged ones, and any a crash left unlisted
            if path.rsplit("/", 1)[-1] not in listed:
                self.lake.fs.rm(path)


def index_spec(cfg: CurateConfig) -> IndexSpec:
    return IndexSpec(cfg.ivf_threshold, cfg.ivf_nprobe)


def release_index(lake: Lake, cfg: FactoryConfig) -> ReleaseIndex | None:
    """The index of the dataset's (publish.name) earlier releases, when curation dedups against them."""
    if not cfg.curate.dedup_against_releases:
        return None
    return ReleaseIndex(lake, cfg.publish.name, index_spec(cfg.curate), cfg.embedder)
