"""The crawler's network guard: the address policy (SSRF), bounded decompression, pacing,
Retry-After, and the guard on real requests to loopback servers.

Addresses outside loopback are only ever judged, never contacted: the guard refuses them
before connecting, and the autouse `loopback_only` fixture fails any connection elsewhere."""

from __future__ import annotations

import asyncio
import gzip
import socket
import time
import zlib

import httpx
import pytest

from synthq.tasks.ingest.fetch import Politeness, retry_after_s
from synthq.tasks.ingest.netguard import AddressGuard, BlockedAddress, BoundedBody, TooLarge, UnsupportedEncoding, \
    is_public_address
from tests.ingest.sites import cfg, gzip_of_zeros, redirect, run, urls

REFUSED = [
    "10.0.0.1", "172.16.5.4", "192.168.1.1", "127.0.0.1", "127.9.9.9", "0.0.0.0", "169.254.169.254",
    "100.64.0.1", "192.0.0.8", "198.18.0.1", "224.0.0.251", "240.0.0.1", "255.255.255.255",
    "::1", "::", "fe80::1", "fe80::1%eth0", "fc00::1", "fd12:3456::1", "ff02::1", "2001:db8::1",
    "::ffff:127.0.0.1", "::ffff:10.0.0.1", "::ffff:169.254.169.254", "64:ff9b::a9fe:a9fe", "2002:a00:1::1",
]
PUBLIC = ["93.184.216.34", "8.8.8.8", "1.1.1.1", "2606:4700:4700::1111", "::ffff:93.184.216.34", "64:ff9b::808:808"]


@pytest.mark.parametrize("address", REFUSED)
def test_private_and_special_addresses_are_refused(address):
    assert not is_public_address(address)
    with pytest.raises(BlockedAddress, match="allow_private"):
        AddressGuard.of(False).check("some.host", [address])


@pytest.mark.parametrize("address", PUBLIC)
def test_public_addresses_pass(address):
    assert is_public_address(address)
    AddressGuard.of(False).check("some.host", [address])


def test_one_private_address_among_public_ones_refuses_the_host():
    with pytest.raises(BlockedAddress, match="10.0.0.1"):
        AddressGuard.of(False).check("mixed.example", ["93.184.216.34", "10.0.0.1"])


def test_allow_private_and_allowed_networks():
    AddressGuard.of(True).check("intranet", ["10.0.0.1", "::1", "169.254.169.254"])
    guard = AddressGuard.of(False, ["10.1.0.0/16"])
    guard.check("wiki.corp", ["10.1.2.3"])
    with pytest.raises(BlockedAddress):
        guard.check("other.corp", ["10.2.0.1"])


# -- bounded bodies


def test_gzip_bomb_stops_at_the_cap_without_inflating_it():
    bomb, body = gzip_of_zeros(), BoundedBody("gzip", limit=2**20)
    with pytest.raises(TooLarge, match="after decompression"):
        for start in range(0, len(bomb), 65536):  # 64 KB on the wire inflate to ~64 MB
            body.feed(bomb[start:start + 65536])
    assert sum(map(len, body._parts)) <= 2**20


def test_truncate_keeps_the_first_bytes():
    body = BoundedBody("gzip", limit=5000, truncate=True)
    assert body.feed(gzip.compress(b"a" * 20000)) is False and body.bytes() == b"a" * 5000


@pytest.mark.parametrize("encoding,encode", [
    ("", lambda b: b), ("identity", lambda b: b), ("x-gzip", gzip.compress),
    ("deflate", zlib.compress), ("deflate", lambda b: zlib.compress(b)[2:-4]),  # zlib-wrapped and raw
])
def test_encodings_decoded_in_chunks(encoding, encode):
    page = b"<p>" + b"hello crawler " * 2000 + b"</p>"
    wire = encode(page)
    body = BoundedBody(encoding, limit=len(page))
    for start in range(0, len(wire), 1000):
        assert body.feed(wire[start:start + 1000])
    assert body.bytes() == page


def test_unasked_encodings_and_corrupt_bodies():
    with pytest.raises(UnsupportedEncoding):
        BoundedBody("br", limit=1000)
    with pytest.raises(UnsupportedEncoding):
        BoundedBody("gzip, gzip", limit=1000)
    with pytest.raises(ValueError, match="corrupt gzip"):
        BoundedBody("gzip", limit=1000).feed(b"\x1f\x8b\x08\x00garbage-garbage-garbage")


# -- pacing and Retry-After


def test_retry_after_seconds_and_dates():
    assert retry_after_s(httpx.Headers({"Retry-After": "7"})) == 7
    assert retry_after_s(httpx.Headers({"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"})) == 0  # past
    assert retry_after_s(httpx.Headers({"Retry-After": "soon"})) is None
    assert retry_after_s(httpx.Headers({})) is None


def test_pacing_per_host_and_crawl_delay():
    async def starts(delays: dict[str, float]) -> dict[str, list[float]]:
        politeness = Politeness(concurrency=10, per_host=5, delay=0.05)
        for host, delay in delays.items():
            politeness.slow_down(host, delay)
        seen: dict[str, list[float]] = {}

        async def request(host: str) -> None:
            async with politeness.slot(host):
                seen.setdefault(host, []).append(time.monotonic())

        await asyncio.gather(*[request(h) for h in ("a", "b") * 4])
        return seen

    seen = asyncio.run(starts({"b": 0.1}))
    for host, delay in (("a", 0.05), ("b", 0.1)):
        assert min(y - x for x, y in zip(seen[host], seen[host][1:])) >= delay - 0.002


