"""The OpenAI-compatible engine against an endpoint that fails: every fault kind is retried
and counted, a refused request is the request's own failure, a dead endpoint trips the
breaker, the API key never shows; and a stage shard fails (unfinished) rather than
quarantining rows the service never answered."""

import asyncio
import logging

import pytest

from synthq.tasks.attribute.outputs import SeedAnalysis
from synthq.tasks.core.config import EngineConfig, load_config
from synthq.tasks.shards.context import StageContext
from synthq.tasks.core.errors import ServiceError
from synthq.tasks.core.lake import Lake
from synthq.tasks.llm.engine import Request, complete, schema_for
from synthq.tasks.llm.openai_engine import OpenAIEngine
from synthq.tasks.llm.resilience import Failure, Gate
from tests.llm.faults import FAULTS, Faulty


def _engine(url: str, **kw) -> OpenAIEngine:
    cfg = dict(kind="openai", base_url=url, model="m", request_timeout_s=2.0, max_retries=6, breaker_cooldown_s=0.2, **kw)
    return OpenAIEngine(EngineConfig(**cfg))


def _reqs(n: int) -> list[Request]:
    return [Request(f"r{i}", [{"role": "user", "content": f"question {i}"}], schema_for(SeedAnalysis), 32, 0.0) for i in range(n)]


def test_every_fault_kind_is_retried_until_the_answer_comes(monkeypatch):
    monkeypatch.setattr("synthq.tasks.llm.resilience.random.uniform", lambda a, b: 0.01)  # keep backoff short
    script = [f for f in FAULTS for _ in (0,)]  # each fault once, then answers
    with Faulty(rate=0.0, stall_s=3.0, script=script) as srv:
        eng = _engine(srv.url)
        out = complete(eng, _reqs(12), SeedAnalysis)
    assert all(p.value is not None for p in out), [p.error for p in out if p.error]
    assert set(srv.injected) == set(FAULTS)
    kinds = {k.split(".")[0] for k in eng.faults if k.endswith(".retried")}
    assert kinds == {"server_error", "rate_limited", "connection", "timeout", "bad_response"}
    assert sum(v for k, v in eng.faults.items() if k.endswith(".retried")) == len(FAULTS)
    assert not [k for k in eng.faults if k.endswith(".failed")]


def test_a_refused_request_is_its_own_failure_and_the_key_never_shows(monkeypatch, caplog):
    monkeypatch.setenv("SYNTHQ_TEST_KEY", "sk-very-secret-42")
    caplog.set_level(logging.DEBUG)
    with Faulty(rate=0.0, script=["400", "400"]) as srv:
        eng = _engine(srv.url, api_key_env="SYNTHQ_TEST_KEY")
        out = complete(eng, _reqs(3), SeedAnalysis)
    assert all("Bearer sk-very-secret-42" in h for h in srv.headers_seen)  # the key is sent ...
    # ... a 400 is the request's own failure: quarantined as such, not retried
    assert sorted(p.reason or "ok" for p in out) == ["llm_request_rejected", "llm_request_rejected", "ok"]
    assert eng.faults["request_rejected.failed"] == 2 and eng.faults["request_rejected.retried"] == 0
    for p in out:  # ... and never shows in an error, a raw text or a log line
        assert "sk-very-secret-42" not in (p.error or "") + p.raw
    assert "sk-very-secret-42" not in caplog.text


def test_a_dead_endpoint_trips_the_breaker_and_fails_fast(monkeypatch):
    monkeypatch.setattr("synthq.tasks.llm.resilience.random.uniform", lambda a, b: 0.01)
    with Faulty(rate=1.0, faults=("503",)) as srv:
        eng = _engine(srv.url, max_concurrency=4, breaker_failures=4)
        out = eng.generate(_reqs(40))
    assert all(r.error for r in out)
    assert any("endpoint down" in r.error for r in out)
    assert eng.faults["breaker_opened"] >= 3
    assert sum(srv.injected.values()) < 40 * 7  # it stopped trying long before every retry was spent


def test_gate_halves_on_timeouts_and_grows_back():
    async def run():
        gate = Gate(max_inflight=16, breaker_failures=100)
        for _ in range(3):
            assert await gate.enter()
            await gate.leave(Failure("timeout", True))
        low = gate.limit
        for _ in range(200):
            assert await gate.enter()
            await gate.leave(None)
        return low, gate.limit

    low, high = asyncio.run(run())
    assert low == 2.0 and high == 16


def test_a_shard_with_service_failures_fails_instead_of_quarantining(lake_dir, monkeypatch):
    monkeypatch.setattr("synthq.tasks.llm.resilience.random.uniform", lambda a, b: 0.01)
    with Faulty(rate=1.0, faults=("500",)) as srv:
        cfg = load_config(None, {"lake": lake_dir, "engine.kind": "openai", "engine.base_url": srv.url, "engine.model": "m",
                                 "engine.max_retries": 1})
        ctx = StageContext(cfg=cfg, lake=Lake(lake_dir), engine=OpenAIEngine(cfg.engine))
        with pytest.raises(ServiceError, match="failed 3 of 3 requests after retries"):
            ctx.complete(_reqs(3), SeedAnalysis)
