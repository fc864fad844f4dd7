"""Selection to a target size at many topics or picks: topic selection (`selection: topics`,
two-level k-means against flat k-means: time and topic tightness) and k-center greedy
(`selection: k_center`, against one pass over every candidate per pick: time, same picks).

Flat k-means costs about n·k per pass (and trains on up to 64·k vectors): at a million
queries and 100,000 topics it would run for hours. Past `TWO_LEVEL_TOPICS` curation draws
topics in two levels and refines them (`synthq.tasks.curate.select.topics`). Baseline,
measured in the same run: flat k-means on a subset (rows and topics scaled down by the same
factor, so as many rows per topic), compared with two levels on the same subset for
tightness (mean cosine of a query to its topic's mean direction; higher is tighter), and
scaled to the full size for time (flat grows with n·k).

The vectors are float16, as curation's decision holds them, around twice as many directions
as there are topics, in two corpora: nested (the directions grouped in themes, as text
embeddings group by subject) and unrelated (random directions, nearly orthogonal: nothing for
a coarse level to find, the worst case for two levels).

    PYTHONPATH=. .venv/bin/python bench/topic_scale.py [--rows 1000000] [--topics 100000] [--subset 100000]
        [--kcenter-rows 200000] [--kcenter-picks 20000]
"""

from __future__ import annotations

import argparse
import math

import numpy as np

import smoke
from dedup_scale import DIM, corpus, reset_peak, rss_status, timed, unit

from synthq.tasks.core.neardup import SEARCH_BATCH, f32
from synthq.tasks.curate.target import REFINE_NPROBE, REFINE_STEPS, k_center, topics


def tightness(vecs: np.ndarray, labels: np.ndarray, k: int) -> float:
    """Mean cosine of each vector to its topic's mean direction (batch by batch)."""
    sums = np.zeros((k, vecs.shape[1]), dtype=np.float64)
    for start in range(0, len(vecs), SEARCH_BATCH):
        np.add.at(sums, labels[start : start + SEARCH_BATCH], f32(vecs[start : start + SEARCH_BATCH]))
    sums /= np.linalg.norm(sums, axis=1, keepdims=True) + 1e-12
    total = 0.0
    for start in range(0, len(vecs), SEARCH_BATCH):
        batch = f32(vecs[start : start + SEARCH_BATCH])
        total += float(np.sum(batch * sums[labels[start : start + SEARCH_BATCH]]))
    return total / len(vecs)


def nested(rows: int, themes: int, per_theme: int, seed: int) -> np.ndarray:
    """Float16 unit vectors around themes × per_theme subtopic directions, each subtopic near
    its theme (topics within themes, as text embeddings group), made chunk by chunk."""
    rng = np.random.default_rng(seed)
    theme = unit(rng.standard_normal((themes, DIM), dtype=np.float32))
    sub = unit(0.7 * np.repeat(theme, per_theme, axis=0) + 0.7 * unit(rng.standard_normal((themes * per_theme, DIM), dtype=np.float32)))
    vecs = np.empty((rows, DIM), dtype=np.float16)
    for start in range(0, rows, 100_000):
        n = min(100_000, rows - start)
        vecs[start : start + n] = unit(0.6 * sub[rng.integers(0, len(sub), n)] + 0.8 * unit(rng.standard_normal((n, DIM), dtype=np.float32)))
    return vecs


