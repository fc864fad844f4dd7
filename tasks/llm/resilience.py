"""Talking to a service that fails: what a failure is, when to retry, how much to send.

- `classify` names a failed call's kind. Failures of the service (timeouts, 429, 5xx,
  dropped or cut connections, a 200 whose body is not a completion) are transient: retried
  with backoff, honouring Retry-After. A request the server refuses as such (400, 413, 422) is
  the request's own failure. Authentication and unknown-model errors are the configuration's.
- `Gate` bounds the requests in flight and adapts the bound (AIMD): halved on a timeout or a
  429, grown by one per window of successes, never above the configured maximum. It is also a
  circuit breaker: after `breaker_failures` transient failures in a row it opens and holds every
  request for a cool-down; when it has opened `breaker_opens` times without a success between,
  the endpoint is down and the remaining requests fail at once (their shard is retried later).
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from dataclasses import dataclass, field

PERMANENT_STATUS = (400, 413, 422)  # the request itself is refused: retrying sends the same
CONFIG_STATUS = (401, 403, 404)  # wrong key or model name: no request can succeed


@dataclass
class Failure:
    kind: str  # timeout, rate_limited, server_error, connection, bad_response, request_rejected, config
    transient: bool
    retry_after: float | None = None


def _retry_after(response) -> float | None:
    headers = getattr(response, "headers", None) or {}
    for name, scale in (("retry-after-ms", 0.001), ("retry-after", 1.0)):
        try:
            return float(headers[name]) * scale
        except (KeyError, TypeError, ValueError):
            continue
    return None


def classify(error: Exception) -> Failure:
    import openai

    if isinstance(error, openai.APITimeoutError):
        return Failure("timeout", True)
    if isinstance(error, openai.APIConnectionError):
        return Failure("connection", True)
    if isinstance(error, openai.APIStatusError):
        status = error.status_code
        if status == 429:
            return Failure("rate_limited", True, _retry_after(error.response))
        if status in PERMANENT_STATUS:
            return Failure("request_rejected", False)
        if status in CONFIG_STATUS:
            return Failure("config", False)
        return Failure("server_error", True, _retry_after(error.response))
    return Failure("bad_response", True)  # unparsable body, no choices, wrong types


def backoff(attempt: int, failure: Failure, cap: float = 30.0) -> float:
    """Exponential backoff with full jitter; a longer Retry-After wins (up to twice the cap)."""
    delay = random.uniform(0, min(cap, 0.5 * 2**attempt))
    return max(delay, min(failure.retry_after or 0.0, 2 * cap))


@dataclass
class Gate:
    max_inflight: int
    breaker_failures: int = 16
    breaker_cooldown_s: float = 10.0
    breaker_opens: int = 3
    limit: float = 0.0
    inflight: int = 0
    failures_in_a_row: int = 0
    opens_in_a_row: int = 0
    closed_at: float = 0.0  # the breaker holds requests until this time
    faults: Counter = field(default_factory=Counter)

    def __post_init__(self):
        self.limit = float(self.max_inflight)
        self._cond = asyncio.Condition()

    @property
    def down(self) -> bool:
        return self.opens_in_a_row >= self.breaker_opens

    async def enter(self) -> bool:
        """Wait for a slot (and for an open breaker); False when the endpoint is down."""
        async with self._cond:
            while True:
                if self.down:
                    return False
                wait = self.closed_at - time.monotonic()
                if wait <= 0 and self.inflight < max(1, int(self.limit)):
                    self.inflight += 1
                    return True
                try:
                    await asyncio.wait_for(self._cond.wait(), timeout=max(wait, 0.05) if wait > 0 else None)
                except asyncio.TimeoutError:
                    pass

    async def leave(self, failure: Failure | None) -> None:
        async with self._cond:
            self.inflight -= 1
            if failure is None:
                self.failures_in_a_row = self.opens_in_a_row = 0
                self.limit = min(self.max_inflight, self.limit + 1 / max(self.limit, 1))
            elif failure.transient:
                self.faults[failure.kind] += 1
                if failure.kind in ("timeout", "rate_limited"):
                    self.limit = max(1.0, self.limit / 2)
                self.failures_in_a_row += 1
                if self.failures_in_a_row >= self.breaker_failures:
                    self.failures_in_a_row = 0
                    self.opens_in_a_row += 1
                    self.closed_at = time.monotonic() + self.breaker_cooldown_s
                    self.faults["breaker_opened"] += 1
            self._cond.notify_all()
