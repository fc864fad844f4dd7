"""Dense retrieval of grounding documents: sentence embeddings in a FAISS inner-product index.

The index over the documents dataset is built once per run and kept in the lake
(`indexes/documents/`), so every shard of seeds searches the same index; the BM25 index
(`tasks.attribute.lexical`) is built beside it when the retrieval mode uses words.
"""

from __future__ import annotations

import faiss
import numpy as np
import pyarrow as pa

from tasks.attribute import lexical
from tasks.core.embeddings import embed
from tasks.core.lake import Lake

INDEX_DIR = "indexes/documents"
PASSAGE_CHARS = 2000  # title + opening of the text: what the page is about, within the encoder's window


def passage(title: str, text: str) -> str:
    """What retrieval sees of a document: its title and the opening of its text."""
    return f"{title}\n{text[:PASSAGE_CHARS]}"


def passages(docs: pa.Table) -> list[str]:
    return [passage(t, x) for t, x in zip(docs.column("title").to_pylist(), docs.column("text").to_pylist())]


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


def best_documents(index: faiss.Index, ids: list[str], queries: list[str], embedder: str) -> list[tuple[str, float]]:
    """(document id, cosine) of the top hit for each query."""
    if not queries:
        return []
    scores, rows = index.search(embed(queries, embedder), 1)
    return [(ids[r[0]], float(s[0])) for r, s in zip(rows, scores)]
