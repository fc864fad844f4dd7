"""Corpus-wide near-duplicate dedup of documents: signature speed, dedup speed, memory, recall.

Generates documents of 200-400 words drawn from a Zipf-distributed vocabulary, a share of
them planted near-copies of others (1-3 words changed: true Jaccard of word 5-grams above
0.85), shuffled into shards of a temporary lake with their MinHash sidecars, as the ingest
stage writes them. Then runs `find_duplicates` on a local Ray and `apply_drops`.

Baseline, measured in the same run: datasketch's own per-document API (`MinHash.bulk`, SHA-1
shingle hashes) on a subset, against `synthq.tasks.ingest.minhash.signatures`. Recall: the planted
pairs with exactly one copy dropped; false drops: documents outside any planted pair dropped.

    .venv/bin/python bench/near_dup.py [--docs 200000] [--shard-size 5000] [--cpus 2]
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import threading
import time

import numpy as np
import psutil
import ray
from datasketch import MinHash

import smoke

from synthq.tasks.core.config import DedupConfig
from synthq.tasks.core.lake import Lake, StageResult
from synthq.tasks.core.records import DOCUMENTS, REJECTED, table
from synthq.tasks.ingest.dedup import DATASET, apply_drops, find_duplicates
from synthq.tasks.ingest.minhash import SIDECAR, normalize, sidecar_table, signatures

GIB = 2**30


def vocabulary(size: int, rng: np.random.Generator) -> list[str]:
    letters = np.array(list("abcdefghijklmnopqrstuvwxyz"))
    return ["".join(rng.choice(letters, int(n))) for n in rng.integers(2, 10, size)]


def corpus_plan(docs: int, dup_share: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Position of every document in the lake (a shuffle), and the source of each planted
    copy (documents [distinct:] copy documents sources[k])."""
    planted = int(docs * dup_share)
    sources = rng.choice(docs - planted, planted, replace=False)
    return rng.permutation(docs), sources


def text_of(doc: int, distinct: int, sources: np.ndarray, vocab: list[str], seed: int) -> str:
    """Document `doc`, regenerated from its seed: nothing is held for the whole corpus."""
    if doc >= distinct:
        words = text_of(int(sources[doc - distinct]), distinct, sources, vocab, seed).split()
        rng = np.random.default_rng((seed, doc))
        for pos in rng.choice(len(words), int(rng.integers(1, 4)), replace=False):
            words[pos] = f"planted{doc}x{pos}"
        return " ".join(words)
    rng = np.random.default_rng((seed, doc))
    ranks = np.minimum(rng.zipf(1.2, int(rng.integers(200, 401))), len(vocab)) - 1
    return " ".join(vocab[r] for r in ranks)


def write_lake(lake: Lake, args, order, distinct, sources, vocab) -> tuple[float, float]:
    """Write the shards with their sidecars; returns (signature wall s, signature CPU s)."""
    wall = cpu = 0.0
    cfg = DedupConfig()
    for n, start in enumerate(range(0, len(order), args.shard_size)):
        docs = order[start : start + args.shard_size]
        texts = [text_of(int(d), distinct, sources, vocab, args.seed) for d in docs]
        ids = [f"doc-{d:08d}" for d in docs]
        t0, c0 = time.perf_counter(), time.process_time()
        sigs = signatures(texts, cfg)
        wall, cpu = wall + time.perf_counter() - t0, cpu + time.process_time() - c0
        rows = [
            {"id": i, "url": f"https://bench.example/{i}", "title": "", "text": t, "language": "en", "language_score": 1.0,
             "date": "", "source": "bench", "source_offset": None, "fetch_time": None, "n_words": len(t.split())}
            for i, t in zip(ids, texts)
        ]
        result = StageResult(table(rows, DOCUMENTS), table([], REJECTED), {"ingested_at": float(n)},
                             sidecars={SIDECAR: sidecar_table(ids, sigs, cfg)})
        lake.write_shard(DATASET, f"{n:05d}", result, input_id=str(n), config="bench")
    return wall, cpu


def datasketch_rate(texts: list[str], shingle_words: int = 5) -> float:
    """Documents per CPU second of datasketch's per-document API on the same shingles."""
    start = time.process_time()
    shingles = []
    for text in texts:
        words = normalize(text)
        shingles.append([" ".join(words[i : i + shingle_words]).encode() for i in range(len(words) - shingle_words + 1)])
    MinHash.bulk(shingles, num_perm=128)
    return len(texts) / (time.process_time() - start)


class PeakMemory:
    """Samples, in a thread, the RSS of this process and the private RSS of the Ray workers
    it started (its descendants named ray::...; object-store pages are shared, not counted)."""

    def __init__(self, every_s: float = 0.25):
        self.every_s, self.driver, self.worker, self.workers = every_s, 0, 0, 0
        self.idle_worker = max(self._workers(), default=0)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    @staticmethod
    def _workers() -> list[int]:
        rss = []
        for p in psutil.Process().children(recursive=True):
            try:
                if p.name().startswith("ray::"):
                    info = p.memory_info()
                    rss.append(info.rss - info.shared)
            except psutil.Error:
                continue
        return rss

    def _run(self) -> None:
        me = psutil.Process()
        while not self._stop.is_set():
            rss = self._workers()
            self.driver = max(self.driver, me.memory_info().rss)
            self.worker, self.workers = max(self.worker, max(rss, default=0)), max(self.workers, sum(rss))
            self._stop.wait(self.every_s)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


