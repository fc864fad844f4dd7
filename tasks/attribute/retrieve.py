"""Dense retrieval of grounding documents: sentence embeddings in a FAISS inner-product index.

The index over the documents dataset is built once per run and kept in the lake
(`indexes/documents/`), so every shard of seeds searches the same index; it is assembled from
per-shard vectors kept beside it, so only documents shards not embedded before are embedded; the BM25 index
(`synthq.tasks.attribute.lexical`) is built beside it when the retrieval mode uses words.
"""

from __future__ import annotations

import hashlib
import io

import faiss
import numpy as np
import pyarrow as pa

from synthq.tasks.attribute import lexical
from synthq.tasks.core.embeddings import embed, passages
from synthq.tasks.core.lake import Lake

INDEX_DIR = "indexes/documents"
VECTORS_DIR = f"{INDEX_DIR}/vectors"  # one file per documents shard and embedder


def build_index(lake: Lake, embedder: str, retrieval: str = "dense") -> int:
    """Store the index over every document with its id list (and the BM25 index for the bm25
    and hybrid modes); returns the count. Each documents shard is embedded once per embedder
    and its vectors kept in the lake (keyed by the shard's checksum): a rerun, or a run after
    documents were appended, embeds only the shards it has not seen, and the dense path holds
    one shard's text at a time."""
    parts, ids, keep = [], [], set()
    for m in lake.manifests("documents"):
        vectors, shard_ids, path = shard_vectors(lake, m, embedder)
        parts.append(vectors)
        ids += shard_ids
        keep.add(path)
    vecs = np.concatenate(parts) if parts else embed([], embedder)
    index = faiss.IndexFlatIP(vecs.shape[1])
    index.add(vecs)
    lake.write_bytes(lake.path(INDEX_DIR, "index.faiss"), faiss.serialize_index(index).tobytes())
    lake.write_table(lake.path(INDEX_DIR, "ids.parquet"), pa.table({"id": pa.array(ids, pa.string())}))
    if retrieval in ("bm25", "hybrid"):
        docs = lake.read("documents")
        lexical.save(lake, lexical.build(passages(docs)), docs.select(["id"]))
    _drop_stale_vectors(lake, keep)
    return len(ids)


def shard_vectors(lake: Lake, manifest: dict, embedder: str) -> tuple[np.ndarray, list[str], str]:
    """(vectors, ids, path of the kept vectors) of one documents shard, embedded on first use."""
    key = hashlib.sha256(f"{embedder}\n{manifest['checksum']}".encode()).hexdigest()[:16]
    path = lake.path(VECTORS_DIR, f"{manifest['shard']}-{key}.npz")
    if lake.fs.exists(path):
        kept = np.load(io.BytesIO(lake.fs.cat_file(path)))
        return kept["vectors"], kept["ids"].tolist(), path
    docs = lake.read_shard("documents", manifest["shard"]).select(["id", "title", "text"])
    vectors, ids = embed(passages(docs), embedder), docs.column("id").to_pylist()
    buf = io.BytesIO()
    np.savez(buf, vectors=vectors, ids=np.array(ids, dtype=str))
    lake.write_bytes(path, buf.getvalue())
    return vectors, ids, path


def _drop_stale_vectors(lake: Lake, keep: set[str]) -> None:
    """Vectors of shards that are gone (re-ingested with other input) or of another embedder."""
    if lake.exists(VECTORS_DIR):
        names = {p.rsplit("/", 1)[-1] for p in keep}
        for path in lake.fs.ls(lake.path(VECTORS_DIR), detail=False):
            if path.endswith(".npz") and path.rsplit("/", 1)[-1] not in names:
                lake.fs.rm(path)


def load_index(lake: Lake) -> tuple[faiss.Index, list[str]]:
    raw = lake.fs.cat_file(lake.path(INDEX_DIR, "index.faiss"))
    index = faiss.deserialize_index(np.frombuffer(raw, dtype=np.uint8))
    with lake.fs.open(lake.path(INDEX_DIR, "ids.parquet"), "rb") as f:
        import pyarrow.parquet as pq

        ids = pq.read_table(f).column("id").to_pylist()
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
