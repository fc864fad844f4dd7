"""Every bench runs in its small mode (same code path, tiny sizes), so a refactor cannot break
one unseen; each must print its ratio lines. The benches join the session's Ray and Prefect
server (those that start a Ray of their own, to measure its CPUs, still do); the engine
benches find the session's engine pool loaded there (bench/engines.py), and the one that
measures `vllm serve` is given the session's server. What a smoke proves is the code path and
the ratio lines, not the speed. The others run side by side, `AT_ONCE` at a time (much of
such a smoke is waiting: a process starting, a Ray task scheduled); the engine benches run one
after another once the others are done. Measured on 2 cores: a vLLM engine on the CPU whose
cores other processes also use wastes much of its time waiting on its own threads, and the
smokes all side by side took 450 to 490 s and 900 core-seconds, against 435 s and 555 one at a
time. Each test waits for its own bench and checks its output; the run's summary lists the
seconds of each."""

import subprocess
import sys
import time
from concurrent.futures import Future, ThreadPoolExecutor, wait
from pathlib import Path

import pytest

from tests.conftest import SUMMARY

BENCH = Path(__file__).resolve().parents[2] / "bench"

# script -> lines its output must contain
EXPECTED = {
    "crawl_throughput.py": ["ratio requests/s / politeness ceiling", "ratio crawler / bare httpx"],
    "decision_scale.py": ["| decision (3,000 queries) |", "| mapped | ", "| in memory | ", "same verdicts in both modes: True",
                          "ratio mapped / in memory: anonymous peak"],
    "dedup_scale.py": ["ratio exact (extrapolated from the subset", "ratio time / 300s target"],
    "engine_overhead.py": ["overhead per request over the bare client"],
    "ingest_throughput.py": ["ratio synthq / trafilatura per core"],
    "method_profiles.py": ["ratio paper / default: schema-valid share", "default model-free drops", "paper model-free drops"],
    "llm_cache.py": ["| partitions | ", "| one file per answer | ", "ratio files per answer", "ratio lookup time"],
    "near_dup.py": ["ratio vectorised / datasketch", "memory: driver RSS"],
    "extraction_quality.py": ["mean F1: plain trafilatura.extract", "ratio"],
    "factory_scale.py": ["curate.checks.enabled=false and attribute.min_retrieval_score=-1", "| stage (20 docs) |", "| shard peak MiB |", ", shard peak ",
                         "| synthesize | ", "Prefect task runs", "ratio attribute: time", "ratio publish: time"],
    # DataTrove's side runs where its environment was installed by a full run (the smoke never installs it)
    "peer_ingest.py": ["synthq ingest_flow:", "pages/s per core", "extraction F1 on 3 held-out news pages"],
    "release_index.py": ["| release index (6,000 rows) |", "| segments | ", "| one index | ", "ratio segments / one index: last add's memory"],
    "retrieval_index.py": ["| flat | ", "| ivf (", "ratio ivf / flat: size", "| ivf | mapped | ", "ratio mapped / in memory (ivf): node memory"],
    "train_eval.py": ["ratio synthq / bare: training tokens/s", "identical scores: True"],
    "topic_scale.py": ["| tightness | ", "| same picks | | True |", "ratio plain greedy (extrapolated", "ratio two levels / flat (subset, nested): tightness", "ratio flat (extrapolated from the subset, "],
    "retrieval_recall.py": ["| dense | ", "| bm25 | ", "| hybrid | ", "ratio hybrid / dense recall@1", "best: "],
}
ENGINE = {
    "engine_batching.py": ["ratio batched / one after another: output tok/s", "sent at once, batched", "engine batches"],
    "synth_throughput.py": ["ratio stage / bare (output tokens/s)", "tokens per instruction"],
    "prefix_grouping.py": ["grouped vs per document: prompt tok/s", "grouped vs shuffled"],
    "openai_vs_inprocess.py": ["openai engine -> vllm serve", "in-process engine", "outputs against the schema: openai engine"],
    "respond_throughput.py": ["ratio stage / bare (output tokens/s)", "ratio n-in-one / n requests: prefill tokens",
                              "  expert ", "  answer ", "  judge "],
}


AT_ONCE = 2  # smokes other than the engine benches running at once
# the longest smokes start first, so that the others fill the lanes around them instead of
# leaving them to run last, alone
LONGEST = ("factory_scale.py", "train_eval.py", "method_profiles.py", "ingest_throughput.py", "peer_ingest.py")


def _smoke(script: str, *args: str, env: dict | None = None, after: list[Future] = ()) -> subprocess.CompletedProcess:
    wait(after)
    start = time.monotonic()
    done = subprocess.run([sys.executable, str(BENCH / script), "--smoke", *args], capture_output=True, text=True, timeout=1200,
                          cwd=BENCH, env=env)
    SUMMARY.setdefault("bench smokes: seconds each", []).append(f"{time.monotonic() - start:8.1f}s  {script}")
    return done


def _selected(request, test: str) -> list[str]:
    """The scripts of `test` that this session runs (after -k, -m and node ids)."""
    return [item.callspec.params["script"] for item in request.session.items
            if item.module is request.module and item.originalname == test]


@pytest.fixture(scope="module")
def smokes(request, session_env):
    """Every selected smoke: the others on AT_ONCE lanes at once, while the session's engine and
    server load; then the engine benches in one lane, alone. Yields {script: Future of its
    finished process}."""
    started: dict[str, Future] = {}
    engine_scripts = _selected(request, "test_engine_bench_smoke")
    with ThreadPoolExecutor(AT_ONCE) as others, ThreadPoolExecutor(1) as engine_lane:
        for script in sorted(_selected(request, "test_bench_smoke"), key=lambda s: (s not in LONGEST, LONGEST.index(s) if s in LONGEST else 0)):
            started[script] = others.submit(_smoke, script, env=session_env)
        if engine_scripts:
            request.getfixturevalue("engine")
            server = request.getfixturevalue("vllm_server")
            before = list(started.values())
            for script in engine_scripts:
                extra = ["--server", server] if script == "openai_vs_inprocess.py" else []
                started[script] = engine_lane.submit(_smoke, script, *extra, env=session_env, after=before)
        yield started
        for future in started.values():
            future.cancel()  # a failed test ends the module: nothing still queued runs


def _check(done: subprocess.CompletedProcess, lines: list[str]) -> None:
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    for line in lines:
        assert line in done.stdout, done.stdout[-2000:]


def test_every_bench_has_a_smoke_test():
    helpers = {"smoke.py", "engines.py"}
    assert {p.name for p in BENCH.glob("*.py") if p.name not in helpers} == set(EXPECTED) | set(ENGINE)


@pytest.mark.parametrize("script", sorted(EXPECTED))
def test_bench_smoke(script, smokes):
    _check(smokes[script].result(), EXPECTED[script])


@pytest.mark.slow
@pytest.mark.parametrize("script", sorted(ENGINE))
def test_engine_bench_smoke(script, smokes):
    _check(smokes[script].result(), ENGINE[script])
