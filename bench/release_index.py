"""The release index as releases accumulate: what publishing a version costs, segmented against one index.

Generates N released rows (384-dim float32 unit vectors shaped like sentence embeddings,
`dedup_scale.py`'s corpus) published as V versions of N/V rows, and indexes them version by
version with `ReleaseIndex.add`, as publish does: a version builds one segment of its rows
and the trailing segments no larger than it, and reads no other. Baseline, measured in the
same run: the single index publish kept before segments, into which each version was read
whole (`faiss.read_index`) and added (same IVF and float16 encoding, same spec), for the last
version. Each side runs in a fresh process. Per side: the last version's add (wall time,
anonymous memory peak over the process before it, sampled every 50 ms) and the largest over
every version; then curation's search (`nearest`) of Q planted near-copies of released rows:
ms per query and the share whose match is the row planted (recall@1).

    PYTHONPATH=. .venv/bin/python bench/release_index.py [--rows 1000000] [--versions 10] [--queries 20000]
"""

from __future__ import annotations

import argparse
import multiprocessing
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor

import faiss
import numpy as np

import smoke
from decision_scale import Peaks
from dedup_scale import corpus, rss_status, unit

from synthq.tasks.core.lake import Lake
from synthq.tasks.core.neardup import IndexSpec, build_index
from synthq.tasks.core.release_index import ReleaseIndex

THRESHOLD = 0.92


def data(rows: int, queries: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The released vectors, and probes: near-copies (cosine about 0.97) of random released rows."""
    vecs, _ = corpus(rows, max(100, rows // 200), 0.0, seed, "float32")
    rng = np.random.default_rng(seed + 1)
    targets = rng.choice(rows, size=queries, replace=False)
    probes = unit(vecs[targets] + 0.25 * unit(rng.standard_normal((queries, vecs.shape[1]), dtype=np.float32)))
    return vecs, probes.astype(np.float32), targets


def measured(fn) -> tuple[object, float, int]:
    """fn's result, wall time and anonymous memory peak over the process before it."""
    base, peaks = rss_status("RssAnon"), Peaks()
    peaks.start()
    start = time.perf_counter()
    out = fn()
    wall = time.perf_counter() - start
    peaks.done.set()
    peaks.join()
    return out, wall, max(0, max(peaks.anon, rss_status("RssAnon")) - base)


def one_side(side: str, rows: int, versions: int, queries: int, spec: IndexSpec, seed: int) -> dict:
    vecs, probes, targets = data(rows, queries, seed)
    cuts = np.linspace(0, rows, versions + 1).astype(int)
    ids = [f"r{i:09d}" for i in range(rows)]
    adds = []
    with tempfile.TemporaryDirectory(prefix="release-index-") as tmp:
        lake = Lake(tmp)
        index = ReleaseIndex(lake, "ds", spec, "bench")
        if side == "segments":
            for v, (lo, hi) in enumerate(zip(cuts, cuts[1:]), 1):
                _, wall, peak = measured(lambda: ReleaseIndex(lake, "ds", spec, "bench").add(v, ids[lo:hi], vecs[lo:hi]))
                adds.append((wall, peak))
            index = ReleaseIndex(lake, "ds", spec, "bench")
            extra = f"{len(index.segments)} segments ({', '.join(f'{s.count:,}' for s in index.segments)} rows)"
            search = lambda: index.nearest(probes, THRESHOLD)  # noqa: E731
        else:  # the earlier layout: one index, read whole and added to at each version
            path = f"{tmp}/one.faiss"
            faiss.write_index(build_index([vecs[: cuts[-2]]], spec), path)

            def add_last():
                one = faiss.read_index(path)
                one.add(vecs[cuts[-2] :])
                faiss.write_index(one, path)

            _, wall, peak = measured(add_last)
            adds.append((wall, peak))
            one = faiss.read_index(path, faiss.IO_FLAG_MMAP | faiss.IO_FLAG_READ_ONLY)
            if isinstance(one, faiss.IndexIVF):
                one.nprobe = min(spec.nprobe, one.nlist)
            extra = f"1 index ({one.ntotal:,} rows)"

            def search():
                sims, pos = one.search(probes, 1)
                return [(k, int(pos[k, 0])) for k in np.flatnonzero(sims[:, 0] >= THRESHOLD)]

        found, s_wall, _ = measured(search)
        pairs = [(m.position, int(m.release_id[1:])) for m in found] if side == "segments" else found
        hit = sum(1 for k, r in pairs if r == targets[k])
    return {"side": side, "last": adds[-1], "max_peak": max(p for _, p in adds), "extra": extra,
            "search_ms": 1000 * s_wall / len(probes), "recall": hit / len(probes)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=1_000_000, help="released rows")
    ap.add_argument("--versions", type=int, default=10, help="releases they were published in")
    ap.add_argument("--queries", type=int, default=20_000, help="near-copies searched")
    ap.add_argument("--ivf-threshold", type=int, default=100_000, help="curate.ivf_threshold")
    ap.add_argument("--nprobe", type=int, default=16, help="curate.ivf_nprobe")
    ap.add_argument("--seed", type=int, default=0)
    args = smoke.parse(ap, rows=6_000, versions=3, queries=300, ivf_threshold=1_500)
    spec = IndexSpec(args.ivf_threshold, args.nprobe)
    print(f"{args.rows:,} released rows in {args.versions} versions; ivf_threshold={spec.threshold}, nprobe={spec.nprobe}", flush=True)
    results = []
    for side in ("segments", "one index"):
        with ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn")) as pool:
            results.append(pool.submit(one_side, side, args.rows, args.versions, args.queries, spec, args.seed).result())
    mib = 2**20
    print(f"\n| release index ({args.rows:,} rows) | last version's add s | its anonymous peak MiB | largest add's peak MiB | "
          f"layout | search ms/query | recall@1 of the planted row |")
    print("|---|---|---|---|---|---|---|")
    for r in results:
        (wall, peak) = r["last"]
        largest = f"{r['max_peak'] / mib:,.0f}" if r["side"] == "segments" else "(one add measured)"
        print(f"| {r['side']} | {wall:.1f} | {peak / mib:,.0f} | {largest} | {r['extra']} | {r['search_ms']:.3f} | {r['recall']:.3f} |")
    seg, one = results
    print(f"ratio segments / one index: last add's memory {max(seg['last'][1], 1) / max(one['last'][1], 1):.2f}x, "
          f"its time {seg['last'][0] / max(one['last'][0], 1e-9):.2f}x, search time {seg['search_ms'] / max(one['search_ms'], 1e-9):.2f}x, "
          f"recall {seg['recall'] / max(one['recall'], 1e-9):.3f}")


if __name__ == "__main__":
    main()
