"""Dense retrieval of grounding documents: sentence embeddings in a FAISS inner-product index.

The index over the documents dataset is built once per run and kept in the lake
(`indexes/documents/`), so every shard of seeds searches the same index; a run whose documents,
embedder and index settings are those of the index already there (`index_key`) keeps it. It is assembled from
per-shard vectors kept beside it: only documents shards not embedded before are embedded, in
Ray tasks in a run (each takes a GPU when the cluster has one free). The build reads one
shard's vectors at a time; a flat index holds every vector (exact), an IVF index 8-bit ones
searched in `nprobe` of its lists, with its recall@1 against exact search measured at each
build (`attribute.index`). Seed shards memory-map it (`load_index`): the workers of a node
share its pages instead of holding a copy each. The BM25 index
(`synthq.tasks.attribute.lexical`) is built beside it when the retrieval mode uses words.
"""

from __future__ import annotations

import hashlib
import json

import faiss
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from synthq.tasks.attribute import lexical
from synthq.tasks.core.attribute_config import IndexConfig
from synthq.tasks.core.embeddings import dimension, passages
from synthq.tasks.core.lake import Lake
from synthq.tasks.shards.stage import dataset_identity
from synthq.tasks.core.neardup import mapped_index, nlist_for, trained_ivf
from synthq.tasks.core.doc_vectors import VECTORS_DIR, embed_missing, read_vectors

INDEX_DIR = "indexes/documents"


def index_key(lake: Lake, embedder: str, retrieval: str, cfg: IndexConfig) -> str:
    """What the index is made of: the documents' finished shards, the embedder, the retrieval
    mode (BM25 beside it or not) and the index settings."""
    parts = [dataset_identity(lake, "documents"), embedder, retrieval, cfg.model_dump_json()]
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:16]


def built_index(lake: Lake, key: str) -> dict | None:
    """The description of the index in the lake when it was built from `key`'s inputs."""
    if not lake.exists(INDEX_DIR, "index.json"):
        return None
    info = json.loads(lake.fs.cat_file(lake.path(INDEX_DIR, "index.json")))
    return info if info.get("key") == key else None


def build_index(lake: Lake, embedder: str, retrieval: str = "dense", cfg: IndexConfig | None = None,
                remote: bool = False, key: str = "") -> dict:
    """Store the index over every document with its id list and what it is (`index.json`:
    kind, documents, lists, recall@1), plus the BM25 index for the bm25 and hybrid modes;
    returns that description. Each documents shard is embedded once per embedder and its
    vectors kept in the lake (keyed by the shard's checksum): a rerun, or a run after documents
    were appended, embeds only the shards it has not seen (in Ray tasks when `remote`)."""
    cfg = cfg or IndexConfig()
    manifests = lake.manifests("documents")
    paths = embed_missing(lake, manifests, embedder, remote)
    total = sum(m["kept"] for m in manifests)
    kind = cfg.kind if cfg.kind != "auto" else ("ivf" if total > cfg.ivf_above else "flat")
    info: dict = {"kind": kind, "documents": total, "embedder": embedder, "key": key}
    index = None  # flat: made from the first shard's width
    if kind == "ivf" and total:
        nlist = min(total, cfg.nlist or nlist_for(total))
        sample = _sample_rows(lake, paths, _spread(total, min(total, 64 * nlist)))
        index = trained_ivf(sample.shape[1], nlist, sample, cfg.nprobe, "SQ8")
        info.update(nlist=nlist, nprobe=min(cfg.nprobe, nlist))
    ids = []
    for path in paths:  # one shard's vectors in memory at a time
        vectors, shard_ids = read_vectors(lake, path)
        if index is None:
            index = faiss.IndexFlatIP(vectors.shape[1])
        index.add(vectors)
        ids.append(pa.array(shard_ids, pa.string()))
    if index is None:  # no documents
        index = faiss.IndexFlatIP(dimension(embedder))
    if kind == "ivf" and total:
        faiss.extract_index_ivf(index).make_direct_map()  # cosine() reconstructs rows
        info["recall_at_1"], info["recall_sample"] = recall_at_1(lake, paths, index, _spread(total, min(total, cfg.recall_sample)))
    lake.write_bytes(lake.path(INDEX_DIR, "index.faiss"), faiss.serialize_index(index).tobytes())
    lake.write_table(lake.path(INDEX_DIR, "ids.parquet"), pa.table({"id": pa.chunked_array(ids, pa.string())}))
    lake.write_bytes(lake.path(INDEX_DIR, "index.json"), json.dumps(info).encode())
    if retrieval in ("bm25", "hybrid"):
        # the passages only (title and opening), read shard by shard: never every document's text
        texts, ids = [], []
        for shard in lake.shards("documents"):
            docs = lake.read_shard("documents", shard, columns=["id", "title", "text"])
            texts += passages(docs)
            ids.append(docs.column("id"))
        lexical.save(lake, lexical.build(texts), pa.table({"id": pa.chunked_array(ids, pa.string())}))
    lake.prune_folder(VECTORS_DIR, {p.rsplit("/", 1)[-1] for p in paths})  # shards gone (re-ingested) or of another embedder
    return info


