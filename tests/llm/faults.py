"""A fault-injecting OpenAI-compatible endpoint for the tests: answers completions itself
(`Faulty`) or forwards them to a real server (`upstream`), failing a share of them with every
kind of fault a real endpoint shows. Bounded: it listens on loopback only and stops with its
fixture."""

from __future__ import annotations

import hashlib
import json
import random
import socket
import threading
import time
import urllib.request
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

FAULTS = ("500", "503", "429", "drop", "stall", "truncated", "not_json", "no_choices")


def value_for(schema: dict, defs: dict, salt: str = ""):
    """A value valid for a (pydantic-made) JSON schema: objects, arrays, strings, numbers, enums.
    Numbers depend on `salt` (the prompt), so different prompts get different scores."""
    if "$ref" in schema:
        return value_for(defs[schema["$ref"].rsplit("/", 1)[-1]], defs, salt)
    if "enum" in schema or "const" in schema:
        options = schema.get("enum") or [schema.get("const")]
        return options[_pick(salt, len(options))]
    for key in ("anyOf", "allOf"):
        if key in schema:
            return value_for(schema[key][0], defs, salt)
    kind = schema.get("type")
    if kind == "object":
        return {k: value_for(v, defs, salt + k) for k, v in schema.get("properties", {}).items()}
    if kind == "array":
        return [value_for(schema.get("items", {"type": "string"}), defs, salt) for _ in range(max(1, schema.get("minItems", 2)))][: schema.get("maxItems", 2)]
    if kind in ("integer", "number"):
        low, high = schema.get("minimum", 0), schema.get("maximum", schema.get("minimum", 0) + 1)
        return low + _pick(salt, int(high - low) + 1)
    if kind == "boolean":
        return True
    words = salt.split()  # words of the prompt from a place its hash picks: prompts differ, texts differ
    start = _pick(salt, max(1, len(words) - 24))
    text = "You are asked: " + " ".join(words[start : start + 24]) + "."
    return text[: schema.get("maxLength", len(text))]


def _pick(salt: str, n: int) -> int:
    return int(hashlib.sha256(salt.encode()).hexdigest(), 16) % max(1, n)


def completion(body: dict) -> dict:
    """A valid completion for the request: JSON valid for its schema, or free text."""
    user = body["messages"][-1]["content"]
    if "response_format" in body:
        schema = body["response_format"]["json_schema"]["schema"]
        content = json.dumps(value_for(schema, schema.get("$defs", {}), user))
    else:
        content = "answer to " + user
    choices = [{"index": k, "finish_reason": "stop", "message": {"role": "assistant", "content": content + (f" (take {k})" if k else "")}}
               for k in range(body.get("n", 1))]
    return {"id": "x", "object": "chat.completion", "created": 0, "model": body["model"], "choices": choices,
            "usage": {"prompt_tokens": 11, "completion_tokens": 7, "total_tokens": 18}}


class Faulty(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, rate: float = 0.3, faults: tuple[str, ...] = FAULTS, upstream: str | None = None,
                 stall_s: float = 20.0, seed: int = 0, script: list[str] | None = None, delay_s: float = 0.0,
                 keep: bool = True):
        super().__init__(("127.0.0.1", 0), _Handler)
        self.rate, self.faults, self.upstream, self.stall_s, self.delay_s = rate, faults, upstream, stall_s, delay_s
        self.rng, self.script, self.lock = random.Random(seed), list(script or []), threading.Lock()
        self.injected: Counter = Counter()
        self.served = 0
        self.bodies: list[dict] = []
        self.answered: list[dict] = []  # bodies of the requests answered
        self.headers_seen: list[str] = []
        self.keep = keep  # keep every request's body and headers (tests read them; a bench at scale must not)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/v1"

    def engine_settings(self) -> dict:
        """Config settings that point the factory's engine at this endpoint (the bundled model's tokenizer)."""
        from synthq.tasks.llm.models import resolve_model

        return {"engine.kind": "openai", "engine.base_url": self.url, "engine.model": "stub", "engine.tokenizer": resolve_model("bundled")}

    def next_fault(self) -> str | None:
        with self.lock:
            if self.script:
                fault = self.script.pop(0)
                return None if fault == "ok" else fault
            return self.rng.choice(self.faults) if self.rng.random() < self.rate else None

    def __enter__(self):
        threading.Thread(target=self.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc):
        self.shutdown()
        self.server_close()


class _Handler(BaseHTTPRequestHandler):
    server: Faulty

    def log_message(self, *args):
        pass

    def _send(self, status: int, data: bytes, headers: dict | None = None, length: int | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data) if length is None else length))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self):
        raw = self.rfile.read(int(self.headers["Content-Length"]))
        body = json.loads(raw)
        srv = self.server
        if srv.keep:
            with srv.lock:
                srv.bodies.append(body)
                srv.headers_seen.append(str(self.headers))
        fault = srv.next_fault()
        if fault:
            with srv.lock:
                srv.injected[fault] += 1
            return self._fail(fault)
        time.sleep(srv.delay_s)  # a slow model: leaves time to interrupt a run mid-stage
        data = self._answer(raw, body)
        with srv.lock:
            srv.served += 1
            if srv.keep:
                srv.answered.append(body)
        self._send(200, data)

    def _answer(self, raw: bytes, body: dict) -> bytes:
        if not self.server.upstream:
            return json.dumps(completion(body)).encode()
        req = urllib.request.Request(f"{self.server.upstream}/chat/completions", data=raw, headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=600) as resp:
            return resp.read()

    def _fail(self, fault: str) -> None:
        if fault in ("500", "503"):
            return self._send(int(fault), b'{"error": {"message": "unavailable"}}')
        if fault == "400":  # not a fault of the service: the request itself is refused
            return self._send(400, b'{"error": {"message": "prompt is too long"}}')
        if fault == "429":
            return self._send(429, b'{"error": {"message": "slow down"}}', {"Retry-After": "0.2"})
        if fault == "drop":
            self.connection.shutdown(socket.SHUT_RDWR)
            return None
        if fault == "stall":
            time.sleep(self.server.stall_s)
            return self._send(503, b"{}")
        if fault == "truncated":
            return self._send(200, b'{"id": "x", "choices": [{"ind', length=400)
        if fault == "not_json":
            return self._send(200, b"<html>Bad gateway</html>")
        if fault == "no_choices":
            return self._send(200, json.dumps({"id": "x", "object": "chat.completion", "created": 0, "model": "m", "choices": []}).encode())
        raise ValueError(fault)
