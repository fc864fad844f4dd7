"""Dense retrieval of grounding documents: sentence embeddings in a FAISS inner-product index.

The index over the documents dataset is built once per run and kept in the lake
(`indexes/documents/`), so every shard of seeds searches the same index; the BM25 index
(`synthq.tasks.attribute.lexical`) is built beside it when the retrieval mode uses words.
"""

from __future__ import annotations

import faiss
import numpy as np
import pyarrow as pa

from synthq.tasks.attribute import lexical
from synthq.tasks.core.embeddings import embed, passages
from synthq.tasks.core.lake import Lake

INDEX_DIR = "indexes/documents"


def build_index(lake: Lake, embedder: str, retrieval: str = "dense") -> int:
    """Embed every document and store the index with its id list (and the BM25 index for the
    bm25 and hybrid modes); returns the count."""
    docs = lake.read("documents")
    texts = passages(docs)
    vecs = embed(texts, embedder)
    index = faiss.IndexFlatIP(vecs.shape[1])
    index.add(vecs)
    lake.write_bytes(lake.path(INDEX_DIR, "index.faiss"), faiss.serialize_index(index).tobytes())
    lake.write_table(lake.path(INDEX_DIR, "ids.parquet"), docs.select(["id"]))
    if retrieval in ("bm25", "hybrid"):
        lexical.save(lake, lexical.build(texts), docs.select(["id"]))
    return docs.num_rows


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
