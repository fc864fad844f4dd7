"""Engine for any OpenAI-compatible server: `vllm serve`, SGLang, llama.cpp, hosted APIs.

Requests go out concurrently, at most `max_concurrency` in flight (enough to keep a vLLM
server's batch full), fewer while the server times out or rate-limits (see resilience.py).
Failures of the service are retried with backoff and Retry-After, and counted per kind in
`faults`; a request that still fails comes back with `error` set, which its stage treats as
the service's failure, never as bad output. The API key is read from the environment variable
the config names, never from the config itself, and never logged.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections import Counter

from synthq.tasks.core.config import EngineConfig
from synthq.tasks.core.errors import ConfigError
from synthq.tasks.llm.engine import Request, Result, sample_id
from synthq.tasks.llm.resilience import Gate, backoff, classify


class OpenAIEngine:
    def __init__(self, cfg: EngineConfig):
        if not cfg.base_url:
            raise ConfigError("engine.kind=openai needs engine.base_url (e.g. http://localhost:8000/v1).")
        self.cfg = cfg
        self.model_name = cfg.model
        self.faults: Counter = Counter()  # "<kind>.met", "<kind>.retried", "<kind>.failed"

    def _client(self):
        from openai import AsyncOpenAI

        return AsyncOpenAI(
            base_url=self.cfg.base_url,
            api_key=os.environ.get(self.cfg.api_key_env, "not-needed"),
            timeout=self.cfg.request_timeout_s,
            max_retries=0,  # retried here, where each failure is classified and counted
        )

    async def _call(self, client, req: Request) -> Result:
        extra = {"seed": req.sampling_seed()} if self.cfg.seed_per_request else {}
        if req.schema is not None:
            extra["response_format"] = {"type": "json_schema", "json_schema": {"name": "output", "schema": req.schema}}
        if req.n > 1:
            extra["n"] = req.n
        start = time.perf_counter()
        resp = await client.chat.completions.create(
            model=self.cfg.model,
            messages=req.messages,
            max_tokens=req.max_tokens,
            temperature=req.temperature,
            frequency_penalty=req.frequency_penalty,
            **extra,
        )
        return to_result(req, resp, time.perf_counter() - start)

    async def _one(self, client, gate: Gate, req: Request) -> Result:
        """One request, retried while the service fails; every outcome is a Result."""
        for attempt in range(self.cfg.max_retries + 1):
            if not await gate.enter():
                return Result(req.id, "", None, error=f"endpoint down: the circuit breaker opened {gate.breaker_opens} times in a row")
            try:
                result = await self._call(client, req)
            except Exception as e:  # every failure becomes a counted result, never a lost row
                failure = classify(e)
                await gate.leave(failure)
                self.faults[f"{failure.kind}.met"] += 1
                message = f"{failure.kind}: {type(e).__name__}: {e}"[:500]
                if failure.transient and attempt < self.cfg.max_retries:
                    self.faults[f"{failure.kind}.retried"] += 1
                    await asyncio.sleep(backoff(attempt, failure))
                    continue
                self.faults[f"{failure.kind}.failed"] += 1
                return Result(req.id, "", None, error=message, permanent=failure.kind == "request_rejected")
            await gate.leave(None)
            return result
        raise AssertionError("unreachable: the last attempt returns")

    async def _all(self, requests: list[Request]) -> list[Result]:
        gate = Gate(self.cfg.max_concurrency, self.cfg.breaker_failures, self.cfg.breaker_cooldown_s)
        async with self._client() as client:
            out = await asyncio.gather(*(self._one(client, gate, r) for r in requests))
        if gate.faults["breaker_opened"]:
            self.faults["breaker_opened"] += gate.faults["breaker_opened"]
        return out

    def generate(self, requests: list[Request]) -> list[Result]:
        return asyncio.run(self._all(requests))


def to_result(req: Request, resp, latency: float) -> Result:
    """The server's answer as a Result, one sample per choice (in choice order). A response
    without choices or messages raises, so it becomes this request's error."""
    choices = sorted(resp.choices or [], key=lambda c: c.index)
    if not choices:
        raise ValueError("the server's response has no choices")
    samples = [
        Result(sample_id(req.id, k), c.message.content or "", c.finish_reason, latency_s=latency)
        for k, c in enumerate(choices)
    ]
    first, usage = samples[0], resp.usage
    first.prompt_tokens = usage.prompt_tokens if usage else 0
    first.cached_tokens = cached_tokens(usage)
    # the server counts the completion tokens of all choices together: they are put on the first
    first.output_tokens = usage.completion_tokens if usage else 0
    first.more = samples[1:]
    return first


def cached_tokens(usage) -> int:
    """Prompt tokens the server took from its prefix cache, when it reports them (vLLM does
    with --enable-prompt-tokens-details)."""
    details = getattr(usage, "prompt_tokens_details", None) if usage else None
    return int(getattr(details, "cached_tokens", None) or 0)
