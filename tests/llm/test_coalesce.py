"""Calls that arrive while the engine is busy go in together; each gets its own results."""

import threading
import time

import pytest

from synthq.tasks.llm.coalesce import Coalescer
from synthq.tasks.llm.engine import Request, Result


def _reqs(tag: str, n: int) -> list[Request]:
    return [Request(f"{tag}{i}", [{"role": "user", "content": f"{tag} {i}"}], None) for i in range(n)]


class SlowEngine:
    """Answers each request with its own id after a pause; fails a batch holding a 'bad' request."""

    def __init__(self, pause: float = 0.3):
        self.pause, self.batches = pause, []

    def generate(self, requests):
        self.batches.append([r.id for r in requests])
        time.sleep(self.pause)
        if any(r.id.startswith("bad") for r in requests):
            raise ValueError("prompt is too long")
        return [Result(r.id, f"answer {r.id}", "stop") for r in requests]


def _in_threads(batcher: Coalescer, calls: dict[str, list[Request]], stagger: float = 0.05) -> dict:
    out: dict = {}

    def one(tag, requests):
        try:
            out[tag] = [r.text for r in batcher.generate(requests)]
        except Exception as e:
            out[tag] = e

    threads = []
    for tag, requests in calls.items():
        threads.append(threading.Thread(target=one, args=(tag, requests)))
        threads[-1].start()
        time.sleep(stagger)  # the first call starts the engine; the others arrive while it is busy
    for t in threads:
        t.join()
    return out


def test_calls_that_wait_share_one_batch_and_get_their_own_results():
    engine = SlowEngine()
    batcher = Coalescer(engine.generate)
    out = _in_threads(batcher, {"a": _reqs("a", 2), "b": _reqs("b", 3), "c": _reqs("c", 1)})
    assert out == {"a": ["answer a0", "answer a1"], "b": ["answer b0", "answer b1", "answer b2"], "c": ["answer c0"]}
    assert engine.batches == [["a0", "a1"], ["b0", "b1", "b2", "c0"]]  # b and c waited for a, then went in together
    assert batcher.served == {"batches": 3, "requests": 6, "engine_batches": 2}


def test_a_failing_request_fails_only_its_own_call():
    engine = SlowEngine()
    batcher = Coalescer(engine.generate)
    out = _in_threads(batcher, {"a": _reqs("a", 1), "bad": _reqs("bad", 1), "c": _reqs("c", 2)})
    assert out["a"] == ["answer a0"] and out["c"] == ["answer c0", "answer c1"]
    assert isinstance(out["bad"], ValueError)
    assert engine.batches[1] == ["bad0", "c0", "c1"]  # merged, failed, then each call on its own
    assert engine.batches[2:] == [["bad0"], ["c0", "c1"]]


def test_exclusive_waits_for_the_running_batch():
    engine = SlowEngine(pause=0.4)
    batcher = Coalescer(engine.generate)
    worker = threading.Thread(target=batcher.generate, args=(_reqs("a", 1),))
    worker.start()
    time.sleep(0.1)
    start = time.perf_counter()
    with batcher.exclusive():
        waited = time.perf_counter() - start
        assert engine.batches == [["a0"]]
    worker.join()
    assert waited >= 0.2


def test_a_lone_failure_is_raised_to_its_caller():
    batcher = Coalescer(SlowEngine(pause=0).generate)
    with pytest.raises(ValueError, match="too long"):
        batcher.generate(_reqs("bad", 1))
    assert [r.text for r in batcher.generate(_reqs("a", 1))] == ["answer a0"]  # the engine is free again
