"""Grouping a shard's documents by meaning, so that each group can share one prompt prefix.

Documents are embedded (title + opening, as for retrieval), clustered with seeded spherical
k-means (k-means++ start) into ceil(n / group_size) clusters, then assigned to clusters with
at most `group_size` documents each: groups come out balanced, and each document joins the
nearest cluster that still has room.
"""

from __future__ import annotations

import math

import numpy as np


def unit(vector: np.ndarray) -> np.ndarray:
    norm = float(np.linalg.norm(vector))
    return vector / norm if norm > 0 else vector


def seeds_plus_plus(vectors: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """k-means++ seeding: each next center drawn with probability ~ squared distance to the
    nearest center so far, which spreads the centers over the topics."""
    chosen = [int(rng.integers(len(vectors)))]
    dist = np.maximum(2 - 2 * vectors @ vectors[chosen[0]], 0)
    for _ in range(k - 1):
        weights = dist**2
        total = float(weights.sum())
        nxt = int(rng.choice(len(vectors), p=weights / total)) if total > 0 else int(rng.integers(len(vectors)))
        chosen.append(nxt)
        dist = np.minimum(dist, np.maximum(2 - 2 * vectors @ vectors[nxt], 0))
    return vectors[chosen].copy()


def centroids(vectors: np.ndarray, k: int, seed: int, iterations: int = 25) -> np.ndarray:
    """k unit centroids of the unit `vectors`: seeded spherical k-means (k-means++ start)."""
    if k >= len(vectors):
        return vectors.copy()
    centers = seeds_plus_plus(vectors, k, np.random.default_rng(seed))
    for _ in range(iterations):
        owner = np.argmax(vectors @ centers.T, axis=1)
        sums = np.zeros_like(centers)
        np.add.at(sums, owner, vectors)
        norms = np.linalg.norm(sums, axis=1, keepdims=True)
        moved = np.where(norms > 0, sums / np.maximum(norms, 1e-12), centers)  # an empty cluster keeps its center
        if np.allclose(moved, centers):
            break
        centers = moved
    return centers


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
