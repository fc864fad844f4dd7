"""The crawler's guarded way onto the network: one URL in, one checked response out.

- `is_public_address` / `AddressGuard`: the address policy. Private, loopback, link-local
  (cloud metadata at 169.254.169.254 included), reserved, multicast and unspecified
  addresses are refused, IPv6 ones too, and IPv4 addresses wrapped in IPv6 (mapped, NAT64,
  6to4) are judged by the IPv4 address inside.
- `GuardedBackend`: the httpcore network backend under the HTTP client. It resolves every
  host itself, refuses the connection when any address is not allowed, and connects to the
  address it checked: a DNS answer that changes between check and connect (DNS rebinding)
  never reaches another address. Redirect targets open new connections and are checked
  the same way.
- `BoundedBody`: decompresses a body while counting, so a gzip bomb stops at the cap.
- `Politeness`: pacing per host (minimum delay between request starts, requests in flight)
  and the global cap on requests in flight.
- `Fetcher`: one URL with a deadline, retries with backoff, manual redirects and the caps
  above; every failure is a `Refusal(reason, detail)`.
"""

from __future__ import annotations

import asyncio
import ipaddress
import random
import socket
import time
import zlib
from collections.abc import Awaitable, Callable, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from urllib.parse import urlsplit

import httpcore
import httpx

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], Awaitable[list[str]]]

_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_IETF_ASSIGNMENTS = ipaddress.ip_network("192.0.0.0/24")  # not all of it is in Python's private list


class BlockedAddress(Exception):
    """A host resolved to an address the crawler must not connect to."""


class UnresolvableHost(httpcore.ConnectError):
    """DNS has no address for the host (not worth retrying)."""


class TooLarge(Exception):
    """The body grew past the cap."""


class UnsupportedEncoding(Exception):
    """The body uses a Content-Encoding the crawler did not ask for."""


