"""Attribution's retrieval index past its IVF threshold: size, build and search time, and
recall against exact search, through the stage's own `build_index` and `dense_search`.

Generates N unit vectors shaped like sentence embeddings (384 dims, clustered by topic; the
generator of dedup_scale.py) as the kept vectors of documents shards, so no text is embedded,
and queries that are noisy copies of sampled documents (each query's target is its document).
Baseline, measured in the same run: the flat (exact) index over the same vectors. Prints the
recall@1 the build measures itself (nearest other document, index vs exact) and the queries'
recall@1 of their target through each index.

    .venv/bin/python bench/retrieval_index.py [--docs 200000] [--shard 10000] [--queries 1000]
"""

from __future__ import annotations

import argparse
import io
import resource
import tempfile
import time
from datetime import datetime, timezone

import numpy as np

import smoke
from dedup_scale import DIM, corpus

from synthq.tasks.attribute.retrieve import build_index, dense_search, load_index
from synthq.tasks.core.doc_vectors import vectors_path
from synthq.tasks.core.attribute_config import IndexConfig
from synthq.tasks.core.lake import Lake, StageResult
from synthq.tasks.core.records import DOCUMENTS, REJECTED, table


def write_corpus(lake: Lake, vecs: np.ndarray, shard: int) -> None:
    """Documents shards of placeholder rows, each with its vectors kept as if embedded earlier."""
    now = datetime.now(timezone.utc)
    for n, start in enumerate(range(0, len(vecs), shard)):
        part = vecs[start : start + shard]
        rows = [{"id": f"d{start + i}", "url": f"https://example.org/{start + i}", "title": "", "text": "", "language": "en",
                 "language_score": 1.0, "date": "", "source": "bench", "source_offset": start + i, "fetch_time": now,
                 "n_words": 0, "search_query": None} for i in range(len(part))]
        m = lake.write_shard("documents", f"{n:05d}", StageResult(table(rows, DOCUMENTS), table([], REJECTED)), input_id="bench", config="bench")
        buf = io.BytesIO()
        np.savez(buf, vectors=part, ids=np.array([r["id"] for r in rows], dtype=str))
        lake.write_bytes(vectors_path(lake, m, "bundled"), buf.getvalue())


def queries_for(vecs: np.ndarray, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    targets = rng.choice(len(vecs), size=n, replace=False)
    noise = rng.standard_normal((n, DIM), dtype=np.float32)
    noise /= np.linalg.norm(noise, axis=1, keepdims=True)
    q = vecs[targets] + 0.5 * noise  # cosine to the target about 0.9
    return q / np.linalg.norm(q, axis=1, keepdims=True), targets


def measure(lake: Lake, kind: str, args, queries: np.ndarray, targets: np.ndarray) -> dict:
    start = time.perf_counter()
    info = build_index(lake, "bundled", "dense", IndexConfig(kind=kind, nprobe=args.nprobe))
    built = time.perf_counter() - start
    index, ids = load_index(lake)
    start = time.perf_counter()
    hits = dense_search(index, queries, 1)
    searched = time.perf_counter() - start
    found = np.array([h[0][0] if h else -1 for h in hits])
    size = lake.fs.size(lake.path("indexes/documents/index.faiss"))
    return {**info, "build_s": built, "search_ms": 1000 * searched / len(queries), "bytes": size,
            "target_recall": float(np.mean(found == targets))}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--docs", type=int, default=200_000)
    ap.add_argument("--shard", type=int, default=10_000, help="documents per shard (vectors file)")
    ap.add_argument("--queries", type=int, default=1_000)
    ap.add_argument("--nprobe", type=int, default=IndexConfig().nprobe)
    ap.add_argument("--seed", type=int, default=0)
    args = smoke.parse(ap, docs=3_000, shard=1_000, queries=200)
    vecs, _ = corpus(args.docs, max(100, args.docs // 200), 0.0, args.seed)
    queries, targets = queries_for(vecs, args.queries, args.seed + 1)
    with tempfile.TemporaryDirectory() as tmp:
        lake = Lake(f"{tmp}/lake")
        write_corpus(lake, vecs, args.shard)
        del vecs
        flat = measure(lake, "flat", args, queries, targets)
        ivf = measure(lake, "ivf", args, queries, targets)
    print(f"{args.docs:,} documents in {-(-args.docs // args.shard)} shards, {args.queries:,} queries; "
          f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20:.2f} GiB")
    print("| index | build s | size MB | search ms/query | recall@1 of the target | recall@1 vs exact (build) |")
    print("|---|---|---|---|---|---|")
    for name, r in (("flat", flat), (f"ivf ({ivf['nlist']} lists, nprobe {ivf['nprobe']})", ivf)):
        print(f"| {name} | {r['build_s']:.1f} | {r['bytes'] / 2**20:.1f} | {r['search_ms']:.3f} | {r['target_recall']:.3f} | "
              f"{r.get('recall_at_1', 1.0):.3f} |")
    print(f"ratio ivf / flat: size {ivf['bytes'] / flat['bytes']:.2f}, search time {ivf['search_ms'] / flat['search_ms']:.2f}, "
          f"target recall {ivf['target_recall'] / max(flat['target_recall'], 1e-9):.3f}")


if __name__ == "__main__":
    main()
