"""Selection over the whole scored set: minimum score, decontamination, semantic dedup, and
a target size by topic or by k-center greedy.

Queries are ranked: those already in an earlier release of the dataset first (a release
never loses a row to a newer near-twin), then by score. Dedup drops any query whose cosine
similarity to a better-ranked kept one reaches the threshold, so the kept member of a
duplicate group is the released or best-scored one; then any new query within the threshold
of a row of an earlier release (the release index, see dedup.py) is dropped. With a target size, either the kept queries are clustered into
that many topics (FAISS k-means) and the best-scored query of each topic is kept, or k-center
greedy picks the most spread-out subset, starting from the best-scored query.
"""

from __future__ import annotations

import hashlib
import os
from collections import Counter

import faiss
import numpy as np
import pyarrow as pa

from synthq.tasks.core.config import CurateConfig, FactoryConfig
from synthq.tasks.core.embeddings import embed
from synthq.tasks.shards.context import StageContext
from synthq.tasks.core.lake import Lake, StageResult
from synthq.tasks.core.neardup import ReleaseIndex, index_spec, release_index, within
from synthq.tasks.shards.stage import ShardSpec, Stage
from synthq.tasks.curate.decontaminate import Benchmarks, benchmark_fields
from synthq.tasks.core.records import CURATED, REJECTED, rejection, table

STAGE = "curate"


def _rank(rows: list[dict], released: set[str]) -> list[dict]:
    return sorted(rows, key=lambda r: (r["id"] not in released, -r["score_total"], r["id"]))


def _dedup(rows: list[dict], vecs: np.ndarray, cfg: CurateConfig, seed: int, rejected: list[dict]):
    kept, dupes = within(vecs, cfg.dedup_threshold, index_spec(cfg), seed)
    for i, twin, sim in dupes:
        detail = f"cosine {sim:.3f} >= {cfg.dedup_threshold} with kept query {rows[twin]['id']}"
        rejected.append(rejection(STAGE, "near_duplicate", detail, rows[i]["id"], rows[i]))
    return [rows[i] for i in kept], vecs[kept], len(dupes)


def _dedup_against_releases(rows, vecs, cfg: CurateConfig, release: ReleaseIndex, released: set[str], rejected: list[dict]):
    fresh = [i for i, r in enumerate(rows) if r["id"] not in released]
    drop = {}
    for m in release.nearest(vecs[fresh], cfg.dedup_threshold):
        i = fresh[m.position]
        drop[i] = m
        detail = f"cosine {m.similarity:.3f} >= {cfg.dedup_threshold} with {release.name}/v{m.version} row {m.release_id}"
        rejected.append(rejection(STAGE, "duplicate_of_release", detail, rows[i]["id"], rows[i]))
    keep = [i for i in range(len(rows)) if i not in drop]
    return [rows[i] for i in keep], vecs[keep], len(drop)


def topics(vecs: np.ndarray, k: int, seed: int) -> np.ndarray:
    """Topic label per vector from spherical k-means."""
    km = faiss.Kmeans(vecs.shape[1], k, niter=20, seed=seed, spherical=True, min_points_per_centroid=1)
    km.train(vecs)
    return km.index.search(vecs, 1)[1][:, 0]


def k_center(vecs: np.ndarray, k: int) -> list[int]:
    """k-center greedy (DiverseEvol): from the first (best-ranked) vector, keep adding the
    vector farthest, in cosine distance, from everything chosen so far."""
    chosen = [0]
    dist = 1.0 - vecs @ vecs[0]
    while len(chosen) < min(k, len(vecs)):
        nxt = int(np.argmax(dist))
        chosen.append(nxt)
        dist = np.minimum(dist, 1.0 - vecs @ vecs[nxt])
    return sorted(chosen)


def _decontaminate(rows: list[dict], vecs: np.ndarray, cfg: CurateConfig, embedder: str, rejected: list[dict], stats: dict):
    bench = Benchmarks.load(cfg.benchmarks, benchmark_fields(cfg), cfg.contamination_ngram, embedder)
    if bench.unusable:  # rows of a benchmark file that hold no prompt: counted, not silently skipped
        stats["benchmark_rows_unusable"] = bench.unusable
    verdicts = bench.hits([r["query"] for r in rows], vecs, cfg.contamination_similarity)
    hits: Counter = Counter()
    for row, verdict in zip(rows, verdicts):
        if verdict:
            reason, name, detail = verdict
            hits[name] += 1
            rejected.append(rejection(STAGE, reason, detail, row["id"], row))
    clean = [i for i, v in enumerate(verdicts) if v is None]
    return [rows[i] for i in clean], vecs[clean], dict(hits)


