"""Grouping a shard's documents by meaning, so that each group can share one prompt prefix.

Documents are embedded (title + opening, as for retrieval), clustered with faiss's seeded
spherical k-means into ceil(n / group_size) clusters, then assigned to clusters with
at most `group_size` documents each: groups come out balanced, and each document joins the
nearest cluster that still has room.
"""

from __future__ import annotations

import math

import faiss
import numpy as np


def unit(vector: np.ndarray) -> np.ndarray:
    norm = float(np.linalg.norm(vector))
    return vector / norm if norm > 0 else vector


def centroids(vectors: np.ndarray, k: int, seed: int, iterations: int = 25, restarts: int = 3) -> np.ndarray:
    """k unit centroids of the unit `vectors`: seeded spherical k-means (faiss), the best of
    a few restarts."""
    if k >= len(vectors):
        return vectors.copy()
    km = faiss.Kmeans(vectors.shape[1], k, niter=iterations, nredo=restarts, seed=seed, spherical=True,
                      min_points_per_centroid=1)  # a shard is small: no warning for few points per cluster
    km.train(np.ascontiguousarray(vectors, dtype=np.float32))
    return km.centroids


def balanced_assignment(vectors: np.ndarray, centers: np.ndarray, capacity: int) -> list[list[int]]:
    """Members of each center, at most `capacity` each. Documents choose in order of how close
    they are to their nearest center; each joins the nearest center that still has room. Empty
    centers are left out; groups are ordered by their first member, members by input order."""
    sims = vectors @ centers.T
    preference = np.argsort(-sims, axis=1, kind="stable")
    room = np.full(len(centers), capacity)
    owner = np.empty(len(vectors), dtype=int)
    for doc in np.argsort(-sims.max(axis=1), kind="stable"):
        center = next(int(c) for c in preference[doc] if room[c] > 0)
        owner[doc] = center
        room[center] -= 1
    members: dict[int, list[int]] = {}
    for doc, center in enumerate(owner):
        members.setdefault(int(center), []).append(doc)
    return list(members.values())


def group_documents(vectors: np.ndarray, group_size: int, seed: int) -> list[list[int]]:
    """Row indices of `vectors`, in groups of at most `group_size` similar documents."""
    if len(vectors) == 0:
        return []
    if group_size == 1:
        return [[i] for i in range(len(vectors))]
    k = math.ceil(len(vectors) / group_size)
    return balanced_assignment(vectors, centroids(vectors, k, seed), group_size)
