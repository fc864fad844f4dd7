"""Crash safety: the whole factory (`synthq run`: driver, Prefect, Ray) killed with SIGKILL
during ingest, mid-attribution, mid-synthesis and during publish, rerun each time with the
same command. Finished shards stay untouched, no id is lost or doubled, and the release
equals an uninterrupted run's. The model is a local stub endpoint (instant, deterministic
answers), so what is tested is the factory, not the model."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pyarrow.parquet as pq
import pytest
import yaml

from synthq.tasks.core.lake import Lake
from synthq.tasks.llm.models import resolve_model
from tests.conftest import SUBSET
from synthq.tasks.sample import PAGES, SEEDS
from tests.llm.faults import Faulty

pytestmark = pytest.mark.slow
SYNTHQ = str(Path(sys.executable).parent / "synthq")
DATASETS = ("documents", "demonstrations", "instructions", "scored", "curated", "responses", "pairs")


def _config(tmp: Path, lake: Path, url: str) -> Path:
    pages, seeds = tmp / "pages", tmp / "seeds.jsonl"
    if not pages.exists():
        pages.mkdir()
        for name in SUBSET:
            (pages / name).write_bytes((PAGES / name).read_bytes())
        seeds.write_text("\n".join(SEEDS.read_text().splitlines()[:6]) + "\n")
    cfg = {
        "lake": str(lake), "shard_size": 2,
        "engine": {"kind": "openai", "base_url": url, "model": "stub", "tokenizer": resolve_model("bundled"), "max_retries": 2},
        "ingest": {"sources": [str(pages)]}, "attribute": {"seeds": str(seeds), "min_retrieval_score": 0.0},
        "curate": {"checks": {"enabled": False}},
    }
    path = tmp / f"{lake.name}.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def _start(config: Path, log: Path) -> subprocess.Popen:
    env = {**os.environ, "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}
    return subprocess.Popen([SYNTHQ, "run", "--config", str(config)], stdout=log.open("ab"), stderr=subprocess.STDOUT,
                            start_new_session=True, env=env)


def _kill_all(proc: subprocess.Popen) -> None:
    """SIGKILL the run and every process it started (Ray's, Prefect's), wherever they went."""
    family = [proc.pid] + [c.pid for c in psutil.Process(proc.pid).children(recursive=True)]
    for pid in family:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    proc.wait(timeout=30)
    psutil.wait_procs([p for p in map(_process, family) if p], timeout=30)


def _process(pid: int):
    try:
        return psutil.Process(pid)
    except psutil.NoSuchProcess:
        return None


def _finished(lake: Path, dataset: str) -> int:
    return len(list((lake / dataset / "_manifest").glob("*.json"))) if (lake / dataset / "_manifest").exists() else 0


POINTS = {  # where to kill: a condition on the lake, seen while the run goes on
    "during ingest": lambda lake: (lake / "documents" / "_manifest").exists() or (lake / "documents").exists(),
    "mid-attribution": lambda lake: _finished(lake, "demonstrations") >= 1,
    "mid-synthesis": lambda lake: _finished(lake, "instructions") >= 1,
    "during publish": lambda lake: (lake / "releases").exists(),
}


def _manifests(lake: Path) -> dict[tuple[str, str], tuple[str, float]]:
    out = {}
    for ds in DATASETS:
        for m in Lake(str(lake)).manifests(ds):
            out[(ds, m["shard"])] = (m["checksum"], m["finished_at"])
    return out


def _release(lake: Path) -> dict[str, list]:
    """The latest release's rows per subset (a kill after its folder was moved into place makes
    the rerun publish the same rows again as the next version)."""
    root = max((lake / "releases" / "synthq-instructions").glob("v*"), key=lambda p: int(p.name[1:]))
    return {sub: sorted(json.dumps(r, sort_keys=True, default=str) for r in pq.read_table(root / sub).to_pylist())
            for sub in ("data", "sft", "preferences")}


def test_sigkill_at_four_points_then_rerun_equals_an_uninterrupted_run(tmp_path, prefect_server, ray_local):
    """The uninterrupted reference runs the same flow with the same config in this session (its
    Ray and Prefect, already up); every killed run and the rerun are `synthq run` processes."""
    from synthq.flows.factory import factory_flow
    from synthq.tasks.core.config import load_config

    with Faulty(rate=0.0, delay_s=0.15) as srv:
        reference = tmp_path / "reference"
        factory_flow(load_config(str(_config(tmp_path, reference, srv.url))))
        lake = tmp_path / "lake"
        config, log = _config(tmp_path, lake, srv.url), tmp_path / "runs.log"
        seen = []
        for point, reached in POINTS.items():
            before = _manifests(lake)
            proc = _start(config, log)
            deadline = time.monotonic() + 600
            while not reached(lake) and proc.poll() is None and time.monotonic() < deadline:
                time.sleep(0.02)
            assert proc.poll() is None, f"the run ended before '{point}': {log.read_text()[-2000:]}"
            _kill_all(proc)
            seen.append(point)
            after = _manifests(lake)
            assert {k: v for k, v in after.items() if k in before} == before  # finished shards untouched
        proc = _start(config, log)
        assert proc.wait(timeout=900) == 0, log.read_text()[-3000:]
    assert seen == list(POINTS)
    for ds in DATASETS:
        ids = Lake(str(lake)).read(ds).column("id").to_pylist()
        assert len(ids) == len(set(ids)), ds  # nothing doubled
        ref = Lake(str(reference)).read(ds).column("id").to_pylist()
        assert sorted(ids) == sorted(ref), ds  # nothing lost
    assert _release(lake) == _release(reference)