def _best_per_topic(rows: list[dict], vecs: np.ndarray, cfg: CurateConfig, seed: int, rejected: list[dict], stats: dict) -> list[dict]:
    labels = topics(vecs, cfg.target_size, seed)
    stats["topic_sizes"] = {str(k): v for k, v in sorted(Counter(map(int, labels)).items())}
    best: dict[int, int] = {}
    for pos, label in enumerate(labels):  # rows are ranked: the first seen is the best
        best.setdefault(int(label), pos)
    for pos, (row, label) in enumerate(zip(rows, labels)):
        row["topic"] = int(label)
        if best[int(label)] != pos:
            winner = rows[best[int(label)]]["id"]
            rejected.append(rejection(STAGE, "topic_not_best", f"topic {label}: {winner} scored higher", row["id"], row))
    return [rows[p] for p in sorted(best.values())]


def _k_center_subset(rows: list[dict], vecs: np.ndarray, cfg: CurateConfig, rejected: list[dict]) -> list[dict]:
    keep = set(k_center(vecs, cfg.target_size))
    detail = f"k-center selection kept {len(keep)} of {len(rows)} (target_size={cfg.target_size})"
    rejected.extend(rejection(STAGE, "not_selected", detail, r["id"], r) for i, r in enumerate(rows) if i not in keep)
    return [r for i, r in enumerate(rows) if i in keep]


def select(scored: pa.Table, cfg: CurateConfig, embedder: str, seed: int, release: ReleaseIndex | None = None) -> StageResult:
    """Min score, decontamination, near-duplicate removal (within the batch, then against
    earlier releases when `release` is given), then target-size selection."""
    released = release.ids() if release else set()
    rows = _rank(scored.to_pylist(), released)
    rejected = [
        rejection(STAGE, "low_score", f"score {r['score_total']} < curate.min_score={cfg.min_score}", r["id"], r)
        for r in rows
        if r["score_total"] < cfg.min_score
    ]
    rows = [r for r in rows if r["score_total"] >= cfg.min_score]
    rejected += [
        rejection(STAGE, "unsafe", f"moderation: {', '.join(r['moderation_categories']) or 'unsafe'}", r["id"], r)
        for r in rows
        if r["moderation"] == "unsafe"
    ]
    rows = [r for r in rows if r["moderation"] != "unsafe"]
    if not rows:
        return StageResult(CURATED.empty_table(), table(rejected, REJECTED), {})
    vecs = embed([r["query"] for r in rows], embedder)
    stats: dict = {}
    if cfg.benchmarks:
        rows, vecs, stats["contamination_hits"] = _decontaminate(rows, vecs, cfg, embedder, rejected, stats)
    survivors, vecs, stats["near_duplicates"] = _dedup(rows, vecs, cfg, seed, rejected)
    if release:
        survivors, vecs, stats["duplicates_of_release"] = _dedup_against_releases(survivors, vecs, cfg, release, released, rejected)
    if cfg.target_size and len(survivors) > cfg.target_size:
        if cfg.selection == "k_center":
            survivors = _k_center_subset(survivors, vecs, cfg, rejected)
        else:
            survivors = _best_per_topic(survivors, vecs, cfg, seed, rejected, stats)
    stats["kept"] = len(survivors)
    return StageResult(table(survivors, CURATED), table(rejected, REJECTED), stats)


def process(_: pa.Table, ctx: StageContext) -> StageResult:
    """Selection runs once over every scored shard (a single shard of its own)."""
    cfg = ctx.cfg
    return select(ctx.lake.read("scored"), cfg.curate, cfg.embedder, cfg.seed, release_index(ctx.lake, cfg))


def selection_spec(lake: Lake, cfg: FactoryConfig) -> ShardSpec:
    """The single selection shard; its input id changes with any scored shard, benchmark
    file or newly indexed release."""
    parts = [m["checksum"] for m in lake.manifests("scored")]
    parts += [f"{b}:{os.path.getsize(b)}:{os.path.getmtime(b)}" for b in cfg.curate.benchmarks if os.path.isfile(b)]
    release = release_index(lake, cfg)
    parts += [release.fingerprint()] if release else []
    return ShardSpec("00000", hashlib.sha256(",".join(parts).encode()).hexdigest()[:16], rows=pa.table({}))


STAGE_SPEC = Stage("curated", ("curate", "embedder", "seed", "publish.name"), process)
