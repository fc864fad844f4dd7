"""Semantic dedup at a million instructions: time, memory and recall against exact search.

Generates unit vectors shaped like sentence embeddings (384 dims, clustered by topic) with a
known share of planted near-duplicates, then runs curation's dedup (`synthq.tasks.core.neardup.within`)
on all of them. Baseline, measured in the same run: exact (flat) dedup on a subset, scaled to
the full size (exact search grows with n²). Recall: for sampled rows, the duplicate pairs the
IVF search finds, over the pairs exact search finds.

The vectors are float16, as curation's decision holds them (`--dtype float32` for the
float32 figures); each block is compared in float32.

    .venv/bin/python bench/dedup_scale.py [--rows 1000000] [--subset 100000] [--dtype float16]
"""

from __future__ import annotations

import argparse
import time

import faiss
import numpy as np

import smoke

from synthq.tasks.core.memory import reset_peak, rss_status
from synthq.tasks.core.neardup import IndexSpec, f32, groups_for, pairs, within

DIM = 384


def unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def corpus(rows: int, topics: int, dup_share: float, seed: int, dtype: str = "float32") -> tuple[np.ndarray, np.ndarray]:
    """Topic-clustered unit vectors; `dup_share` of them are near-copies (cosine ~0.95) of others.
    Made chunk by chunk in float32 and held as `dtype`, so the peak is the bench's input, not its making."""
    rng = np.random.default_rng(seed)
    centers = unit(rng.standard_normal((topics, DIM), dtype=np.float32))
    vecs = np.empty((rows, DIM), dtype=dtype)
    step = 100_000
    for start in range(0, rows, step):
        n = min(step, rows - start)
        noise = unit(rng.standard_normal((n, DIM), dtype=np.float32))
        vecs[start : start + n] = unit(0.6 * centers[rng.integers(0, topics, n)] + 0.8 * noise)
    planted = int(rows * dup_share)
    targets = rng.choice(rows, size=planted, replace=False)
    sources = rng.integers(0, rows, planted)
    noise = unit(rng.standard_normal((planted, DIM), dtype=np.float32))
    vecs[targets] = unit(f32(vecs[sources]) + 0.3 * noise)
    return vecs, targets


def pair_recall(vecs: np.ndarray, groups, threshold: float, sample: np.ndarray) -> tuple[float, int]:
    """Share of the exact (row, better-ranked neighbour) pairs of sampled rows that the
    clustered comparison also finds."""
    exact = faiss.IndexFlatIP(DIM)
    exact.add(f32(vecs))
    lims, _, ids = exact.range_search(f32(vecs[sample]), threshold - 1e-6)
    truth = {(int(r), int(i)) for k, r in enumerate(sample) for i in ids[lims[k] : lims[k + 1]] if i < r}
    wanted = np.zeros(len(vecs), dtype=bool)
    wanted[sample] = True
    rows, found_ids, _ = pairs(vecs, [(q[wanted[q]], m) for q, m in groups], threshold)
    found = set(zip(rows.tolist(), found_ids.tolist()))
    return len(truth & found) / max(1, len(truth)), len(truth)


def timed(fn):
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--subset", type=int, default=100_000, help="rows for the exact baseline")
    ap.add_argument("--threshold", type=float, default=0.92)
    ap.add_argument("--nprobe", type=int, default=16, help="clusters compared per vector (curate.ivf_nprobe)")
    ap.add_argument("--recall-sample", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--dtype", choices=("float16", "float32"), default="float16", help="how the vectors are held")
    args = smoke.parse(ap, rows=20_000, subset=5_000, recall_sample=200)
    print(f"faiss {faiss.__version__}, {faiss.omp_get_max_threads()} threads")

    (vecs, planted), t_gen = timed(lambda: corpus(args.rows, max(100, args.rows // 200), 0.1, args.seed, args.dtype))
    print(f"generated {args.rows:,} {args.dtype} vectors ({len(planted):,} planted near-duplicates, "
          f"{vecs.nbytes / 2**20:,.0f} MiB) in {t_gen:.1f}s")

    clustered = IndexSpec(threshold=1, nprobe=args.nprobe)  # force the clustered path
    exact = IndexSpec(threshold=args.rows + 1, nprobe=args.nprobe)
    sub = vecs[: args.subset]
    (kept_exact, _), t_exact = timed(lambda: within(sub, args.threshold, exact))
    (kept_sub, _), t_sub = timed(lambda: within(sub, args.threshold, clustered))
    print(f"subset {args.subset:,}: exact {t_exact:.1f}s kept {len(kept_exact):,}; clustered {t_sub:.1f}s kept {len(kept_sub):,}")

    before = rss_status("VmRSS")
    reset_peak()
    groups, t_groups = timed(lambda: groups_for(vecs, clustered, args.seed))
    (kept, dropped), t_pairs = timed(lambda: within(vecs, args.threshold, clustered, groups=groups))
    total = t_groups + t_pairs
    peak = rss_status("VmHWM")
    print(f"full {args.rows:,}: dedup {total:.1f}s (k-means + assignment {t_groups:.1f}s, comparisons + greedy {t_pairs:.1f}s), "
          f"kept {len(kept):,}, dropped {len(dropped):,}; RSS {before / 2**30:.2f} GiB before (the vectors and "
          f"the process), peak {peak / 2**30:.2f} GiB during it (+{(peak - before) / 2**20:,.0f} MiB)")

    rng = np.random.default_rng(args.seed + 1)
    sample = np.unique(np.concatenate([rng.choice(planted, args.recall_sample), rng.choice(args.rows, args.recall_sample)]))
    (recall, truth), t_recall = timed(lambda: pair_recall(vecs, groups, args.threshold, sample))
    print(f"recall of duplicate pairs vs exact search ({len(sample):,} sampled rows, half of them planted copies; "
          f"{truth:,} exact pairs): {recall:.4f} ({t_recall:.0f}s)")
    exact_full = t_exact * (args.rows / args.subset) ** 2
    print(f"ratio exact (extrapolated from the subset, {exact_full:.0f}s) / clustered: {exact_full / total:.1f}x")
    print(f"ratio time / 300s target: {total / 300:.2f} ({'meets' if total <= 300 else 'misses'} the 5-minute target)")


if __name__ == "__main__":
    main()
