"""The whole factory at N documents: what grows faster than the corpus.

Generates N plain-text documents (JSONL in the shape ingest reads: `text`, `title`, `url`),
sentences drawn from the bundled sample pages so they read as English prose of varied topic
and length, with planted exact and near duplicates (a few words changed); and S seeds made
from the bundled seed prompts. Then runs the real factory flow (`synthq.flows.factory.factory_flow`:
real Prefect on a fresh ephemeral server, real Ray, FAISS, the bundled embedder, Parquet)
against an instant OpenAI-compatible stub that answers every request with a valid object for
its JSON schema (`tests/llm/faults.py`, no faults): what is measured is everything but the model.

The stub's texts are words of the prompt, which the model-free query checks and the retrieval
cosine floor would mostly reject, so the bench sets `curate.checks.enabled=false` and
`attribute.min_retrieval_score=-1`: every stage carries full volume.

Per stage (from the Prefect flow runs of this run): input items, items/s, wall time, peak RSS
of the driver process and of the largest Ray worker (sampled every 0.2 s with psutil among
the driver's descendants; each size runs in a fresh driver process), and the number of Prefect
task runs. The Ray worker column is the largest worker while the stage ran, whatever it held
before; each stage's own memory is in the next columns: the largest peak of a worker while it
ran one of the stage's shards (the manifests' `memory`, measured from the shard's start), the
most a shard added to its worker's size, and the peak of the one-off steps that run in a
worker of their own (the retrieval index's build, curation's decision). With two sizes
(`--docs 2000,20000`) it prints the growth ratios of the larger run over the smaller, both
measured in this invocation: time ratio against the size ratio (linear means equal), and
peak RSS ratio (flat means 1).

    PYTHONPATH=. .venv/bin/python bench/factory_scale.py [--docs 2000,20000] [--seeds 1000]
"""

from __future__ import annotations

import argparse
import atexit
import json
import multiprocessing
import os
import random
import shutil
import sys
import tempfile
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT)]  # tests.llm.faults: the stub server the tests use
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "180")  # a busy shared machine starts it slowly
if "PREFECT_HOME" not in os.environ:  # a fresh ephemeral database, removed at exit (after Prefect's own exit hooks)
    os.environ["PREFECT_HOME"] = tempfile.mkdtemp(prefix="factory-scale-prefect-")
    atexit.register(shutil.rmtree, os.environ["PREFECT_HOME"], ignore_errors=True)

import psutil  # noqa: E402

import smoke  # noqa: E402

STAGES = ("ingest", "attribute", "synthesize", "curate", "respond", "publish")
WRITES = {"ingest": ("documents",), "attribute": ("demonstrations",), "synthesize": ("instructions",),
          "curate": ("scored", "curated"), "respond": ("responses", "pairs")}  # the shards a stage's tasks write
ONE_OFF = ("build_index", "decide_shards")  # the retrieval index and curation's decision: one Ray worker each
INPUT_OF = {"ingest": "documents", "attribute": "demonstrations", "synthesize": "instructions", "curate": "scored"}
# ^ the dataset whose kept + rejected rows count a stage's input items; respond and publish read the curated rows
UNFLOORED = {"curate.checks.enabled": False, "attribute.min_retrieval_score": -1.0}


# --- the corpus ----------------------------------------------------------------------------


def sentence_pool() -> list[str]:
    """Sentences of the bundled sample pages' main text (trafilatura), long enough to be prose."""
    import trafilatura

    from synthq.tasks.sample import PAGES

    out = []
    for page in sorted(PAGES.glob("*.html")):
        text = trafilatura.extract(page.read_text(encoding="utf-8", errors="replace")) or ""
        for part in text.replace("\n", " ").split(". "):
            words = part.split()
            if 6 <= len(words) <= 60:
                out.append(" ".join(words).rstrip(".") + ".")
    return sorted(set(out))


def document(rng: random.Random, pool: list[str]) -> str:
    """Paragraphs of sentences from the pool, 150 to 1,500 words: like a short web article."""
    sentences = rng.sample(pool, min(len(pool), rng.randint(8, 80)))
    paragraphs, step = [], rng.randint(3, 7)
    for i in range(0, len(sentences), step):
        paragraphs.append(" ".join(sentences[i : i + step]))
    return "\n\n".join(paragraphs)


