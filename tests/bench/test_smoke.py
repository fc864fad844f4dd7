"""Benches run in their small mode (same code path, tiny sizes), so a refactor cannot break
one unseen; each must print its ratio lines."""

import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"


def _smoke(script: str) -> str:
    done = subprocess.run([sys.executable, str(BENCH / script), "--smoke"], capture_output=True, text=True, timeout=900, cwd=BENCH)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


@pytest.mark.slow
def test_respond_throughput_smoke():
    out = _smoke("respond_throughput.py")
    assert "ratio stage / bare (output tokens/s):" in out
    assert "ratio n-in-one / n requests: prefill tokens" in out
    for kind in ("expert", "answer", "judge"):
        assert f"  {kind}" in out
