"""Peers' own virtual environments, installed from the package registry on first use into
~/.cache/synthq/bench/peers, so synthq's pins stay as they are."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path.home() / ".cache" / "synthq" / "bench" / "peers"


def peer_python(folder: str, packages: list[str], install: bool) -> tuple[Path | None, str]:
    """The peer's interpreter, installing it when asked; (None, why) when it is not there."""
    env = ROOT / folder
    python = env / "bin" / "python"
    if not python.exists() and install:
        print(f"installing {' '.join(packages)} into {env} (once)", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(env)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", *packages], check=True)
    if not python.exists():
        return None, f"not installed in {env} (--smoke never installs a peer; run the bench once without --smoke)"
    return python, ""


def run_peer(python: Path, script: Path, *args: str, what: str, timeout: float = 3600) -> dict:
    """Run a peer's script in its environment; its last output line is one JSON object."""
    done = subprocess.run([str(python), str(script), *args], capture_output=True, text=True, timeout=timeout)
    if done.returncode:
        raise RuntimeError(f"{what} failed: {done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])
