"""Selection over the whole scored set: minimum score, semantic dedup, best per topic.

Dedup walks the queries from best to worst score and drops any query whose cosine
similarity to an already kept one reaches the threshold, so the kept member of a duplicate
group is its best-scored one. With a target size, the kept queries are clustered into that
many topics (FAISS k-means) and the best-scored query of each topic is kept.
"""

from __future__ import annotations

import hashlib

import faiss
import numpy as np
import pyarrow as pa

from tasks.core.config import CurateConfig
from tasks.core.embeddings import embed
from tasks.core.context import StageContext
from tasks.core.lake import Lake, StageResult
from tasks.core.stage import ShardSpec, Stage
from tasks.core.records import CURATED, REJECTED, rejection, table

STAGE = "curate"


def _rank(rows: list[dict]) -> list[dict]:
    return sorted(rows, key=lambda r: (-r["score_total"], r["id"]))


def dedup(rows: list[dict], vecs: np.ndarray, threshold: float) -> tuple[list[int], list[tuple[int, int, float]]]:
    """Positions kept, and (dropped, kept-twin, similarity) for each duplicate; rows are ranked."""
    index = faiss.IndexFlatIP(vecs.shape[1])
    kept, dropped = [], []
    for i in range(len(rows)):
        if index.ntotal:
            sim, pos = index.search(vecs[i : i + 1], 1)
            if sim[0, 0] >= threshold:
                dropped.append((i, kept[pos[0, 0]], float(sim[0, 0])))
                continue
        index.add(vecs[i : i + 1])
        kept.append(i)
    return kept, dropped


def topics(vecs: np.ndarray, k: int, seed: int) -> np.ndarray:
    """Topic label per vector from spherical k-means."""
    km = faiss.Kmeans(vecs.shape[1], k, niter=20, seed=seed, spherical=True, min_points_per_centroid=1)
    km.train(vecs)
    return km.index.search(vecs, 1)[1][:, 0]


def select(scored: pa.Table, cfg: CurateConfig, embedder: str, seed: int) -> StageResult:
    rows = _rank(scored.to_pylist())
    rejected = [
        rejection(STAGE, "low_score", f"score {r['score_total']} < curate.min_score={cfg.min_score}", r["id"], r)
        for r in rows
        if r["score_total"] < cfg.min_score
    ]
    rows = [r for r in rows if r["score_total"] >= cfg.min_score]
    if not rows:
        return StageResult(CURATED.empty_table(), table(rejected, REJECTED), {})
    vecs = embed([r["query"] for r in rows], embedder)
    kept, dupes = dedup(rows, vecs, cfg.dedup_threshold)
    for i, twin, sim in dupes:
        detail = f"cosine {sim:.3f} >= {cfg.dedup_threshold} with kept query {rows[twin]['id']}"
        rejected.append(rejection(STAGE, "near_duplicate", detail, rows[i]["id"], rows[i]))
    survivors = [rows[i] for i in kept]
    if cfg.target_size and len(survivors) > cfg.target_size:
        labels = topics(vecs[kept], cfg.target_size, seed)
        best: dict[int, int] = {}
        for pos, label in enumerate(labels):  # survivors are ranked: the first seen is the best
            best.setdefault(int(label), pos)
        for pos, (row, label) in enumerate(zip(survivors, labels)):
            row["topic"] = int(label)
            if best[int(label)] != pos:
                winner = survivors[best[int(label)]]["id"]
                rejected.append(rejection(STAGE, "topic_not_best", f"topic {label}: {winner} scored higher", row["id"], row))
        survivors = [survivors[p] for p in sorted(best.values())]
    stats = {"near_duplicates": len(dupes), "kept": len(survivors)}
    return StageResult(table(survivors, CURATED), table(rejected, REJECTED), stats)


def process(_: pa.Table, ctx: StageContext) -> StageResult:
    """Selection runs once over every scored shard (a single shard of its own)."""
    return select(ctx.lake.read("scored"), ctx.cfg.curate, ctx.cfg.embedder, ctx.cfg.seed)


def selection_spec(lake: Lake) -> ShardSpec:
    """The single selection shard; its input id changes whenever any scored shard does."""
    checksums = ",".join(m["checksum"] for m in lake.manifests("scored"))
    return ShardSpec("00000", hashlib.sha256(checksums.encode()).hexdigest()[:16], rows=pa.table({}))


STAGE_SPEC = Stage("curated", ("curate", "embedder", "seed"), process)
