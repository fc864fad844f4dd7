"""The OpenAI-compatible engine over real HTTP against a small local server written for the test."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from synthq.tasks.attribute.outputs import SeedAnalysis
from synthq.tasks.core.config import EngineConfig
from synthq.tasks.core.errors import ConfigError
from synthq.tasks.llm.engine import Request, complete, schema_for
from synthq.tasks.llm.openai_engine import OpenAIEngine


class Handler(BaseHTTPRequestHandler):
    calls: list[dict] = []
    fail_first = 0

    def log_message(self, *args):
        pass

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        Handler.calls.append({"body": body, "auth": self.headers.get("Authorization")})
        if Handler.fail_first > 0:
            Handler.fail_first -= 1
            self.send_response(503)
            self.end_headers()
            return
        user = body["messages"][-1]["content"]
        content = json.dumps({"intent": user[:20], "keywords": ["k1", "k2"]})
        if "response_format" not in body:  # free text: one distinct answer per choice
            content = "answer to " + user
        choices = [
            {"index": k, "finish_reason": "stop", "message": {"role": "assistant", "content": f"{content} #{k}" if k else content}}
            for k in range(body.get("n", 1))
        ]
        reply = {
            "id": "x", "object": "chat.completion", "created": 0, "model": body["model"],
            "choices": [] if "EMPTY" in user else choices,
            "usage": {"prompt_tokens": 11, "completion_tokens": 7, "total_tokens": 18, "prompt_tokens_details": {"cached_tokens": 4}},
        }
        data = json.dumps(reply).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


@pytest.fixture
def server():
    srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    Handler.calls, Handler.fail_first = [], 0
    yield f"http://127.0.0.1:{srv.server_address[1]}/v1"
    srv.shutdown()


def test_requests_carry_schema_and_key_and_retry_5xx(server, monkeypatch):
    monkeypatch.setenv("SYNTHQ_TEST_KEY", "secret-123")
    Handler.fail_first = 1
    eng = OpenAIEngine(EngineConfig(kind="openai", base_url=server, model="m", api_key_env="SYNTHQ_TEST_KEY"))
    reqs = [Request(f"r{i}", [{"role": "user", "content": f"question {i}"}], schema_for(SeedAnalysis)) for i in range(4)]
    out = complete(eng, reqs, SeedAnalysis)
    assert [o.value.intent for o in out] == [f"question {i}" for i in range(4)]
    assert out[0].usage == {"prompt_tokens": 11, "cached_tokens": 4, "output_tokens": 7}
    assert len(Handler.calls) == 5  # one 503, retried
    first = Handler.calls[-1]
    assert first["auth"] == "Bearer secret-123"
    assert first["body"]["response_format"]["json_schema"]["schema"]["properties"]["keywords"]["maxItems"] == 5
    assert {c["body"]["seed"] for c in Handler.calls[1:]} == {r.sampling_seed() for r in reqs}  # one seed per request


def test_no_per_request_seed_when_the_config_says_so(server):
    eng = OpenAIEngine(EngineConfig(kind="openai", base_url=server, model="m", seed_per_request=False))
    complete(eng, [Request("a", [{"role": "user", "content": "question a"}], schema_for(SeedAnalysis))], SeedAnalysis)
    assert "seed" not in Handler.calls[-1]["body"]


def test_unreachable_server_gives_counted_errors():
    eng = OpenAIEngine(EngineConfig(kind="openai", base_url="http://127.0.0.1:9/v1", model="m", max_retries=0))
    out = complete(eng, [Request("a", [{"role": "user", "content": "x"}], {})], SeedAnalysis)
    assert out[0].reason == "llm_error" and "Connection" in out[0].error


def test_openai_engine_needs_url():
    with pytest.raises(ConfigError, match="base_url"):
        OpenAIEngine(EngineConfig(kind="openai"))


def test_n_samples_in_one_request_and_free_text(server):
    eng = OpenAIEngine(EngineConfig(kind="openai", base_url=server, model="m", max_retries=0))
    out = eng.generate([Request("q", [{"role": "user", "content": "hello"}], None, 32, 0.8, n=3)])
    assert len(Handler.calls) == 1 and Handler.calls[0]["body"]["n"] == 3
    assert "response_format" not in Handler.calls[0]["body"]  # no schema: free text
    samples = out[0].samples()
    assert [s.id for s in samples] == ["q", "q#1", "q#2"]
    assert [s.text for s in samples] == ["answer to hello", "answer to hello #1", "answer to hello #2"]
    assert out[0].prompt_tokens == 11 and all(s.prompt_tokens == 0 for s in samples[1:])


def test_a_response_without_choices_fails_that_request_only(server):
    eng = OpenAIEngine(EngineConfig(kind="openai", base_url=server, model="m", max_retries=0))
    reqs = [Request(r, [{"role": "user", "content": t}], schema_for(SeedAnalysis)) for r, t in (("r1", "fine"), ("r2", "EMPTY please"), ("r3", "also fine"))]
    out = eng.generate(reqs)
    assert [r.error is None for r in out] == [True, False, True]
    assert "no choices" in out[1].error
