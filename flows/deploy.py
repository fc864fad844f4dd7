"""Deployments and triggers: what `synthq deploy` and `synthq trigger` do through the Prefect API.

`synthq deploy` creates the process work pool if it is missing and runs `prefect deploy --all`
on the clone's prefect.yaml. `synthq trigger` starts a deployment run as the UI's "Run" button
does, with the config overrides as the run's `config` parameter (only what is given: the
rest comes from the defaults where the flow runs).
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from prefect.client.orchestration import get_client
from prefect.client.schemas.actions import WorkPoolCreate
from prefect.exceptions import ObjectNotFound

from synthq.tasks.core.config import load_config, nested
from synthq.tasks.core.errors import ConfigError

ROOT = Path(__file__).resolve().parent.parent
POOL = "synthq"
DEPLOYMENT = "synthq"
FLOWS = ("factory", "ingest", "attribute", "synthesize", "curate", "respond", "publish", "evaluate", "scaling")


async def _ensure_pool(name: str) -> bool:
    async with get_client() as client:
        try:
            await client.read_work_pool(name)
            return False
        except ObjectNotFound:
            await client.create_work_pool(WorkPoolCreate(name=name, type="process"))
            return True


def deploy_all(pool: str = POOL) -> list[str]:
    """Create the work pool if needed, then `prefect deploy --all`; returns the deployment names."""
    if not (ROOT / "prefect.yaml").is_file():
        raise ConfigError(f"{ROOT} has no prefect.yaml: run `synthq deploy` from a clone of synthq.")
    created = asyncio.run(_ensure_pool(pool))
    prefect = Path(sys.executable).with_name("prefect")
    proc = subprocess.run(
        [str(prefect), "--no-prompt", "deploy", "--all"], cwd=ROOT, capture_output=True, text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    if proc.returncode != 0:
        raise ConfigError(f"prefect deploy failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
    return (["work pool 'synthq' created"] if created else []) + [f"{f}/{DEPLOYMENT}" for f in FLOWS]


def run_parameters(overrides: dict[str, Any]) -> dict[str, Any]:
    """The run's parameters: only the overridden keys, with their validated values; `release`
    (the evaluate flow's) as a parameter of its own.

    A bad key or value fails here, not in the worker; a single source becomes a list and "4"
    becomes 4, so the server's check against the flow's parameter schema agrees.
    """
    overrides = dict(overrides)
    release = overrides.pop("release", None)
    dumped = load_config(None, overrides).model_dump(mode="json")
    picked = {}
    for key in overrides:
        value: Any = dumped
        for part in key.split("."):
            value = value[part]
        picked[key] = value
    return {"config": nested(picked), **({"release": str(release)} if release is not None else {})}


def trigger(flow: str, overrides: dict[str, Any], wait: bool = False, timeout_s: float | None = None):
    """Start a run of `flow`'s deployment; returns the flow run (final state when waiting)."""
    if flow not in FLOWS:
        raise ConfigError(f"Unknown flow '{flow}': choose one of {', '.join(FLOWS)}.")
    parameters = run_parameters(overrides)
    from prefect.deployments import run_deployment

    try:
        return run_deployment(
            f"{flow}/{DEPLOYMENT}", parameters=parameters,
            timeout=(timeout_s if wait else 0), as_subflow=False,
        )
    except ObjectNotFound:
        raise ConfigError(f"No deployment {flow}/{DEPLOYMENT} on the Prefect server: run `synthq deploy` first.") from None
