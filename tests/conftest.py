"""Shared fixtures: one local Ray, one real vLLM engine and one Prefect test server per session."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")

from synthq.tasks.sample import PAGES, SEEDS  # noqa: E402


@pytest.fixture(scope="session")
def ray_local():
    import ray

    if not ray.is_initialized():
        ray.init(address="local", include_dashboard=False, log_to_driver=False, configure_logging=False)
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
def prefect_server():
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield


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
