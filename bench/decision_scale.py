"""Curation's decision at N queries: its memory with the ranked vectors mapped from a scratch
file (as the factory runs it) against held in the process's memory (the earlier way), both
measured in this run.

Writes N screened queries as curation's screening leaves them (`Screened.to_bytes`: 16-hex
ids, scores 0-7, float16 unit vectors shaped like sentence embeddings with 10 % planted near
duplicates, from `dedup_scale.py`) in `--files` files of a lake in a temporary folder, then
runs the decision over them as `decide_shards` does (`Screened.read`, then `decide`: ranking,
dedup, the target size by topics; then each part's verdicts with their texts), each mode in a
fresh process. Per mode: wall time, peak
RSS (VmHWM), and the peaks of its two parts, sampled every 50 ms: anonymous memory (the
process's own, which only an OOM kill takes back) and file-backed (the mapped matrix's pages:
page cache that the kernel writes out and evicts under memory pressure). Both modes must make
the same verdicts (checked).

    PYTHONPATH=. .venv/bin/python bench/decision_scale.py [--queries 500000] [--files 50] [--target-size 50000]
"""

from __future__ import annotations

import argparse
import hashlib
import multiprocessing
import tempfile
import threading
import time
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

import smoke
from dedup_scale import corpus

from synthq.tasks.core.config import CurateConfig
from synthq.tasks.core.lake import Lake
from synthq.tasks.core.memory import reset_peak, rss_status
from synthq.tasks.curate import select

MODES = ("mapped", "in memory")


def write_screened(lake: Lake, queries: int, files: int, seed: int) -> list[str]:
    """`files` screened files of about queries/files rows each; returns their lake paths."""
    vecs, _ = corpus(queries, max(100, queries // 200), 0.1, seed, "float16")
    rng = np.random.default_rng(seed)
    ids = np.array([f"{x:016x}" for x in rng.integers(0, 2**63, queries)], dtype=str)
    scores = rng.integers(0, 8, queries).astype(np.int16)
    paths = []
    for f, rows in enumerate(np.array_split(np.arange(queries), files)):
        part = select.Screened(ids[rows], scores[rows], vecs[rows])
        paths.append(lake.path(select.FOLDER, "screened", f"part-{f:05d}.npz"))
        lake.write_bytes(paths[-1], part.to_bytes())
    return paths


class Peaks(threading.Thread):
    """Largest RssAnon and RssFile of this process seen while it runs (the kernel keeps a peak
    of their sum only)."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.anon = self.file = 0
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.wait(0.05):
            self.anon, self.file = max(self.anon, rss_status("RssAnon")), max(self.file, rss_status("RssFile"))


def one_mode(mode: str, lake_url: str, paths: list[str], cfg: CurateConfig, seed: int) -> dict:
    """The decision in this (fresh) process; the scratch matrix replaced by np.empty for "in memory"."""
    if mode == "in memory":
        select.scratch_array = lambda shape, dtype=np.float16: np.empty(shape, dtype=dtype)
    lake = Lake(lake_url)
    before = {"rss": rss_status("VmRSS"), "anon": rss_status("RssAnon"), "file": rss_status("RssFile")}
    reset_peak()  # VmHWM starts again from here
    peaks = Peaks()
    peaks.start()
    start = time.perf_counter()
    parts = [select.Screened.read(lake, p) for p in paths]
    decision, offset, reasons, digest = select.decide(parts, cfg, seed), 0, Counter(), hashlib.sha256()
    for part in parts:  # each part's verdicts with their texts, as decide_shards writes them
        verdicts, _ = decision.for_rows(offset, offset + len(part.ids))
        offset += len(part.ids)
        reasons.update(r for r, _ in verdicts.values())
        digest.update("\n".join(f"{k} {r} {d}" for k, (r, d) in sorted(verdicts.items())).encode())
    wall = time.perf_counter() - start
    peaks.done.set()
    peaks.join()
    return {"mode": mode, "wall": wall, "before": before, "peak": rss_status("VmHWM"), "anon": peaks.anon,
            "file": peaks.file, "kept": decision.stats["kept"], "reasons": reasons, "digest": digest.hexdigest()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--queries", type=int, default=500_000)
    ap.add_argument("--files", type=int, default=50, help="screened files (one per scored shard)")
    ap.add_argument("--target-size", type=int, default=50_000, help="topics kept (0: dedup only)")
    ap.add_argument("--ivf-threshold", type=int, default=100_000, help="curate.ivf_threshold")
    ap.add_argument("--seed", type=int, default=0)
    args = smoke.parse(ap, queries=3_000, files=3, target_size=300, ivf_threshold=1_000)
    cfg = CurateConfig(target_size=args.target_size or None, ivf_threshold=args.ivf_threshold)
    mib = 2**20
    with tempfile.TemporaryDirectory(prefix="decision-scale-") as tmp:
        lake = Lake(tmp)
        start = time.perf_counter()
        paths = write_screened(lake, args.queries, args.files, args.seed)
        print(f"{args.queries:,} screened queries in {len(paths)} files ({args.queries * 384 * 2 / mib:,.0f} MiB of "
              f"float16 vectors) written in {time.perf_counter() - start:.1f}s; target_size={cfg.target_size}, "
              f"ivf_threshold={cfg.ivf_threshold}", flush=True)
        results = []
        for mode in MODES:  # each in a fresh process: a process keeps the memory it peaked at
            with ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn")) as pool:
                results.append(pool.submit(one_mode, mode, lake.url, paths, cfg, args.seed).result())
    print(f"\n| decision ({args.queries:,} queries) | wall s | peak RSS MiB | anonymous peak MiB | file-backed peak MiB | kept | verdicts |")
    print("|---|---|---|---|---|---|---|")
    for r in results:
        print(f"| {r['mode']} | {r['wall']:.1f} | {(r['peak'] - r['before']['rss']) / mib:,.0f} | "
              f"{(r['anon'] - r['before']['anon']) / mib:,.0f} | {(r['file'] - r['before']['file']) / mib:,.0f} | {r['kept']:,} | "
              f"{', '.join(f'{k} {v:,}' for k, v in sorted(r['reasons'].items()))} |")
    print("(MiB over the process before the decision: its interpreter and libraries)")
    mapped, held = results
    same = mapped["digest"] == held["digest"] and mapped["kept"] == held["kept"]
    print(f"same verdicts in both modes: {same}")
    anon = lambda r: max(1, r["anon"] - r["before"]["anon"])  # noqa: E731
    print(f"ratio mapped / in memory: anonymous peak {anon(mapped) / anon(held):.2f}x, "
          f"time {mapped['wall'] / held['wall']:.2f}x; anonymous per query: {anon(mapped) / args.queries:,.0f} B mapped, "
          f"{anon(held) / args.queries:,.0f} B in memory")
    if not same:
        raise SystemExit("the two modes made different verdicts")


if __name__ == "__main__":
    main()
