"""Shared fixtures: one local Ray, one real vLLM engine, one `vllm serve` and one Prefect test
server per session, and an environment with which subprocesses (benches, the CLI) join them.

The bundled model is loaded into vLLM once for the in-process engine and once for the server;
every load, in any process, adds a line to the file SYNTHQ_MODEL_LOAD_LOG names, and the run's
summary counts them.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import sys
import tempfile
from pathlib import Path

import pytest

os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
# set before Ray starts, so that every worker, actor and subprocess inherits it
if "SYNTHQ_MODEL_LOAD_LOG" not in os.environ:
    os.environ["SYNTHQ_MODEL_LOAD_LOG"] = tempfile.mkstemp(prefix="synthq-model-loads-", suffix=".log")[1]
MODEL_LOADS = Path(os.environ["SYNTHQ_MODEL_LOAD_LOG"])

CHECKOUT = Path(__file__).resolve().parents[1]
_installed = importlib.util.find_spec("synthq.tasks") if importlib.util.find_spec("synthq") else None
if _installed is None or Path(_installed.origin).resolve().parent != CHECKOUT / "tasks":
    # the tests, their Ray workers and the `synthq` command import synthq from the environment's
    # install: from another folder (or not at all), they would run other code than this checkout's
    where = f"comes from {Path(_installed.origin).parent.parent}" if _installed else "is not installed"
    pytest.exit(f"synthq.tasks in {sys.prefix} {where}; the tests run this checkout's ({CHECKOUT}): run `make test` "
                f"here, or `pip install -e {CHECKOUT} --no-deps` into that environment first.", returncode=4)

from synthq.tasks.sample import PAGES, SEEDS  # noqa: E402


@pytest.fixture(scope="session")
def ray_local():
    import ray

    if not ray.is_initialized():
        ray.init(address="local", num_cpus=int(os.environ.get("SYNTHQ_TEST_RAY_CPUS", "4")), include_dashboard=False, log_to_driver=False, configure_logging=False)
    yield
    ray.shutdown()


@pytest.fixture(scope="session")
def engine(ray_local):
    """The real engine (bundled model on vLLM) in its Ray actor, shared by every test and flow."""
    from synthq.tasks.core.config import EngineConfig
    from synthq.tasks.llm.ray_engine import engine_actor

    eng = engine_actor(EngineConfig())
    eng.wait_ready()
    return eng


@pytest.fixture(scope="session")
def vllm_server(tmp_path_factory):
    """One `vllm serve` of the bundled model (the engine's default settings) for every test that
    needs an OpenAI-compatible server on the real engine; yields its base URL."""
    from synthq.tasks.core.config import EngineConfig
    from synthq.tasks.llm.serve import local_server

    cfg = EngineConfig(kv_cache_gib=1)
    with local_server(cfg, tmp_path_factory.mktemp("vllm") / "serve.log", served_name="smollm2") as url:
        yield url


@pytest.fixture(scope="session")
def prefect_server():
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield


@pytest.fixture(scope="session")
def session_env(prefect_server, ray_local) -> dict[str, str]:
    """Environment for a subprocess that joins this session: its Ray (and so the engine pool,
    found by name, once the `engine` fixture has loaded it) and its Prefect server, instead of
    starting its own of each."""
    import ray
    from prefect.settings import PREFECT_API_URL

    return {**os.environ, "RAY_ADDRESS": ray.get_runtime_context().gcs_address, "PREFECT_API_URL": PREFECT_API_URL.value()}


@pytest.fixture
def lake_dir(tmp_path) -> str:
    return str(tmp_path / "lake")


SUBSET = [
    "01-sourdough-starter.html",
    "02-python-comprehensions-generators.html",
    "05-git-rebase-vs-merge.html",
    "08-budgeting-50-30-20.html",
    "16-exposure-triangle.html",
    "29-intro-linear-regression.html",
    "37-login-wall.html",
    "38-mirror-sourdough.html",
]


@pytest.fixture
def sample_subset(tmp_path) -> tuple[Path, Path]:
    """A few sample pages (with the login wall and the mirror) and seeds with two bad lines."""
    pages = tmp_path / "pages"
    pages.mkdir()
    for name in SUBSET:
        shutil.copy(PAGES / name, pages / name)
    seeds = tmp_path / "seeds.jsonl"
    lines = SEEDS.read_text().splitlines()[:5] + ["{not json", '{"id": "seed-x", "prompt": ""}']
    seeds.write_text("\n".join(lines) + "\n")
    return pages, seeds


# --- where the time goes: every run ends with the time of each test file -------------------

_FILE_SECONDS: dict[str, float] = {}
_FILE_CPU: dict[str, list[float]] = {}  # path -> [busy, idle] core-seconds of the whole machine
# more sections for the run's summary: a test adds its lines under a title of its own
SUMMARY: dict[str, list[str]] = {}


def _machine_cpu() -> tuple[float, float]:
    """Busy and idle core-seconds of the whole machine since boot (every process: Ray workers,
    servers, subprocesses), from /proc/stat; zeros where there is none."""
    try:
        with open("/proc/stat") as f:
            user, nice, system, idle, iowait, irq, softirq = map(int, f.readline().split()[1:8])
    except (OSError, ValueError):
        return 0.0, 0.0
    tick = os.sysconf("SC_CLK_TCK")
    return (user + nice + system + irq + softirq) / tick, (idle + iowait) / tick


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item, nextitem):
    before = _machine_cpu()
    try:
        return (yield)
    finally:
        after = _machine_cpu()
        spent = _FILE_CPU.setdefault(item.nodeid.split("::")[0], [0.0, 0.0])
        spent[0] += after[0] - before[0]
        spent[1] += after[1] - before[1]


def pytest_runtest_logreport(report):
    path = report.nodeid.split("::")[0]
    _FILE_SECONDS[path] = _FILE_SECONDS.get(path, 0.0) + report.duration


def pytest_terminal_summary(terminalreporter):
    """Seconds per test file (set-up, call and tear-down; a session fixture counts in the file
    that first asked for it), longest first, with the total and the share of the machine's
    cores left idle meanwhile (much idle: the file waits, on a process, a server, a timer);
    then the run's model loads."""
    if _FILE_SECONDS:
        terminalreporter.section("seconds per test file (and the machine's cores idle meanwhile)")
        for path, seconds in sorted(_FILE_SECONDS.items(), key=lambda kv: -kv[1]):
            busy, idle = _FILE_CPU.get(path, (0.0, 0.0))
            share = f"  {100 * idle / (busy + idle):3.0f}% idle" if busy + idle else ""
            terminalreporter.write_line(f"{seconds:8.1f}s{share}  {path}")
        terminalreporter.write_line(f"{sum(_FILE_SECONDS.values()):8.1f}s  in all ({len(_FILE_SECONDS)} files)")
    for title, lines in SUMMARY.items():
        terminalreporter.section(title)
        for line in lines:
            terminalreporter.write_line(line)
    loads = MODEL_LOADS.read_text().splitlines() if MODEL_LOADS.exists() else []
    terminalreporter.section(f"models loaded into vLLM: {len(loads)}")
    for line in loads:
        terminalreporter.write_line(line)
