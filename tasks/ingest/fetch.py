"""Fetching one URL politely through the guarded network.

- `Politeness`: pacing per host (minimum delay between request starts, requests in flight)
  and the global cap on requests in flight.
- `Fetcher`: one URL with a deadline, retries with backoff, manual redirects and the caps of
  `synthq.tasks.ingest.netguard`; every failure is a `Refusal(reason, detail)`.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from urllib.parse import urlsplit

import httpx

from synthq.tasks.ingest.netguard import BlockedAddress, BoundedBody, TooLarge, UnresolvableHost, UnsupportedEncoding

class Politeness:
    """Pacing per host: at most `per_host` requests in flight, request starts at least
    `delay` seconds apart (raised by robots Crawl-delay, pushed back by Retry-After); and at
    most `concurrency` requests in flight over all hosts."""

    def __init__(self, concurrency: int, per_host: int, delay: float) -> None:
        self._in_flight = asyncio.Semaphore(concurrency)
        self._per_host, self._delay = per_host, delay
        self._hosts: dict[str, _HostPace] = {}

    def _pace(self, host: str) -> _HostPace:
        if host not in self._hosts:
            self._hosts[host] = _HostPace(asyncio.Semaphore(self._per_host), asyncio.Lock(), self._delay)
        return self._hosts[host]

    def slow_down(self, host: str, delay: float) -> None:
        pace = self._pace(host)
        pace.delay = max(pace.delay, delay)

    def defer(self, host: str, seconds: float) -> None:
        pace = self._pace(host)
        pace.not_before = max(pace.not_before, time.monotonic() + seconds)

    @asynccontextmanager
    async def slot(self, host: str):
        """Held while one request to the host is in flight. Yields `sent()`, to be called
        when the request leaves: the delay counts from then, so a slow connect does not
        shorten the gap the server sees."""
        pace = self._pace(host)
        async with pace.in_flight:
            async with pace.turn:  # one waiter at a time decides the next start
                while (wait := max(pace.last_start + pace.delay, pace.not_before) - time.monotonic()) > 0:
                    await asyncio.sleep(wait)
                await self._in_flight.acquire()
                pace.last_start = time.monotonic()
            try:
                yield pace.sent
            finally:
                self._in_flight.release()


@dataclass
class _HostPace:
    in_flight: asyncio.Semaphore
    turn: asyncio.Lock
    delay: float
    last_start: float = float("-inf")
    not_before: float = 0.0

    def sent(self) -> None:
        self.last_start = max(self.last_start, time.monotonic())


class Refusal(Exception):
    """Why a URL did not become a page: a rejection reason and a detail for people."""

    def __init__(self, reason: str, detail: str, status: int | None = None, url: str | None = None) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason, self.detail, self.status, self.url = reason, detail, status, url


class _Transient(Exception):
    """A connection failure worth retrying."""


@dataclass
class Fetched:
    url: str  # after redirects
    status: int
    headers: httpx.Headers
    body: bytes = b""
    retries: int = 0


REDIRECTS = (301, 302, 303, 307, 308)
MAX_BACKOFF_S = 30.0
MAX_RETRY_AFTER_S = 60.0  # a longer Retry-After ends the URL as http_error instead of stalling


def _is_transient(status: int) -> bool:
    return status == 429 or status >= 500


def retry_after_s(headers: httpx.Headers) -> float | None:
    """Seconds a Retry-After header asks for (delta seconds or an HTTP date)."""
    value = headers.get("retry-after", "").strip()
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, (parsedate_to_datetime(value) - datetime.now(timezone.utc)).total_seconds())
    except (TypeError, ValueError):
        return None


class Fetcher:
    """GET one URL through the guarded client: deadline per request, retries with
    exponential backoff and jitter on 429/5xx/connection errors, redirects followed by hand
    (each hop paced, checked and optionally vetted by `before_hop`), body caps."""

    def __init__(self, client: httpx.AsyncClient, politeness: Politeness, timeout_s: float,
                 retries: int, backoff_s: float, stats: dict) -> None:
        self.client, self.politeness, self.stats = client, politeness, stats
        self.timeout_s, self.retries, self.backoff_s = timeout_s, retries, backoff_s

    async def follow(self, url: str, *, accept: list[str] | None, max_bytes: int, max_redirects: int,
                     truncate: bool = False, before_hop: Callable[[str], Awaitable[None]] | None = None) -> Fetched:
        """The 2xx response at the end of the redirect chain, or a Refusal."""
        chain = [url]
        while True:
            try:
                if before_hop is not None:
                    await before_hop(url)
                got = await self.get(url, accept=accept, max_bytes=max_bytes, truncate=truncate)
            except Refusal as refusal:
                refusal.url = refusal.url or url
                raise
            if got.status not in REDIRECTS or "location" not in got.headers:
                return _successful(got)
            url = _redirect_target(got)
            if url in chain:
                raise Refusal("too_many_redirects", "redirect loop: " + " -> ".join([*chain, url]), url=url)
            if len(chain) > max_redirects:
                raise Refusal("too_many_redirects", f"more than {max_redirects} redirects from {chain[0]}", url=url)
            chain.append(url)

    async def get(self, url: str, *, accept: list[str] | None, max_bytes: int, truncate: bool = False) -> Fetched:
        """One URL (no redirects followed), retried while the failure looks temporary."""
        host = urlsplit(url).hostname or ""  # the pacing key, as the crawler spells hosts
        attempt = 0
        while True:
            try:
                got = await self._exchange(url, host, accept, max_bytes, truncate)
            except _Transient as exc:
                if attempt >= self.retries:
                    raise Refusal("connection_error", f"{exc}" + _after(attempt)) from None
                wait = self._backoff(attempt)
            else:
                got.retries = attempt
                pause = retry_after_s(got.headers) if _is_transient(got.status) else None
                if pause is not None:
                    self.politeness.defer(host, min(pause, MAX_RETRY_AFTER_S))
                if not _is_transient(got.status) or attempt >= self.retries or (pause or 0) > MAX_RETRY_AFTER_S:
                    return got
                wait = max(self._backoff(attempt), pause or 0)
            self.stats["retries"] += 1
            attempt += 1
            await asyncio.sleep(wait)

    def _backoff(self, attempt: int) -> float:
        return min(MAX_BACKOFF_S, self.backoff_s * 2**attempt) * random.uniform(0.5, 1.5)

    async def _exchange(self, url: str, host: str, accept: list[str] | None, max_bytes: int,
                        truncate: bool) -> Fetched:
        async with self.politeness.slot(host) as sent:
            self.stats["requests"] += 1

            async def trace(event: str, info: dict) -> None:
                if event.endswith("send_request_headers.started"):
                    sent()

            try:
                async with asyncio.timeout(self.timeout_s):
                    async with self.client.stream("GET", url, extensions={"trace": trace}) as response:
                        return await self._read(response, accept, max_bytes, truncate)
            except TimeoutError:
                raise Refusal("timeout", f"no complete response within {self.timeout_s}s") from None
            except httpx.TimeoutException as exc:
                raise Refusal("timeout", f"{type(exc).__name__} after {self.timeout_s}s") from None
            except BlockedAddress as exc:
                raise Refusal("private_address", str(exc)) from None
            except (httpx.InvalidURL, httpx.UnsupportedProtocol) as exc:
                raise Refusal("invalid_url", f"{url}: {exc}") from None
            except httpx.TransportError as exc:
                detail = f"{type(exc).__name__}: {exc or 'connection closed'}"
                if isinstance(exc.__cause__, UnresolvableHost):
                    raise Refusal("connection_error", detail) from None
                raise _Transient(detail) from None

    async def _read(self, response: httpx.Response, accept: list[str] | None, max_bytes: int,
                    truncate: bool) -> Fetched:
        got = Fetched(str(response.url), response.status_code, response.headers)
        if not 200 <= response.status_code < 300:
            await _drain_short(response)
            return got
        media = response.headers.get("content-type", "").partition(";")[0].strip().lower()
        if accept is not None and media and media not in accept:
            raise Refusal("bad_content_type", f"Content-Type {media} is not one of {', '.join(accept)}")
        declared = response.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > max_bytes and not truncate:
            raise Refusal("too_large", f"Content-Length {int(declared):,} bytes is over the {max_bytes:,}-byte cap")
        try:
            body = BoundedBody(response.headers.get("content-encoding", ""), max_bytes, truncate)
            async for chunk in response.aiter_raw():
                if not body.feed(chunk):
                    break
        except TooLarge as exc:
            raise Refusal("too_large", str(exc)) from None
        except UnsupportedEncoding as exc:
            raise Refusal("bad_content_type", str(exc)) from None
        except ValueError as exc:
            raise Refusal("connection_error", str(exc)) from None
        got.body = body.bytes()
        self.stats["bytes"] += len(got.body)
        return got


async def _drain_short(response: httpx.Response, limit: int = 64 * 1024) -> None:
    """Read (and drop) the body of an error or redirect when it is short, so the connection
    can carry the next request; a long or unknown-length one closes it instead."""
    length = response.headers.get("content-length", "")
    if length.isdigit() and int(length) <= limit:
        async for _ in response.aiter_raw():
            pass


def _after(retries: int) -> str:
    return f" (after {retries} retries)" if retries else ""


def _successful(got: Fetched) -> Fetched:
    if 200 <= got.status < 300:
        return got
    phrase = httpx.codes.get_reason_phrase(got.status)
    raise Refusal("http_error", f"HTTP {got.status} {phrase}".strip() + _after(got.retries), status=got.status)


def _redirect_target(got: Fetched) -> str:
    location = got.headers["location"]
    try:
        target = httpx.URL(got.url).join(location).copy_with(fragment=None)
    except (ValueError, httpx.InvalidURL) as exc:
        raise Refusal("invalid_url", f"redirect to an unusable location {location!r}: {exc}") from None
    if target.scheme not in ("http", "https"):
        raise Refusal("invalid_url", f"redirect to a non-http(s) location {location!r}")
    return str(target)