def _embedded_ipv4(addr: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address carries (mapped, NAT64, 6to4), if any."""
    if addr.ipv4_mapped:
        return addr.ipv4_mapped
    if addr in _NAT64:
        return ipaddress.IPv4Address(int(addr) & 0xFFFFFFFF)
    return addr.sixtofour


def is_public_address(address: str | IPAddress) -> bool:
    """True for a globally routable unicast address; False for anything a server-side
    request could abuse (private, loopback, link-local, reserved, multicast, unspecified)."""
    addr = ipaddress.ip_address(address.split("%")[0]) if isinstance(address, str) else address
    if isinstance(addr, ipaddress.IPv6Address) and (inner := _embedded_ipv4(addr)) is not None:
        return is_public_address(inner)
    flags = (addr.is_private, addr.is_loopback, addr.is_link_local, addr.is_reserved,
             addr.is_multicast, addr.is_unspecified)
    return addr.is_global and not any(flags) and addr not in _IETF_ASSIGNMENTS


@dataclass(frozen=True)
class AddressGuard:
    """The address policy of one crawl. `allowed_networks` lets chosen private networks
    through (an intranet) while everything else private stays refused."""

    allow_private: bool = False
    allowed_networks: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = field(default=())

    @classmethod
    def of(cls, allow_private: bool, allowed_networks: Iterable[str] = ()) -> AddressGuard:
        return cls(allow_private, tuple(ipaddress.ip_network(n, strict=False) for n in allowed_networks))

    def allows(self, address: str) -> bool:
        if self.allow_private:
            return True
        addr = ipaddress.ip_address(address.split("%")[0])
        return is_public_address(addr) or any(addr in net for net in self.allowed_networks)

    def check(self, host: str, addresses: list[str]) -> None:
        """Raise `BlockedAddress` unless every address of the host is allowed."""
        refused = [a for a in addresses if not self.allows(a)]
        if refused:
            shown = host if refused == [host] else f"{host} ({', '.join(refused)})"
            raise BlockedAddress(
                f"{shown} is a private, loopback, link-local or reserved address; "
                "refused (set ingest.crawl.allow_private to crawl such hosts)"
            )


async def resolve_host(host: str, port: int) -> list[str]:
    """Every address DNS gives for the host, in the resolver's order, without repeats."""
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise UnresolvableHost(f"cannot resolve host {host}: {exc.strerror}") from exc
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


class GuardedBackend(httpcore.AsyncNetworkBackend):
    """Resolve, check every address, then connect to a checked address (never re-resolve)."""

    def __init__(self, guard: AddressGuard, resolve: Resolver = resolve_host) -> None:
        self._guard = guard
        self._resolve = resolve
        self._inner = httpcore.AnyIOBackend()

    async def connect_tcp(self, host, port, timeout=None, local_address=None, socket_options=None):
        try:
            addresses = await asyncio.wait_for(self._resolve(host, port), timeout)
        except asyncio.TimeoutError as exc:
            raise httpcore.ConnectTimeout(f"resolving {host} took over {timeout}s") from exc
        if not addresses:
            raise UnresolvableHost(f"cannot resolve host {host}: no address")
        self._guard.check(host, addresses)
        failure: Exception | None = None
        for address in addresses:
            try:
                return await self._inner.connect_tcp(address, port, timeout, local_address, socket_options)
            except httpcore.ConnectError as exc:
                failure = exc
        raise failure

    async def connect_unix_socket(self, path, timeout=None, socket_options=None):
        raise BlockedAddress("unix sockets are never crawled")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


class BoundedBody:
    """Collects a response body decoded from its Content-Encoding (gzip, deflate or none),
    never holding more than `limit` decoded bytes. Over the limit it raises `TooLarge`, or
    with `truncate` keeps the first `limit` bytes and reports itself full."""

    def __init__(self, content_encoding: str, limit: int, truncate: bool = False) -> None:
        codings = [c.strip().lower() for c in content_encoding.split(",") if c.strip()]
        codings = [c for c in codings if c != "identity"]
        if len(codings) > 1 or (codings and codings[0] not in ("gzip", "x-gzip", "deflate")):
            raise UnsupportedEncoding(f"unsupported Content-Encoding {content_encoding!r}")
        self.coding = codings[0] if codings else ""
        self.limit, self.truncate, self.full = limit, truncate, False
        self._parts: list[bytes] = []
        self._size = 0
        self._inflater = zlib.decompressobj(16 + zlib.MAX_WBITS) if self.coding in ("gzip", "x-gzip") else None

    def feed(self, chunk: bytes) -> bool:
        """Add wire bytes; False once the body is full (truncate mode), so reading can stop."""
        if chunk and not self.full:
            if self._inflater is None and self.coding == "deflate":  # zlib-wrapped or raw: the first bytes tell
                self._inflater = zlib.decompressobj(zlib.MAX_WBITS if _is_zlib_stream(chunk) else -zlib.MAX_WBITS)
            if self._inflater is None:
                self._keep(chunk)
            else:
                self._inflate(chunk)
        return not self.full

    def _inflate(self, data: bytes) -> None:
        try:
            while data and not self.full and not self._inflater.eof:
                self._keep(self._inflater.decompress(data, self.limit - self._size + 1))
                data = self._inflater.unconsumed_tail
        except zlib.error as exc:
            raise ValueError(f"corrupt {self.coding} body: {exc}") from exc

    def _keep(self, out: bytes) -> None:
        room = self.limit - self._size
        if len(out) > room:
            if not self.truncate:
                raise TooLarge(f"body is over the {self.limit:,}-byte cap after decompression")
            out, self.full = out[:room], True
        self._parts.append(out)
        self._size += len(out)

    def bytes(self) -> bytes:
        return b"".join(self._parts)


def _is_zlib_stream(chunk: bytes) -> bool:
    """'deflate' should be zlib-wrapped; some servers send raw deflate instead."""
    return len(chunk) >= 2 and chunk[0] & 0x0F == 8 and (chunk[0] << 8 | chunk[1]) % 31 == 0


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