def _spread(total: int, n: int) -> np.ndarray:
    """n distinct row numbers out of total, the same at every build of the same corpus."""
    return np.sort(np.random.default_rng(0).choice(total, size=n, replace=False)) if n else np.zeros(0, dtype=np.int64)


def _sample_rows(lake: Lake, paths: list[str], rows: np.ndarray) -> np.ndarray:
    """The vectors at these global row numbers, read shard by shard."""
    out, offset = [], 0
    for path in paths:
        vectors, _ = read_vectors(lake, path)
        mine = rows[(rows >= offset) & (rows < offset + len(vectors))] - offset
        out.append(vectors[mine])
        offset += len(vectors)
    return np.concatenate(out) if out else np.zeros((0, 0), dtype=np.float32)


def recall_at_1(lake: Lake, paths: list[str], index: faiss.Index, rows: np.ndarray) -> tuple[float | None, int]:
    """Share of the sampled documents whose nearest other document by the index is as close as
    the nearest by exact search (a tie with an equal vector counts as found), and the sample size."""
    if len(rows) == 0:
        return None, 0
    queries = _sample_rows(lake, paths, rows)
    _, found = index.search(queries, 2)
    pick = np.where(found[:, 0] == rows, found[:, 1], found[:, 0])  # the best that is not the document itself
    best, picked, offset = np.full(len(rows), -np.inf), np.full(len(rows), -np.inf), 0
    for path in paths:
        vectors, _ = read_vectors(lake, path)
        sims = queries @ vectors.T
        local = rows - offset
        inside = (local >= 0) & (local < len(vectors))
        sims[np.nonzero(inside)[0], local[inside]] = -np.inf  # not itself
        best = np.maximum(best, sims.max(axis=1, initial=-np.inf))
        mine = (pick >= offset) & (pick < offset + len(vectors))
        picked[mine] = sims[np.nonzero(mine)[0], pick[mine] - offset]
        offset += len(vectors)
    return float(np.mean(picked >= best - 1e-5)), len(rows)


def load_index(lake: Lake) -> tuple[faiss.Index, pa.StringArray]:
    """The index, memory-mapped (the seed shards of a node share one copy of it, and a shard
    reads none of it until it searches), and the document id of each of its rows."""
    info = json.loads(lake.fs.cat_file(lake.path(INDEX_DIR, "index.json"))) if lake.exists(INDEX_DIR, "index.json") else {}
    ivf = info.get("kind") == "ivf" and bool(info.get("documents"))
    index = mapped_index(lake, lake.path(INDEX_DIR, "index.faiss"), ivf)
    if ivf:
        faiss.extract_index_ivf(index).nprobe = info["nprobe"]
    with lake.fs.open(lake.path(INDEX_DIR, "ids.parquet"), "rb") as f:
        ids = pq.read_table(f).column("id").combine_chunks()  # 20 bytes per document, not a Python string each
    return index, ids


def dense_search(index: faiss.Index, qvecs: np.ndarray, k: int) -> list[list[tuple[int, float]]]:
    """Per query vector, up to k (row, cosine) best first."""
    if not len(qvecs) or not index.ntotal:
        return [[] for _ in range(len(qvecs))]
    scores, rows = index.search(qvecs, min(k, index.ntotal))
    return [[(int(r), float(s)) for r, s in zip(rr, ss) if r >= 0] for rr, ss in zip(rows, scores)]


def cosine(index: faiss.Index, row: int, qvec: np.ndarray) -> float:
    """Cosine between a query vector and an indexed document (vectors are unit length)."""
    return float(np.dot(index.reconstruct(row), qvec))