def near_copy(rng: random.Random, text: str) -> str:
    """The same text with about 2% of its words replaced: a near duplicate, not an exact one."""
    words = text.split(" ")
    for i in rng.sample(range(len(words)), max(1, len(words) // 50)):
        words[i] = rng.choice(("indeed", "also", "often", "usually", "really"))
    return " ".join(words)


def write_corpus(folder: Path, n: int, seed: int = 0, dup_share: float = 0.03) -> dict:
    """n JSONL rows (in files of up to 10,000 lines), dup_share of them exact and as many near
    copies of earlier rows; returns the counts planted."""
    rng, pool = random.Random(seed), sentence_pool()
    folder.mkdir(parents=True, exist_ok=True)
    texts, planted = [], {"exact": 0, "near": 0}
    per_file, f = 10_000, None
    for i in range(n):
        roll = rng.random()
        if texts and roll < dup_share:
            text, planted["exact"] = rng.choice(texts), planted["exact"] + 1
        elif texts and roll < 2 * dup_share:
            text, planted["near"] = near_copy(rng, rng.choice(texts)), planted["near"] + 1
        else:
            text = document(rng, pool)
            if len(texts) < 5_000:  # the originals duplicates are drawn from
                texts.append(text)
        if i % per_file == 0:
            f = (folder / f"part-{i // per_file:04d}.jsonl").open("w", encoding="utf-8")
        title = " ".join(text.split()[: rng.randint(3, 8)])
        f.write(json.dumps({"url": f"https://bench.example/{i}", "title": title, "text": text}) + "\n")
        if i % per_file == per_file - 1 or i == n - 1:
            f.close()
    return planted


def write_seeds(path: Path, n: int, seed: int = 0) -> None:
    """n distinct seed prompts: the bundled seeds, each with a different situation added."""
    from synthq.tasks.sample import SEEDS

    base = [json.loads(line)["prompt"] for line in SEEDS.read_text().splitlines() if line.strip()]
    rng, pool = random.Random(seed), sentence_pool()
    with path.open("w", encoding="utf-8") as f:
        for i in range(n):
            f.write(json.dumps({"id": f"bench-seed-{i}", "prompt": f"{base[i % len(base)]}\n\nContext: {rng.choice(pool)} (case {i})"}) + "\n")


# --- measuring -----------------------------------------------------------------------------


class Sampler(threading.Thread):
    """RSS of the driver and of the largest Ray worker among its descendants, every 0.2 s; and
    of the workers running a one-off step (`ONE_OFF`: each in a worker of its own, which exits
    after it), told by the process title Ray gives a worker while it runs a task."""

    def __init__(self):
        super().__init__(daemon=True)
        self.me, self.samples, self.done = psutil.Process(), [], threading.Event()

    def run(self):
        while not self.done.wait(0.2):
            workers, one_off = 0, 0
            for child in self.me.children(recursive=True):
                try:
                    title = " ".join(child.cmdline())
                    if title.startswith("ray::"):
                        rss = child.memory_info().rss
                        workers = max(workers, rss)
                        if title.split()[0].removeprefix("ray::") in ONE_OFF:
                            one_off = max(one_off, rss)
                except psutil.Error:
                    continue
            self.samples.append((time.time(), self.me.memory_info().rss, workers, one_off))

    def peaks(self, start: float, end: float) -> tuple[float, float, float]:
        inside = [s for s in self.samples if start <= s[0] <= end] or self.samples[-1:]
        return tuple(max(s[k] for s in inside) / 2**20 for k in (1, 2, 3))


def flow_runs(since: float) -> dict[str, tuple[float, float, int]]:
    """Stage flow name -> (start, end, task runs) of the flow runs started after `since`."""
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        runs = {r.id: r for r in client.read_flow_runs(limit=200) if r.start_time and r.start_time.timestamp() >= since}
        flows = {r.flow_id: client.read_flow(r.flow_id).name for r in runs.values()}
        counts: dict = {}
        offset = 0
        while batch := client.read_task_runs(limit=200, offset=offset):
            for t in batch:
                counts[t.flow_run_id] = counts.get(t.flow_run_id, 0) + 1
            offset += len(batch)
    return {flows[r.flow_id]: (r.start_time.timestamp(), r.end_time.timestamp(), counts.get(run_id, 0))
            for run_id, r in runs.items() if flows[r.flow_id] in STAGES and r.end_time}


def one_run(n_docs: int, n_seeds: int, work: Path, overrides: dict) -> list[dict]:
    import ray

    from synthq.flows.factory import factory_flow
    from synthq.tasks.core.config import load_config
    from synthq.tasks.core.lake import Lake
    from synthq.tasks.core.report import shard_memory
    from synthq.tasks.llm.models import resolve_model
    from tests.llm.faults import Faulty

    corpus, seeds, lake_dir = work / "corpus", work / "seeds.jsonl", work / "lake"
    planted = write_corpus(corpus, n_docs)
    write_seeds(seeds, n_seeds)
    print(f"\n== {n_docs:,} documents ({planted['exact']} exact and {planted['near']} near duplicates planted), {n_seeds:,} seeds", flush=True)
    with Faulty(rate=0.0, keep=False) as stub:  # counts requests, keeps none: the driver's RSS is the factory's
        cfg = load_config(None, {
            "lake": str(lake_dir), "ingest.sources": str(corpus), "attribute.seeds": str(seeds),
            "engine.kind": "openai", "engine.base_url": stub.url, "engine.model": "stub",
            "engine.tokenizer": resolve_model("bundled"), **overrides,
        })
        sampler = Sampler()
        sampler.start()
        start = time.time()
        factory_flow(cfg)
        total = time.time() - start
        sampler.done.set()
        served = stub.served
    lake, runs, rows = Lake(str(lake_dir)), flow_runs(start - 1), []
    for stage in STAGES:
        t0, t1, tasks_ = runs.get(stage, (start, start, 0))
        if stage in ("respond", "publish"):
            items = lake.report("curated")["kept"]
        else:
            report = lake.report(INPUT_OF[stage])
            items = report["kept"] + report["rejected"]
        driver, worker, one_off = sampler.peaks(t0, t1)
        shard = [shard_memory(lake.manifests(d)) or {} for d in WRITES.get(stage, ())]
        rows.append({"stage": stage, "items": items, "wall": t1 - t0, "driver": driver, "worker": worker, "tasks": tasks_,
                     "shard_peak": max((m.get("peak_mib_max", 0) for m in shard), default=0),
                     "shard_added": max((m.get("added_mib_max", 0) for m in shard), default=0), "one_off": one_off})
    print(f"factory wall {total:.1f}s, stub answered {served:,} requests", flush=True)
    ray.shutdown()
    return rows


def table(rows: list[dict], n_docs: int) -> None:
    print(f"| stage ({n_docs:,} docs) | items | wall s | items/s | driver peak MiB | Ray worker peak MiB "
          "| shard peak MiB | shard added MiB | one-off step peak MiB | Prefect task runs |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        rate = r["items"] / r["wall"] if r["wall"] else 0.0
        print(f"| {r['stage']} | {r['items']:,} | {r['wall']:.1f} | {rate:,.1f} | {r['driver']:.0f} | {r['worker']:.0f} "
              f"| {r['shard_peak']:.0f} | {r['shard_added']:.0f} | {r['one_off']:.0f} | {r['tasks']} |")
    print("(shard peak: the largest peak of a shard's worker while it ran that shard, from the manifests; shard added: "
          "the most a shard added to its worker's size at its start; one-off step: the retrieval index's build and "
          "curation's decision, each in a worker of its own)")


def ratios(small: list[dict], big: list[dict], sizes: tuple[int, int]) -> None:
    size_ratio = sizes[1] / sizes[0]
    print(f"\ngrowth {sizes[1]:,} / {sizes[0]:,} documents (size ratio {size_ratio:.1f}x; time linear = {size_ratio:.1f}, RSS flat = 1.0)")
    for a, b in zip(small, big):
        time_ratio = b["wall"] / a["wall"] if a["wall"] else float("nan")
        flag = "  <- grows faster than the corpus" if time_ratio > 1.1 * size_ratio else ""
        own = "".join(f", {label} {b[key] / a[key]:.2f}x" for key, label in (("shard_peak", "shard peak"), ("one_off", "one-off step"))
                      if a[key] and b[key])
        print(f"ratio {a['stage']}: time {time_ratio:.1f}x, driver RSS {b['driver'] / a['driver']:.2f}x, "
              f"worker RSS {b['worker'] / max(a['worker'], 1):.2f}x{own}, task runs {b['tasks']}/{a['tasks']}{flag}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--docs", default="2000,20000", help="one size, or two separated by a comma for growth ratios")
    ap.add_argument("--seeds", type=int, default=1000)
    ap.add_argument("--shard-size", type=int, default=None, help="records per shard (default: the config's)")
    args = smoke.parse(ap, docs="10,20", seeds=4, shard_size=10)
    sizes = [int(s) for s in args.docs.split(",")][:2]
    print("curate.checks.enabled=false and attribute.min_retrieval_score=-1: the stub's texts would fail them, "
          "and every stage should carry full volume", flush=True)
    overrides = {**UNFLOORED, **({"shard_size": args.shard_size} if args.shard_size else {})}
    results = []
    for n in sizes:
        # each size in a fresh driver process: a process keeps the memory it peaked at, so a second
        # size run in the same process would start from the first one's peak
        with tempfile.TemporaryDirectory(prefix="factory-scale-") as tmp, \
                ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn")) as pool:
            results.append(pool.submit(one_run, n, args.seeds, Path(tmp), overrides).result())
        table(results[-1], n)
    if len(results) == 2:
        ratios(*results, sizes=(sizes[0], sizes[1]))


if __name__ == "__main__":
    main()
