"""BM25 retrieval of grounding documents (bm25s), beside the dense index.

Passages are the dense index's (title + opening of the text), tokenized by bm25s with English
stop words removed and Snowball stemming (PyStemmer), so "generators" finds "generator". The
index is built once per run and kept in the lake (`indexes/documents/bm25/`) with the dense one.
"""

from __future__ import annotations

import functools
import os
import tempfile

import bm25s
import pyarrow as pa

from synthq.tasks.core.lake import Lake

BM25_DIR = "indexes/documents/bm25"


@functools.cache
def _stemmer():
    import Stemmer

    return Stemmer.Stemmer("english")


def tokens(texts: list[str]):
    return bm25s.tokenize(texts, stopwords="en", stemmer=_stemmer(), show_progress=False)


def build(texts: list[str]) -> bm25s.BM25:
    index = bm25s.BM25()
    index.index(tokens(texts), show_progress=False)
    return index


def save(lake: Lake, index: bm25s.BM25, ids: pa.Table) -> None:
    """bm25s writes a folder of files; each goes to the lake (any fsspec root) atomically."""
    with tempfile.TemporaryDirectory() as tmp:
        index.save(tmp, show_progress=False)
        for name in sorted(os.listdir(tmp)):
            with open(os.path.join(tmp, name), "rb") as f:
                lake.write_bytes(lake.path(BM25_DIR, name), f.read())
    lake.write_table(lake.path(BM25_DIR, "ids.parquet"), ids)


def load(lake: Lake) -> tuple[bm25s.BM25, list[str]]:
    import pyarrow.parquet as pq

    with tempfile.TemporaryDirectory() as tmp:
        for path in lake.fs.ls(lake.path(BM25_DIR), detail=False):
            name = path.rstrip("/").rsplit("/", 1)[-1]
            if name != "ids.parquet":
                with open(os.path.join(tmp, name), "wb") as f:
                    f.write(lake.fs.cat_file(path))
        index = bm25s.BM25.load(tmp, show_progress=False)
    with lake.fs.open(lake.path(BM25_DIR, "ids.parquet"), "rb") as f:
        ids = pq.read_table(f).column("id").to_pylist()
    return index, ids


def search(index: bm25s.BM25, n_docs: int, queries: list[str], k: int) -> list[list[tuple[int, float]]]:
    """Per query, up to k (row, BM25 score) best first; rows sharing no term with the query
    (score 0) are left out, so a query may find nothing."""
    if not queries or not n_docs:
        return [[] for _ in queries]
    rows, scores = index.retrieve(tokens(queries), k=min(k, n_docs), show_progress=False)
    return [[(int(r), float(s)) for r, s in zip(rr, ss) if s > 0] for rr, ss in zip(rows, scores)]
