"""Dense retrieval of grounding documents: sentence embeddings in a FAISS inner-product index.

The index over the documents dataset is built once per run and kept in the lake
(`indexes/documents/`), so every shard of seeds searches the same index.
"""

from __future__ import annotations

import faiss
import numpy as np
import pyarrow as pa

from tasks.core.embeddings import embed, passages
from tasks.core.lake import Lake

INDEX_DIR = "indexes/documents"


def build_index(lake: Lake, embedder: str) -> int:
    """Embed every document and store the index with its id list; returns the count."""
    docs = lake.read("documents")
    vecs = embed(passages(docs), embedder)
    index = faiss.IndexFlatIP(vecs.shape[1])
    index.add(vecs)
    lake.write_bytes(lake.path(INDEX_DIR, "index.faiss"), faiss.serialize_index(index).tobytes())
    lake.write_table(lake.path(INDEX_DIR, "ids.parquet"), docs.select(["id"]))
    return docs.num_rows


def load_index(lake: Lake) -> tuple[faiss.Index, list[str]]:
    raw = lake.fs.cat_file(lake.path(INDEX_DIR, "index.faiss"))
    index = faiss.deserialize_index(np.frombuffer(raw, dtype=np.uint8))
    with lake.fs.open(lake.path(INDEX_DIR, "ids.parquet"), "rb") as f:
        import pyarrow.parquet as pq

        ids = pq.read_table(f).column("id").to_pylist()
    return index, ids


def best_documents(index: faiss.Index, ids: list[str], queries: list[str], embedder: str) -> list[tuple[str, float]]:
    """(document id, cosine) of the top hit for each query."""
    if not queries:
        return []
    scores, rows = index.search(embed(queries, embedder), 1)
    return [(ids[r[0]], float(s[0])) for r, s in zip(rows, scores)]
