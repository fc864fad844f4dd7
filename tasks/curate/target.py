"""Selection to a target size over query vectors: topics (spherical k-means; in two levels past
TWO_LEVEL_TOPICS) and k-center greedy. Both work on positions in a matrix of unit vectors
(float16 or float32), optionally on `rows` of it, and cast to float32 block by block."""

from __future__ import annotations

import math

import numpy as np

from synthq.tasks.core.neardup import BLOCK, SEARCH_BATCH, f32, kmeans, nearest_centroids

TOPIC_POINTS = 64  # k-means training vectors per topic at most (FAISS warns below 39)
TWO_LEVEL_TOPICS = 4_096  # more topics than this are drawn in two levels (see `topics`): flat k-means
# trains on 64 vectors per topic (400 MB of float32 at 4,096) and assigns n·k; below it, both are cheap
KCENTER_POOL = 2_048  # candidates k-center greedy picks among between its passes over all of them
REFINE_STEPS, REFINE_NPROBE = 4, 8  # Lloyd steps after the two levels; nearby cells a row may move to


def topics(vecs: np.ndarray, k: int, seed: int, rows: np.ndarray | None = None, two_level: bool | None = None) -> np.ndarray:
    """Topic label per vector (per one of `rows`) from spherical k-means, trained on at most
    TOPIC_POINTS vectors per topic. Past TWO_LEVEL_TOPICS topics (or when `two_level`), in two
    levels: flat k-means costs k² to train and n·k to assign, hours at k = 100,000."""
    rows = np.arange(len(vecs)) if rows is None else rows
    if two_level if two_level is not None else k > TWO_LEVEL_TOPICS:
        return _two_level_topics(vecs, k, seed, rows)
    return nearest_centroids(kmeans(vecs, k, 20, seed, TOPIC_POINTS, rows), vecs, 1, rows)[:, 0]


def _two_level_topics(vecs: np.ndarray, k: int, seed: int, rows: np.ndarray) -> np.ndarray:
    """√k coarse clusters, k-means within each into its share of the k topics (by its size),
    then Lloyd steps over every row (`_refine`): training costs about k^1.5 and each step
    n·REFINE_NPROBE·√k, both as matrix products. Labels are 0..k-1."""
    if len(rows) <= k:
        return np.arange(len(rows))
    cells = kmeans(vecs, math.isqrt(k - 1) + 1, 20, seed, TOPIC_POINTS, rows)
    coarse = nearest_centroids(cells, vecs, 1, rows)[:, 0]
    order = np.argsort(coarse, kind="stable")
    sizes = np.bincount(coarse, minlength=cells.k)
    members = np.split(order, np.cumsum(sizes)[:-1])  # positions in `rows`, per coarse cluster
    labels, offset = np.empty(len(rows), dtype=np.int64), 0
    for c, (mine, share) in enumerate(zip(members, _shares(sizes, k).tolist())):
        if share == len(mine):  # as many topics as members: each is its own
            labels[mine] = offset + np.arange(share)
        elif share == 1:
            labels[mine] = offset
        elif share:
            labels[mine] = offset + topics(vecs, share, seed + 1 + c, rows[mine], two_level=False)
        offset += share
    return _refine(vecs, labels, k, rows, seed)


def _refine(vecs: np.ndarray, labels: np.ndarray, k: int, rows: np.ndarray, seed: int) -> np.ndarray:
    """REFINE_STEPS Lloyd steps: each topic's centroid from its rows; the centroids grouped
    into √k cells (k-means over them); each row to its nearest cell, then to its nearest
    centroid among those of its cell's REFINE_NPROBE nearest cells (one matrix product per
    block of a cell's rows) when that is nearer than its own, so no step loosens a topic.
    Mends what the split into coarse clusters got wrong (a topic cut by a boundary, a cluster
    given too few topics); bench/topic_scale.py measures tightness against flat k-means."""
    for step in range(REFINE_STEPS):
        centroids, used = _centroids(vecs, labels, k, rows)
        ids = np.flatnonzero(used)
        cells = kmeans(centroids, math.isqrt(len(ids) - 1) + 1, 10, seed + step, TOPIC_POINTS, ids)
        owner = nearest_centroids(cells, centroids, 1, ids)[:, 0]
        by_owner = np.argsort(owner, kind="stable")
        bounds = np.searchsorted(owner[by_owner], np.arange(cells.k + 1))
        near = cells.index.search(cells.centroids, min(REFINE_NPROBE, cells.k))[1]
        cell = nearest_centroids(cells, vecs, 1, rows)[:, 0]
        order = np.argsort(cell, kind="stable")
        for c, mine in enumerate(np.split(order, np.cumsum(np.bincount(cell, minlength=cells.k))[:-1])):
            cand = ids[np.concatenate([by_owner[bounds[j] : bounds[j + 1]] for j in near[c] if j >= 0])]
            if not len(mine) or not len(cand):
                continue
            block = centroids[cand]
            for start in range(0, len(mine), BLOCK):  # a row moves only to a nearer centroid than its own
                part = mine[start : start + BLOCK]
                batch = f32(vecs[rows[part]])
                sims = batch @ block.T
                best = np.argmax(sims, axis=1)
                better = sims[np.arange(len(part)), best] > np.einsum("ij,ij->i", batch, centroids[labels[part]])
                labels[part[better]] = cand[best[better]]
    return labels