def score(drops: dict, order: np.ndarray, distinct: int, sources: np.ndarray, shard_size: int) -> tuple[float, int]:
    """(recall of planted pairs, documents outside planted pairs that were dropped)."""
    where = np.empty(len(order), dtype=np.int64)
    where[order] = np.arange(len(order))
    dropped = np.zeros(len(order), dtype=bool)
    for shard, rows in drops.items():
        dropped[int(shard) * shard_size + np.fromiter(rows, dtype=np.int64)] = True
    copies = np.arange(distinct, len(order))
    found = dropped[where[copies]] ^ dropped[where[sources]]
    in_pairs = np.zeros(len(order), dtype=bool)
    in_pairs[where[copies]] = in_pairs[where[sources]] = True
    return float(found.mean()), int((dropped & ~in_pairs).sum())


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--docs", type=int, default=200_000)
    ap.add_argument("--shard-size", type=int, default=5_000)
    ap.add_argument("--dup-share", type=float, default=0.1)
    ap.add_argument("--cpus", type=int, default=2)
    ap.add_argument("--baseline", type=int, default=300, help="documents for the datasketch baseline")
    ap.add_argument("--seed", type=int, default=0)
    args = smoke.parse(ap, docs=5_000, shard_size=1_000, baseline=50)
    rng = np.random.default_rng(args.seed)
    vocab = vocabulary(50_000, rng)
    order, sources = corpus_plan(args.docs, args.dup_share, rng)
    distinct = args.docs - len(sources)
    cfg = DedupConfig()
    print(f"{args.docs:,} documents ({len(sources):,} planted near-copies), shards of {args.shard_size:,}, "
          f"{psutil.cpu_count()} cores, load average {psutil.getloadavg()[0]:.1f} at start")

    with tempfile.TemporaryDirectory(prefix="near-dup-") as root:
        lake = Lake(root)
        t0 = time.perf_counter()
        sig_wall, sig_cpu = write_lake(lake, args, order, distinct, sources, vocab)
        print(f"generated and wrote the lake in {time.perf_counter() - t0:.0f}s; signatures: "
              f"{args.docs / sig_wall:,.0f} docs/s wall, {args.docs / sig_cpu:,.0f} docs/s per CPU second (one process)")
        sample = [text_of(int(d), distinct, sources, vocab, args.seed) for d in order[: args.baseline]]
        base = datasketch_rate(sample)
        c0 = time.process_time()
        signatures(sample, cfg)
        ours = len(sample) / (time.process_time() - c0)
        print(f"baseline datasketch MinHash.bulk on {len(sample)} docs: {base:,.0f} docs/s per CPU second; "
              f"ratio vectorised / datasketch: {ours / base:.1f}x")

        ray.init(address="local", num_cpus=args.cpus, include_dashboard=False, log_to_driver=False)
        ray.get([ray.remote(lambda: None).remote() for _ in range(args.cpus)])  # workers up, to see an idle one
        rss_before = psutil.Process().memory_info().rss
        with PeakMemory() as peak:
            t0 = time.perf_counter()
            drops = find_duplicates(lake, cfg)
            t_find = time.perf_counter() - t0
        t0 = time.perf_counter()
        find_duplicates(lake, cfg)
        t_warm = time.perf_counter() - t0
        recall, false_drops = score(drops, order, distinct, sources, args.shard_size)
        n_drops = sum(map(len, drops.values()))
        print(f"find_duplicates on {args.cpus} Ray CPUs, {cfg.partitions} partitions: {t_find:.1f}s = "
              f"{args.docs / t_find:,.0f} docs/s (workers starting cold); again, warm: {t_warm:.1f}s = "
              f"{args.docs / t_warm:,.0f} docs/s; {n_drops:,} to drop")
        print(f"recall of planted pairs: {recall:.4f}; false drops: {false_drops}")
        print(f"memory: driver RSS {rss_before / GIB:.2f} GiB before, peak {peak.driver / GIB:.2f} GiB during dedup "
              f"(lifetime peak {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20:.2f} GiB, corpus generation included); "
              f"Ray workers' private RSS: peak {peak.worker / GIB:.2f} GiB per worker (an idle worker: {peak.idle_worker / GIB:.2f} GiB), "
              f"{peak.workers / GIB:.2f} GiB all together")
        t0 = time.perf_counter()
        moved = apply_drops(lake, drops)
        t_apply = time.perf_counter() - t0
        t0 = time.perf_counter()
        again = sum(map(len, find_duplicates(lake, cfg).values()))
        print(f"apply_drops moved {moved:,} documents to rejected in {t_apply:.1f}s; "
              f"a second find_duplicates ({time.perf_counter() - t0:.1f}s) finds {again}")
        ray.shutdown()
    print(f"load average {psutil.getloadavg()[0]:.1f} at the end (other work shares these cores)")


if __name__ == "__main__":
    main()
