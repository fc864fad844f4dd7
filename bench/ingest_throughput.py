"""Ingest throughput: the factory's extraction and cleaning against bare trafilatura, per core,
and the same shards on 1 vs 2 Ray workers.

Pages: the bundled sample pages (real page chrome), copied N times into a temporary folder,
so every run reads real files from disk. No network.

Baseline, measured in the same run on the same files in the same process: read each file and
call `trafilatura.bare_extraction(html, with_metadata=True)`, the call that gives the main text
with its title, date and URL. Ingest gets the same text and the same three fields (a test
checks it) without trafilatura's other metadata searches. For scale, the text-only call
(`with_metadata=False`, no title, date or URL) is timed and compared too.
Then ingest's own shard function (`synthq.tasks.ingest.process.process`: unit reading, extraction,
language id, quality filters, MinHash signatures, Arrow tables) on the same files, one core.
Target: ratio >= 0.9. Last, the whole stage through `run_shard` on a local Ray with 1 and with
2 CPUs: pages/s and the speed-up.

    .venv/bin/python bench/ingest_throughput.py [--copies 10] [--shard 100]
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import trafilatura

import smoke

from synthq.tasks.core.config import FactoryConfig
from synthq.tasks.shards.context import StageContext
from synthq.tasks.core.lake import Lake
from synthq.tasks.shards.stage import run_shard
from synthq.tasks.ingest.process import STAGE_SPEC, process, shard_specs
from synthq.tasks.ingest.sources import plan
from synthq.tasks.sample import PAGES


def make_pages(folder: Path, copies: int) -> list[Path]:
    files = []
    for n in range(copies):
        for page in sorted(PAGES.glob("*.html")):
            target = folder / f"{n:03d}-{page.name}"
            shutil.copyfile(page, target)
            files.append(target)
    return files


def bare_trafilatura(files: list[Path], with_metadata: bool = True) -> float:
    start = time.perf_counter()
    for f in files:
        trafilatura.bare_extraction(f.read_bytes(), with_metadata=with_metadata)
    return len(files) / (time.perf_counter() - start)


def factory_one_core(folder: Path, lake: str) -> tuple[float, int]:
    cfg = FactoryConfig(lake=lake, shard_size=10**9, ingest={"sources": [str(folder)]})
    found = plan(cfg.ingest.sources, cfg.ingest, cfg.shard_size)
    ctx = StageContext(cfg=cfg, lake=Lake(lake))
    specs = shard_specs(found, [])
    start = time.perf_counter()
    kept = sum(process(spec.rows, ctx).kept.num_rows for spec in specs)
    pages = sum(spec.rows.num_rows for spec in specs)
    return pages / (time.perf_counter() - start), kept


def on_ray(folder: Path, lake: str, cpus: int, shard: int) -> float:
    import ray

    ray.init(address="local", num_cpus=cpus, include_dashboard=False, log_to_driver=False, configure_logging=False)
    try:
        cfg = FactoryConfig(lake=lake, shard_size=shard, ingest={"sources": [str(folder)]})
        specs = shard_specs(plan(cfg.ingest.sources, cfg.ingest, cfg.shard_size), [])
        remote = ray.remote(run_shard).options(num_cpus=1)
        # one shard per CPU at once, so every worker has its imports and models loaded
        ray.get([remote.remote(STAGE_SPEC, specs[0], cfg, None) for _ in range(cpus)])
        shutil.rmtree(lake, ignore_errors=True)
        start = time.perf_counter()
        rows = ray.get([remote.remote(STAGE_SPEC, s, cfg, None) for s in specs])
        elapsed = time.perf_counter() - start
        return sum(r["kept"] + r["rejected"] for r in rows) / elapsed
    finally:
        ray.shutdown()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--copies", type=int, default=20, help="copies of the 38 sample pages")
    ap.add_argument("--shard", type=int, default=100, help="pages per shard on Ray")
    args = smoke.parse(ap, copies=1, shard=19)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "pages"
        folder.mkdir()
        files = make_pages(folder, args.copies)
        kb = sum(f.stat().st_size for f in files) / len(files) / 1024
        print(f"{len(files)} pages, {kb:.0f} KB on average")
        factory_one_core(folder, f"{tmp}/warm")  # imports and the language model, outside the timing
        base = bare_trafilatura(files)
        text_only = bare_trafilatura(files, with_metadata=False)
        ours, kept = factory_one_core(folder, f"{tmp}/lake1")
        print(f"bare trafilatura (bare_extraction, metadata): {base:7.1f} pages/s")
        print(f"bare trafilatura, main text only (no title, date or URL): {text_only:7.1f} pages/s")
        print(f"synthq ingest, one core (+ language, quality, MinHash): {ours:7.1f} pages/s ({kept} kept)")
        print(f"ratio synthq / trafilatura per core: {ours / base:.2f}  (target >= 0.9); "
              f"against the text-only call: {ours / text_only:.2f}")
        one = on_ray(folder, f"{tmp}/lake2", 1, args.shard)
        two = on_ray(folder, f"{tmp}/lake3", 2, args.shard)
        print(f"Ray, 1 CPU: {one:7.1f} pages/s; 2 CPUs: {two:7.1f} pages/s; speed-up {two / one:.2f}x")


if __name__ == "__main__":
    main()
