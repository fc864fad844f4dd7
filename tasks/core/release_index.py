"""The index of every row released under a dataset name: curation drops new queries within
its threshold of one, publishing adds each release's new rows.

It lives at `releases/<name>/_index/`: one vector file and one id file per release version
(only the rows that version added), an `index.json` saying which versions it holds, and its
segments, each the FAISS index of a run of versions (see ReleaseIndex). Publishing a version
adds its new rows; nothing already indexed is embedded again, and the segments it does not
merge are not read.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass

import faiss
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from fsspec.implementations.local import LocalFileSystem

from synthq.tasks.core.config import FactoryConfig
from synthq.tasks.core.errors import LakeError
from synthq.tasks.core.lake import Lake
from synthq.tasks.core.neardup import SEARCH_BATCH, IndexSpec, build_index, f32, index_spec, mapped_index, write_index


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
                write_index(self.lake, path, index)
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
            write_index(self.lake, f"{self.folder}/{kept[-1].file}", index)
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


def release_index(lake: Lake, cfg: FactoryConfig) -> ReleaseIndex | None:
    """The index of the dataset's (publish.name) earlier releases, when curation dedups against them."""
    if not cfg.curate.dedup_against_releases:
        return None
    return ReleaseIndex(lake, cfg.publish.name, index_spec(cfg.curate), cfg.embedder)