def compare(name: str, what: str, vecs: np.ndarray, args: argparse.Namespace) -> None:
    """Flat against two levels on a subset, then two levels on every row."""
    sub, k_sub = vecs[: args.subset], max(2, args.topics * args.subset // args.rows)
    flat, t_flat = timed(lambda: topics(sub, k_sub, args.seed, two_level=False))
    two, t_two = timed(lambda: topics(sub, k_sub, args.seed, two_level=True))
    q_flat, q_two = tightness(sub, flat, k_sub), tightness(sub, two, k_sub)
    print(f"\n{name} ({what})\n| subset of {args.subset:,} rows, {k_sub:,} topics | flat | two levels |\n|---|---|---|\n"
          f"| time | {t_flat:.1f}s | {t_two:.1f}s |\n| tightness | {q_flat:.4f} | {q_two:.4f} |\n"
          f"| topics used | {len(np.unique(flat)):,} | {len(np.unique(two)):,} |")
    before = rss_status("VmRSS")
    reset_peak()
    labels, t_full = timed(lambda: topics(vecs, args.topics, args.seed, two_level=True))
    peak = rss_status("VmHWM")
    print(f"full {args.rows:,} rows into {args.topics:,} topics: two levels {t_full:.1f}s, "
          f"{len(np.unique(labels)):,} topics used, tightness {tightness(vecs, labels, args.topics):.4f}; "
          f"peak RSS +{(peak - before) / 2**20:,.0f} MiB over the vectors ({vecs.nbytes / 2**20:,.0f} MiB)")
    flat_full = t_flat * (args.rows * args.topics) / (args.subset * k_sub)
    print(f"ratio two levels / flat (subset, {name}): tightness {q_two / q_flat:.3f}, time {t_two / t_flat:.2f}")
    print(f"ratio flat (extrapolated from the subset, {flat_full:,.0f}s) / two levels (full, {name}): {flat_full / t_full:.1f}x")


def plain_k_center(vecs: np.ndarray, k: int) -> list[int]:
    """k-center greedy with one pass over every candidate per pick: what curation ran before."""
    sub = f32(vecs)
    chosen, dist = [0], 1.0 - sub @ sub[0]
    while len(chosen) < k:
        chosen.append(int(np.argmax(dist)))
        dist = np.minimum(dist, 1.0 - sub @ sub[chosen[-1]])
    return sorted(chosen)


def compare_k_center(args: argparse.Namespace) -> None:
    """`selection: k_center`: the plain greedy against curation's on a subset (same picks?),
    then curation's on every row."""
    vecs = corpus(args.kcenter_rows, 2 * args.kcenter_picks, 0.0, args.seed, "float16")[0]
    rows, picks = args.kcenter_rows // 4, args.kcenter_picks // 4
    plain, t_plain = timed(lambda: plain_k_center(vecs[:rows], picks))
    ours, t_ours = timed(lambda: k_center(vecs[:rows], picks))
    full, t_full = timed(lambda: k_center(vecs, args.kcenter_picks))
    print(f"\nk-center ({args.kcenter_picks:,} of {args.kcenter_rows:,} rows; subset {picks:,} of {rows:,})\n"
          f"| subset | plain greedy | curation's |\n|---|---|---|\n| time | {t_plain:.1f}s | {t_ours:.1f}s |\n"
          f"| same picks | | {ours == plain} |\n"
          f"full: {len(full):,} picks in {t_full:.1f}s")
    plain_full = t_plain * (args.kcenter_rows * args.kcenter_picks) / (rows * picks)
    print(f"ratio plain greedy (extrapolated from the subset, {plain_full:,.0f}s) / curation's (full): {plain_full / t_full:.1f}x")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=1_000_000, help="queries left after dedup")
    ap.add_argument("--topics", type=int, default=100_000, help="curate.target_size")
    ap.add_argument("--subset", type=int, default=100_000, help="rows of the flat baseline (topics scaled alike)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--kcenter-rows", type=int, default=200_000, help="rows of the k-center comparison")
    ap.add_argument("--kcenter-picks", type=int, default=20_000, help="its target_size")
    args = smoke.parse(ap, rows=20_000, topics=2_000, subset=10_000, kcenter_rows=12_000, kcenter_picks=800)
    print(f"two levels: √k coarse clusters, k-means within each, {REFINE_STEPS} Lloyd steps searching {REFINE_NPROBE} cells")
    themes = math.isqrt(2 * args.topics)
    corpora = {
        "nested": (f"{themes * themes:,} subtopics in {themes:,} themes", lambda: nested(args.rows, themes, themes, args.seed)),
        "unrelated": (f"{2 * args.topics:,} random directions, no themes: the worst case for two levels",
                      lambda: corpus(args.rows, 2 * args.topics, 0.0, args.seed, "float16")[0]),
    }
    for name, (what, make) in corpora.items():
        compare(name, what, make(), args)
    compare_k_center(args)

if __name__ == "__main__":
    main()
