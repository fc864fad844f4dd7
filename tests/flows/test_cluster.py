"""Cluster mode with real processes, the topology of docker-compose.yml on loopback: a Prefect
server with its database, a Ray head and a Ray worker node, a Prefect worker on the cluster.
The test deploys prefect.yaml with `synthq deploy`, starts a factory run through the Prefect
API with `synthq trigger` (as the UI's Run button does), waits for it and checks the release.
The model is a local stub endpoint (instant, schema-valid answers): what is tested is the
topology; the engine's Ray actors on the real model are tested by tests/flows/test_factory.py.
"""

from __future__ import annotations

import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from synthq.tasks.sample import PAGES, SEEDS
from tests.llm.faults import Faulty

pytestmark = pytest.mark.slow

BIN = Path(sys.executable).parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Processes:
    """Long-running processes in their own process groups, stopped together."""

    def __init__(self, logs: Path, env: dict):
        self.logs, self.env, self.procs = logs, env, []

    def start(self, name: str, *cmd: str) -> subprocess.Popen:
        log = open(self.logs / f"{name}.log", "w")
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=self.env, start_new_session=True)
        self.procs.append((name, proc))
        return proc

    def run(self, *cmd: str, timeout: float = 600) -> subprocess.CompletedProcess:
        return subprocess.run(cmd, env=self.env, capture_output=True, text=True, timeout=timeout)

    def stop(self) -> None:
        for _, proc in reversed(self.procs):
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for _, proc in reversed(self.procs):
            try:
                proc.wait(timeout=10)  # what has not stopped by then is killed: nothing of it is checked
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)

    def log(self, name: str) -> str:
        return (self.logs / f"{name}.log").read_text()


def _wait_for(check, what: str, procs: Processes, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        ended = [name for name, proc in procs.procs if proc.poll() is not None]
        if ended:
            raise AssertionError(f"{', '.join(ended)} ended while waiting for {what}; logs: {procs.logs}")
        time.sleep(1)
    raise AssertionError(f"{what} did not come up in {timeout:.0f}s; logs: {procs.logs}")


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as r:
            return r.status == 200
    except (OSError, http.client.HTTPException):  # not up yet, or another program answers on the port
        return False


@pytest.fixture
def cluster(tmp_path):
    api_port, ray_port = _free_port(), _free_port()
    api = f"http://127.0.0.1:{api_port}/api"
    env = {
        **os.environ,
        "PREFECT_HOME": str(tmp_path / "prefect"),  # the server's SQLite database lives here
        "PREFECT_API_URL": api,
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "RAY_ADDRESS": f"127.0.0.1:{ray_port}",  # what `ray start` on a worker machine makes "auto"
        "RAY_AUTH_MODE": "token",
        "RAY_AUTH_TOKEN": os.urandom(16).hex(),
    }
    logs = tmp_path / "logs"
    logs.mkdir()
    procs = Processes(logs, env)
    # Ray's own folder (short: it holds unix sockets), so the default /tmp/ray is left alone
    ray_tmp = tempfile.mkdtemp(prefix="synthq-ray-", dir="/tmp")
    ray_common = ("--temp-dir", ray_tmp, "--node-ip-address", "127.0.0.1", "--disable-usage-stats", "--object-store-memory", str(500 * 2**20), "--block")
    try:
        # the server holds its port before Ray starts: Ray binds further ports of its own choosing,
        # and one of them could take the server's port while the server is still starting
        procs.start("prefect-server", str(BIN / "prefect"), "server", "start", "--host", "127.0.0.1", "--port", str(api_port))
        _wait_for(lambda: _healthy(f"{api}/health"), "the Prefect server", procs)
        procs.start("ray-head", str(BIN / "ray"), "start", "--head", "--port", str(ray_port), "--num-cpus", "1", "--include-dashboard", "false", *ray_common)
        _wait_for(lambda: "Ray runtime started" in procs.log("ray-head"), "the Ray head", procs)
        procs.start("ray-worker", str(BIN / "ray"), "start", "--address", env["RAY_ADDRESS"], "--num-cpus", "2", *ray_common)
        _wait_for(lambda: "Ray runtime started" in procs.log("ray-worker"), "the Ray worker", procs)
        yield procs
    finally:
        procs.stop()
        shutil.rmtree(ray_tmp, ignore_errors=True)


def test_deploy_and_trigger_the_factory_on_a_ray_cluster(cluster, tmp_path):
    pages = tmp_path / "pages"
    pages.mkdir()
    for name in ("01-sourdough-starter.html", "02-python-comprehensions-generators.html", "08-budgeting-50-30-20.html"):
        shutil.copy(PAGES / name, pages / name)
    seeds = tmp_path / "seeds.jsonl"
    seeds.write_text("\n".join(SEEDS.read_text().splitlines()[:3]) + "\n")
    lake = tmp_path / "lake"

    deployed = cluster.run(str(BIN / "synthq"), "deploy")
    assert deployed.returncode == 0, deployed.stdout + deployed.stderr
    assert "factory/synthq" in deployed.stdout and "publish/synthq" in deployed.stdout

    described = cluster.run(str(BIN / "prefect"), "deployment", "inspect", "factory/synthq")
    assert "'limit': 1" in described.stdout and "ENQUEUE" in described.stdout  # never overlaps itself

    cluster.start("prefect-worker", str(BIN / "prefect"), "worker", "start", "--pool", "synthq")
    with Faulty(rate=0.0) as stub:
        overrides = {
            "lake": lake, "ingest.sources": pages, "attribute.seeds": seeds, "shard_size": 2,
            **stub.engine_settings(),
            # the stub's text would fail the cosine floor and the model-free checks (both tested on their own)
            "attribute.min_retrieval_score": 0.0, "curate.checks.enabled": "false",
        }
        params = [x for k, v in overrides.items() for x in ("--param", f"{k}={v}")]
        start = time.monotonic()
        run = cluster.run(str(BIN / "synthq"), "trigger", "factory", *params, "--wait", timeout=1500)
    print(f"factory run through the worker: {time.monotonic() - start:.0f}s\n{run.stdout}")
    assert run.returncode == 0, run.stdout + run.stderr + cluster.log("prefect-worker")[-4000:]
    assert "Completed" in run.stdout

    worker_log = cluster.log("prefect-worker")
    assert "joined the Ray cluster at" in worker_log and "2 node(s), 3 CPUs" in worker_log
    release = lake / "releases" / "synthq-instructions" / "v1"
    data = pq.read_table(release / "data")
    stats = json.loads((release / "stats.json").read_text())
    assert data.num_rows == stats["rows"] > 0
    assert all(u.startswith("https://") for u in data.column("document_url").to_pylist())

    bad = cluster.run(str(BIN / "synthq"), "trigger", "factory", "--param", "curate.min_score=9")
    assert bad.returncode == 2 and "min_score" in bad.stdout  # refused before reaching the server
