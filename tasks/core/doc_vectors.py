"""Each documents shard's passage embeddings, computed once and kept in the lake.

`indexes/documents/vectors/<shard>-<key>.npz` (the key: the embedder and the shard's checksum)
holds the vectors of a shard's documents and their ids. Attribution's retrieval index is built
from them and synthesis groups documents with them, so a document is embedded once per
embedder, whatever reads it; a re-ingested shard has another checksum, hence new vectors.
"""

from __future__ import annotations

import hashlib
import io

import numpy as np

from synthq.tasks.core.embeddings import embed, passages
from synthq.tasks.core.lake import Lake
from synthq.tasks.core.parallel import run_each

VECTORS_DIR = "indexes/documents/vectors"  # one file per documents shard and embedder


def vectors_path(lake: Lake, manifest: dict, embedder: str) -> str:
    key = hashlib.sha256(f"{embedder}\n{manifest['checksum']}".encode()).hexdigest()[:16]
    return lake.path(VECTORS_DIR, f"{manifest['shard']}-{key}.npz")


def read_vectors(lake: Lake, path: str) -> tuple[np.ndarray, list[str]]:
    kept = np.load(io.BytesIO(lake.fs.cat_file(path)))
    return kept["vectors"], kept["ids"].tolist()


def embed_shard(lake_url: str, manifest: dict, embedder: str, device: str = "cpu") -> str:
    """Embed one documents shard and keep its vectors in the lake; returns their path."""
    lake = Lake(lake_url)
    docs = lake.read_shard("documents", manifest["shard"]).select(["id", "title", "text"])
    buf = io.BytesIO()
    np.savez(buf, vectors=embed(passages(docs), embedder, device=device), ids=np.array(docs.column("id").to_pylist(), dtype=str))
    path = vectors_path(lake, manifest, embedder)
    lake.write_bytes(path, buf.getvalue())
    return path


def embed_missing(lake: Lake, manifests: list[dict], embedder: str, remote: bool) -> list[str]:
    """Paths of every shard's vectors, in manifest order, embedding the shards that have none:
    in Ray tasks when `remote` (one GPU each while the cluster has one free, else one CPU),
    here otherwise."""
    paths = [vectors_path(lake, m, embedder) for m in manifests]
    todo = [(lake.url, m, embedder) for m, p in zip(manifests, paths) if not lake.fs.exists(p)]
    run_each(embed_shard, todo, remote, gpu=True)
    return paths


def shard_vectors(lake: Lake, shard: str, ids: list[str], embedder: str) -> np.ndarray | None:
    """The kept vectors of these documents of a documents shard, in `ids` order, or None when
    the shard has none for this embedder or lacks one of the documents."""
    manifest = lake.manifest("documents", shard)
    path = vectors_path(lake, manifest, embedder) if manifest else None
    if path is None or not lake.fs.exists(path):
        return None
    vectors, stored = read_vectors(lake, path)
    row = {doc_id: i for i, doc_id in enumerate(stored)}
    if any(doc_id not in row for doc_id in ids):
        return None
    return vectors[[row[doc_id] for doc_id in ids]]