def _centroids(vecs: np.ndarray, labels: np.ndarray, k: int, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each topic's mean direction (unit length; float32) and which topics have rows."""
    sums = np.zeros((k, vecs.shape[1]), dtype=np.float32)
    for start in range(0, len(rows), SEARCH_BATCH):
        batch, lab = f32(vecs[rows[start : start + SEARCH_BATCH]]), labels[start : start + SEARCH_BATCH]
        order = np.argsort(lab, kind="stable")
        used, first = np.unique(lab[order], return_index=True)
        sums[used] += np.add.reduceat(batch[order], first, axis=0)
    norms = np.linalg.norm(sums, axis=1)
    used = norms > 0
    sums[used] /= norms[used, None]
    return sums, used


def _shares(sizes: np.ndarray, k: int) -> np.ndarray:
    """k split over clusters in proportion to their sizes (largest remainders), at least one
    for a cluster with members and never more than its members."""
    exact = k * sizes / sizes.sum()
    shares = np.minimum(np.maximum(np.floor(exact).astype(np.int64), (sizes > 0).astype(np.int64)), sizes)
    spare = exact - shares
    while shares.sum() != k:  # a few steps: at most one per cluster
        room = np.where(shares < sizes, spare, -np.inf) if shares.sum() < k else np.where(shares > 1, -spare, -np.inf)
        c = int(np.argmax(room))
        step = 1 if shares.sum() < k else -1
        shares[c] += step
        spare[c] -= step
    return shares


def k_center(vecs: np.ndarray, k: int, rows: np.ndarray | None = None) -> list[int]:
    """k-center greedy (DiverseEvol): from the first (best-ranked) vector, keep adding the
    vector farthest, in cosine distance, from everything chosen so far. Positions in `rows`,
    whose vectors it holds in float32 (its passes over them would cast them each time).

    The same picks as one pass over every candidate per pick, with far fewer passes: each
    pass takes the KCENTER_POOL farthest candidates and keeps picking among them while the
    best of them is at least as far as any candidate outside (a distance only shrinks as
    picks are added, so that one is the true next pick); then every candidate's distance is
    brought up to date with one matrix product per block of picks."""
    sub = f32(vecs if rows is None else vecs[rows])
    n, k = len(sub), min(k, len(sub))
    chosen = [0]
    dist = 1.0 - sub @ sub[0]
    dist[0] = -np.inf  # chosen
    while len(chosen) < k:
        if n - len(chosen) > KCENTER_POOL:
            pool = np.sort(np.argpartition(dist, n - KCENTER_POOL)[n - KCENTER_POOL :])  # sorted: ties go to the lower position
            outside = np.ones(n, dtype=bool)
            outside[pool] = False
            bound = float(dist[outside].max())
        else:
            pool, bound = np.flatnonzero(dist > -np.inf), -np.inf
        near, cands, picked = dist[pool], sub[pool], []
        while len(chosen) < k:
            j = int(np.argmax(near))
            if near[j] == -np.inf or near[j] < bound:
                break
            chosen.append(int(pool[j]))
            picked.append(int(pool[j]))
            near = np.minimum(near, 1.0 - cands @ cands[j])
            near[j] = -np.inf
        for start in range(0, len(picked), 256):
            block = sub[picked[start : start + 256]].T
            for lo in range(0, n, SEARCH_BATCH):
                hi = lo + SEARCH_BATCH
                dist[lo:hi] = np.minimum(dist[lo:hi], (1.0 - sub[lo:hi] @ block).min(axis=1))
        dist[picked] = -np.inf
    return sorted(chosen)
