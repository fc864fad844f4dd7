"""Attribution's retrieval index past its IVF threshold: size, build and search time, and
recall against exact search, through the stage's own `build_index` and `dense_search`.

Generates N unit vectors shaped like sentence embeddings (384 dims, clustered by topic; the
generator of dedup_scale.py) as the kept vectors of documents shards, so no text is embedded,
and queries that are noisy copies of sampled documents (each query's target is its document).
Baseline, measured in the same run: the flat (exact) index over the same vectors. Prints the
recall@1 the build measures itself (nearest other document, index vs exact) and the queries'
recall@1 of their target through each index.

Then what a node holds when `--workers` attribution workers load the index at once and search
it, each in its own process as Ray's workers are: the stage's `load_index` (memory-mapped:
the workers share the file's pages, the ids an Arrow array) against the baseline of each
worker deserializing the index into its own memory with a Python string per id, as the stage
did before, measured in the same run. A seed shard loads the index in its
`prepare`, so the load time is paid once per shard.

    .venv/bin/python bench/retrieval_index.py [--docs 200000] [--shard 10000] [--queries 1000] [--workers 2]
"""

from __future__ import annotations

import argparse
import io
import multiprocessing
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


def _status() -> dict[str, float]:
    """This process's private (anonymous) and file-backed resident memory, MiB."""
    with open("/proc/self/status") as f:
        return {k: int(v.split()[0]) / 1024 for k, v in (line.split(":", 1) for line in f) if k in ("RssAnon", "RssFile")}


def _worker(lake_url: str, how: str, queries: np.ndarray, out) -> None:
    """One attribution worker: load the index and its ids as `how` says, search every query,
    report what that added to its memory (the libraries are imported before it is measured)."""
    import json

    import faiss
    import pyarrow.parquet as pq

    lake = Lake(lake_url)
    folder = lake.path("indexes/documents")
    info = json.loads(lake.fs.cat_file(f"{folder}/index.json"))
    dense_search(faiss.IndexFlatIP(queries.shape[1]), queries[:1], 1)
    before = _status()
    start = time.perf_counter()
    if how == "mapped":
        index, _ = load_index(lake)
    else:  # the baseline: the index and a Python string per id in the worker's own memory
        index = faiss.deserialize_index(np.frombuffer(lake.fs.cat_file(f"{folder}/index.faiss"), dtype=np.uint8))
        if isinstance(index, faiss.IndexIVF):
            index.nprobe = info["nprobe"]
        _ = pq.read_table(f"{folder}/ids.parquet", filesystem=lake.fs).column("id").to_pylist()
    loaded = time.perf_counter() - start
    dense_search(index, queries, 1)
    after = _status()
    out.put({"load_s": loaded, "anon": after["RssAnon"] - before["RssAnon"], "file": after["RssFile"] - before["RssFile"]})


def node_memory(lake: Lake, workers: int, queries: np.ndarray) -> dict[str, dict]:
    """Per way of loading: the mean load time, each worker's private MiB, and the node's MiB
    (every worker's private memory plus the file pages they share, counted once)."""
    ctx = multiprocessing.get_context("spawn")
    out = {}
    for how in ("in memory", "mapped"):
        results = ctx.Queue()
        procs = [ctx.Process(target=_worker, args=(lake.url, how, queries, results)) for _ in range(workers)]
        for p in procs:
            p.start()
        got = [results.get(timeout=600) for _ in procs]
        for p in procs:
            p.join()
        out[how] = {"load_s": float(np.mean([g["load_s"] for g in got])), "private": max(g["anon"] for g in got),
                    "node": sum(g["anon"] for g in got) + max(g["file"] for g in got)}
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--docs", type=int, default=200_000)
    ap.add_argument("--shard", type=int, default=10_000, help="documents per shard (vectors file)")
    ap.add_argument("--queries", type=int, default=1_000)
    ap.add_argument("--nprobe", type=int, default=IndexConfig().nprobe)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--workers", type=int, default=2, help="attribution workers loading the index at once (processes)")
    args = smoke.parse(ap, docs=3_000, shard=1_000, queries=200)
    vecs, _ = corpus(args.docs, max(100, args.docs // 200), 0.0, args.seed)
    queries, targets = queries_for(vecs, args.queries, args.seed + 1)
    with tempfile.TemporaryDirectory() as tmp:
        lake = Lake(f"{tmp}/lake")
        write_corpus(lake, vecs, args.shard)
        del vecs
        flat = measure(lake, "flat", args, queries, targets)
        flat["node"] = node_memory(lake, args.workers, queries)
        ivf = measure(lake, "ivf", args, queries, targets)
        ivf["node"] = node_memory(lake, args.workers, queries)
    print(f"{args.docs:,} documents in {-(-args.docs // args.shard)} shards, {args.queries:,} queries; "
          f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20:.2f} GiB")
    print("| index | build s | size MB | search ms/query | recall@1 of the target | recall@1 vs exact (build) |")
    print("|---|---|---|---|---|---|")
    for name, r in (("flat", flat), (f"ivf ({ivf['nlist']} lists, nprobe {ivf['nprobe']})", ivf)):
        print(f"| {name} | {r['build_s']:.1f} | {r['bytes'] / 2**20:.1f} | {r['search_ms']:.3f} | {r['target_recall']:.3f} | "
              f"{r.get('recall_at_1', 1.0):.3f} |")
    print(f"ratio ivf / flat: size {ivf['bytes'] / flat['bytes']:.2f}, search time {ivf['search_ms'] / flat['search_ms']:.2f}, "
          f"target recall {ivf['target_recall'] / max(flat['target_recall'], 1e-9):.3f}")
    print(f"\n{args.workers} attribution workers loading the index at once, each in its own process "
          "(private: a worker's own memory after loading and searching; node: every worker's private memory plus the shared file pages once)")
    print("| index | loaded | load s per shard | private MiB per worker | node MiB |")
    print("|---|---|---|---|---|")
    for name, r in (("flat", flat), ("ivf", ivf)):
        for how, m in r["node"].items():
            print(f"| {name} | {how} | {m['load_s']:.3f} | {m['private']:.1f} | {m['node']:.1f} |")
    for name, r in (("flat", flat), ("ivf", ivf)):
        base, now = r["node"]["in memory"], r["node"]["mapped"]
        print(f"ratio mapped / in memory ({name}): node memory {now['node'] / max(base['node'], 1e-9):.2f}, "
              f"private per worker {now['private'] / max(base['private'], 1e-9):.2f}, load time {now['load_s'] / max(base['load_s'], 1e-9):.2f}")


if __name__ == "__main__":
    main()
