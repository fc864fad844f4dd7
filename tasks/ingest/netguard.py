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
- `GuardedTransport`: the httpx transport over a connection pool on that backend.
- `BoundedBody`: decompresses a body while counting, so a gzip bomb stops at the cap.

Politeness and fetching (one URL with retries and redirects) live in `synthq.tasks.ingest.fetch`.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import ssl
import zlib
from collections.abc import Awaitable, Callable, Iterable
from contextlib import contextmanager
from dataclasses import dataclass, field

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


# httpcore's errors as the httpx errors callers catch (most specific first).
_ERRORS = (
    (httpcore.ConnectTimeout, httpx.ConnectTimeout), (httpcore.ReadTimeout, httpx.ReadTimeout),
    (httpcore.WriteTimeout, httpx.WriteTimeout), (httpcore.PoolTimeout, httpx.PoolTimeout),
    (httpcore.TimeoutException, httpx.TimeoutException), (httpcore.ConnectError, httpx.ConnectError),
    (httpcore.ReadError, httpx.ReadError), (httpcore.WriteError, httpx.WriteError),
    (httpcore.NetworkError, httpx.NetworkError), (httpcore.RemoteProtocolError, httpx.RemoteProtocolError),
    (httpcore.LocalProtocolError, httpx.LocalProtocolError), (httpcore.ProtocolError, httpx.ProtocolError),
    (httpcore.UnsupportedProtocol, httpx.UnsupportedProtocol),
)


@contextmanager
def _as_httpx_errors(request: httpx.Request):
    try:
        yield
    except httpcore.ProxyError as exc:  # a subclass of a transport error, named as it is
        raise httpx.ProxyError(str(exc), request=request) from exc
    except Exception as exc:
        mapped = next((theirs for ours, theirs in _ERRORS if isinstance(exc, ours)), None)
        if mapped is None:
            raise  # BlockedAddress and others: as raised, for the fetcher to name
        raise mapped(str(exc), request=request) from exc


class _Body(httpx.AsyncByteStream):
    def __init__(self, stream, request: httpx.Request) -> None:
        self._stream, self._request = stream, request

    async def __aiter__(self):
        with _as_httpx_errors(self._request):
            async for chunk in self._stream:
                yield chunk

    async def aclose(self) -> None:
        if hasattr(self._stream, "aclose"):
            await self._stream.aclose()


class GuardedTransport(httpx.AsyncBaseTransport):
    """An httpx transport (httpx's public extension point) over an httpcore connection pool
    whose every connection goes through `GuardedBackend`: no private attribute of httpx is
    touched, so an upgrade cannot silently take the address guard away."""

    def __init__(self, backend: GuardedBackend, ssl_context: ssl.SSLContext, max_connections: int) -> None:
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=ssl_context, max_connections=max_connections,
            max_keepalive_connections=max_connections, network_backend=backend,
        )

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        url = request.url
        core = httpcore.Request(
            method=request.method,
            url=httpcore.URL(scheme=url.raw_scheme, host=url.raw_host, port=url.port, target=url.raw_path),
            headers=request.headers.raw, content=request.stream, extensions=request.extensions,
        )
        with _as_httpx_errors(request):
            got = await self._pool.handle_async_request(core)
        return httpx.Response(got.status, headers=got.headers, stream=_Body(got.stream, request), extensions=got.extensions)

    async def aclose(self) -> None:
        await self._pool.aclose()


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