# -- the SSRF guard on real requests (refused before any connection)


def test_loopback_refused_unless_allowed(site_at):
    site = site_at("127.0.0.2")
    site.page("/")
    _, rejected, _ = run([site.url + "/", "http://[::1]:9/", "http://localhost:9/"], cfg(allow_private=False))
    assert {r["reason"] for r in rejected.values()} == {"private_address"}
    assert "allow_private" in rejected[site.url + "/"]["detail"] and site.log == []


def test_redirects_to_private_or_metadata_addresses_refused(site_at):
    public, private = site_at("127.0.0.2"), site_at("127.0.0.3")
    private.page("/")
    public.routes["/meta"] = redirect("http://169.254.169.254/latest/meta-data/")
    public.routes["/inside"] = redirect(private.url + "/")
    public.routes["/named"] = redirect("http://metadata.internal.test/computeMetadata/v1/")
    public.routes["/v6"] = redirect("http://[::ffff:127.0.0.3]:%d/" % private.server.server_port)
    public.routes["/mixed"] = redirect("http://mixed.test/")
    public.page("/fine")
    dns = {"metadata.internal.test": ["169.254.169.254"], "mixed.test": ["93.184.216.34", "10.0.0.1"]}

    async def resolver(host, port):
        return dns.get(host, [host.strip("[]")])

    seeds = [public.url + p for p in ("/meta", "/inside", "/named", "/v6", "/mixed", "/fine")]
    pages, rejected, _ = run(seeds, cfg(allow_private=False), allowed_networks=["127.0.0.2/32"], resolver=resolver)
    assert urls(pages) == {public.url + "/fine"}
    assert {r["reason"] for r in rejected.values()} == {"private_address"} and len(rejected) == 5
    assert "169.254.169.254" in rejected[public.url + "/named"]["detail"]
    assert "10.0.0.1" in rejected[public.url + "/mixed"]["detail"]
    assert private.log == []


def test_connection_goes_to_the_checked_address(site_at):
    """The crawler resolves once and connects to the address it checked: the OS resolver
    never sees the name (it could answer differently: DNS rebinding)."""
    site = site_at("127.0.0.2")
    site.page("/")
    calls = []

    async def resolver(host, port):
        calls.append(host)
        return ["127.0.0.2"] if host == "rebind.test" else [host]

    url = f"http://rebind.test:{site.server.server_port}/"
    pages, rejected, _ = run([url], cfg(allow_private=False), allowed_networks=["127.0.0.2/32"], resolver=resolver)
    assert urls(pages) == {url} and not rejected and "rebind.test" in calls


def test_a_dns_answer_that_changes_after_the_check_never_reaches_the_new_address(site_at, monkeypatch):
    """DNS rebinding: the name first resolves to an allowed address, then to a private one.
    Each new connection is checked again, and a connection goes to the address checked,
    never to what the system resolver would answer for the name at connect time."""
    good = site_at("127.0.0.2")
    port = good.server.server_port
    evil = site_at("127.0.0.3", port)  # the same port: only the address differs
    good.routes["/robots.txt"] = (200, {"Content-Type": "text/plain", "Connection": "close"}, b"User-agent: *\nAllow: /\n")
    good.page("/")
    evil.page("/")
    answers = iter([["127.0.0.2"]])
    calls = []

    async def resolver(host, port):
        calls.append(host)
        return next(answers, ["127.0.0.3"])

    real = socket.getaddrinfo

    def system_resolver(host, *args, **kwargs):  # what the OS would answer by now
        if host == "flip.test":
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.3", port))]
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", system_resolver)
    url = f"http://flip.test:{port}/"
    pages, rejected, _ = run([url], cfg(allow_private=False), allowed_networks=["127.0.0.2/32"], resolver=resolver)
    assert not pages and rejected[url]["reason"] == "private_address" and "127.0.0.3" in rejected[url]["detail"]
    assert good.paths() == ["/robots.txt"]  # the first connection went to the address checked
    assert evil.log == [] and calls == ["flip.test", "flip.test"]  # the second was checked again, and refused


def test_the_guard_holds_after_a_redirect_to_a_rebound_name(site_at):
    """A redirect opens a new connection to its target, resolved and checked like any other."""
    public = site_at("127.0.0.2")
    inside = site_at("127.0.0.3", public.server.server_port)
    inside.page("/admin")
    public.routes["/go"] = redirect(f"http://cdn.test:{public.server.server_port}/admin")

    async def resolver(host, port):
        return ["127.0.0.3"] if host == "cdn.test" else [host]

    url = public.url + "/go"
    pages, rejected, _ = run([url], cfg(allow_private=False), allowed_networks=["127.0.0.2/32"], resolver=resolver)
    assert not pages and rejected[url]["reason"] == "private_address" and "cdn.test (127.0.0.3)" in rejected[url]["detail"]
    assert "/go" in public.paths() and inside.log == []
