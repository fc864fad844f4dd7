"""The OpenAI-compatible engine over real HTTP against a small local server written for the test."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tasks.attribute.outputs import SeedAnalysis
from tasks.core.config import EngineConfig
from tasks.core.errors import ConfigError
from tasks.llm.engine import Request, complete, schema_for
from tasks.llm.openai_engine import OpenAIEngine


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
        reply = {
            "id": "x", "object": "chat.completion", "created": 0, "model": body["model"],
            "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": content}}],
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
