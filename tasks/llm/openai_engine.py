"""Engine for any OpenAI-compatible server: `vllm serve`, SGLang, llama.cpp, hosted APIs.

Requests go out concurrently, at most `max_concurrency` in flight (enough to keep a vLLM
server's batch full); the client retries 429/5xx/connection errors with backoff. The API key
is read from the environment variable the config names, never from the config itself.
"""

from __future__ import annotations

import asyncio
import os
import time

from tasks.core.config import EngineConfig
from tasks.core.errors import ConfigError
from tasks.llm.engine import Request, Result, sample_id


class OpenAIEngine:
    def __init__(self, cfg: EngineConfig):
        if not cfg.base_url:
            raise ConfigError("engine.kind=openai needs engine.base_url (e.g. http://localhost:8000/v1).")
        self.cfg = cfg
        self.model_name = cfg.model

    def _client(self):
        from openai import AsyncOpenAI

        return AsyncOpenAI(
            base_url=self.cfg.base_url,
            api_key=os.environ.get(self.cfg.api_key_env, "not-needed"),
            timeout=self.cfg.request_timeout_s,
            max_retries=self.cfg.max_retries,
        )

    async def _one(self, client, gate: asyncio.Semaphore, req: Request) -> Result:
        async with gate:
            start = time.perf_counter()
            extra = {"seed": req.sampling_seed()} if self.cfg.seed_per_request else {}
            if req.schema is not None:
                extra["response_format"] = {"type": "json_schema", "json_schema": {"name": "output", "schema": req.schema}}
            if req.n > 1:
                extra["n"] = req.n
            try:
                resp = await client.chat.completions.create(
                    model=self.cfg.model,
                    messages=req.messages,
                    max_tokens=req.max_tokens,
                    temperature=req.temperature,
                    frequency_penalty=req.frequency_penalty,
                    **extra,
                )
                return to_result(req, resp, time.perf_counter() - start)
            except Exception as e:  # every failure becomes a counted result, never a lost row
                return Result(req.id, "", None, error=f"{type(e).__name__}: {e}"[:500])

    async def _all(self, requests: list[Request]) -> list[Result]:
        gate = asyncio.Semaphore(self.cfg.max_concurrency)
        async with self._client() as client:
            return await asyncio.gather(*(self._one(client, gate, r) for r in requests))

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
