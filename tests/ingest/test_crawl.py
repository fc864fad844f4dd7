"""The crawler against real HTTP servers on loopback addresses (127.x.y.z): discovery,
politeness, retries, timeouts, size caps, redirects, content checks and the SSRF guard.

No test sends a packet outside 127.0.0.0/8: an autouse fixture fails any connection the
crawler would open elsewhere, and the guard tests refuse before connecting."""

from __future__ import annotations

import gzip
import threading
import time

import pytest

from synthq.tasks.core.errors import InputError
from synthq.tasks.ingest.crawl import crawl
from synthq.tasks.ingest.raw import RawPage
from tests.ingest.sites import UA, assert_paced, cfg, gzip_of_zeros, html_tree, redirect, run, urls


# -- discovery: links, depth, budget, sitemaps


def test_links_followed_on_the_same_host_within_depth(site_at):
    site, other = site_at("127.0.0.2"), site_at("127.0.0.3")
    site.page("/", "/a", "/b#part", "b", f"{other.url}/x", "mailto:x@example.com")
    site.page("/a", "/a/deeper", "/")
    site.page("/b", "/b/deeper")
    pages, rejected, stats = run([site.url + "/"], cfg(max_depth=1))
    assert urls(pages) == {site.url + "/", site.url + "/a", site.url + "/b"} and not rejected
    assert all(p.source == "crawl" and p.html.startswith(b"<html>") and p.fetch_time.tzinfo for p in pages)
    assert other.paths() == [] and "/a/deeper" not in site.paths()
    assert stats["beyond_max_depth"] == 2 and stats["links_offsite"] == 1 and stats["skipped_seen"] == 1


def test_max_pages_bounds_the_urls_taken_up(site_at):
    site = site_at("127.0.0.2")
    site.page("/", *[f"/p{i}" for i in range(20)])
    for i in range(20):
        site.page(f"/p{i}")
    pages, rejected, stats = run([site.url + "/"], cfg(max_depth=3, max_pages=5))
    assert len(pages) == 5 and not rejected
    assert stats["beyond_max_pages"] == 16 and stats["pages"] == 5


# -- retries and timeouts


def test_429_then_200_is_retried(site_at):
    site = site_at("127.0.0.2")
    answers = [(429, {"Retry-After": "0"}, b"slow down"), (200, {"Content-Type": "text/html"}, b"<p>ok</p>")]
    site.routes["/busy"] = lambda handler, _: _answer(handler, *answers.pop(0))
    pages, rejected, stats = run([site.url + "/busy"], cfg(retries=2))
    assert [p.html for p in pages] == [b"<p>ok</p>"] and not rejected and stats["retries"] == 1


def test_500_forever_is_an_http_error_after_the_retries(site_at):
    site = site_at("127.0.0.2")
    site.routes["/broken"] = (500, {}, b"")
    _, rejected, stats = run([site.url + "/broken"], cfg(retries=2))
    failure = rejected[site.url + "/broken"]
    assert failure["reason"] == "http_error" and "HTTP 500" in failure["detail"] and "2 retries" in failure["detail"]
    assert site.paths().count("/broken") == 3 and stats["retries"] == 2


def test_long_retry_after_is_not_waited_for(site_at):
    site = site_at("127.0.0.2")
    site.routes["/later"] = (503, {"Retry-After": "3600"}, b"")
    started = time.monotonic()
    _, rejected, _ = run([site.url + "/later"], cfg(retries=3))
    assert rejected[site.url + "/later"]["reason"] == "http_error" and time.monotonic() - started < 2


def _answer(handler, status, headers, body):
    handler.send_response(status)
    for name, value in {"Content-Length": str(len(body)), **headers}.items():
        handler.send_header(name, value)
    handler.end_headers()
    handler.wfile.write(body)


def _hang(handler, site):
    site.closing.wait(30)


def _trickle(handler, site):
    handler.send_response(200)
    handler.send_header("Content-Type", "text/html")
    handler.send_header("Connection", "close")
    handler.close_connection = True
    handler.end_headers()
    while not site.closing.wait(0.1):  # a byte every 0.1 s: never a read timeout, never the end
        handler.wfile.write(b"<")
        handler.wfile.flush()


def test_hanging_and_trickling_servers_time_out(site_at):
    site = site_at("127.0.0.2")
    site.routes["/hang"] = _hang
    site.routes["/trickle"] = _trickle
    started = time.monotonic()
    _, rejected, _ = run([site.url + "/hang", site.url + "/trickle"], cfg(timeout_s=0.8, retries=2))
    assert {r["reason"] for r in rejected.values()} == {"timeout"}
    assert time.monotonic() - started < 4


def test_connection_refused(site_at):
    site = site_at("127.0.0.2")
    url = site.url + "/"
    site.close()
    _, rejected, stats = run([url], cfg(retries=1))  # robots.txt unreachable: RFC 9309 disallows
    assert rejected[url]["reason"] == "robots_unavailable" and "ConnectError" in rejected[url]["detail"]
    _, rejected, stats = run([url], cfg(retries=1, respect_robots=False))
    assert rejected[url]["reason"] == "connection_error" and stats["retries"] == 1


# -- size caps


def _endless_zeros(declared: int | None):
    def respond(handler, site):
        handler.send_response(200)
        handler.send_header("Content-Type", "text/html")
        if declared:
            handler.send_header("Content-Length", str(declared))
        handler.send_header("Connection", "close")
        handler.close_connection = True
        handler.end_headers()
        chunk, sent = bytes(65536), 0
        try:
            while sent < 50 * 2**20 and not site.closing.is_set():
                handler.wfile.write(chunk)
                sent += len(chunk)
        except OSError:  # the crawler hung up
            pass
        site.sent[handler.path] = sent
    return respond


def test_50_mb_page_is_too_large_without_reading_it(site_at):
    site = site_at("127.0.0.2")
    site.routes["/declared"] = _endless_zeros(50 * 2**20)
    site.routes["/streamed"] = _endless_zeros(None)
    started = time.monotonic()
    _, rejected, stats = run([site.url + "/declared", site.url + "/streamed"], cfg(max_bytes=2**20))
    assert {r["reason"] for r in rejected.values()} == {"too_large"}
    assert "Content-Length" in rejected[site.url + "/declared"]["detail"]
    assert time.monotonic() - started < 5 and stats["bytes"] == 0
    deadline = time.monotonic() + 3
    while len(site.sent) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert max(site.sent.values()) < 20 * 2**20  # the crawler hung up long before 50 MB


def test_gzip_bomb_stops_at_the_cap(site_at):
    site = site_at("127.0.0.2")
    bomb = gzip_of_zeros()
    assert len(bomb) < 2 * 2**20
    site.routes["/bomb"] = (200, {"Content-Type": "text/html", "Content-Encoding": "gzip"}, bomb)
    site.routes["/small"] = (200, {"Content-Type": "text/html", "Content-Encoding": "gzip"},
                             gzip.compress(b"<p>compressed page</p>"))
    started = time.monotonic()
    pages, rejected, _ = run([site.url + "/bomb", site.url + "/small"], cfg(max_bytes=4 * 2**20))
    assert rejected[site.url + "/bomb"]["reason"] == "too_large"
    assert [p.html for p in pages] == [b"<p>compressed page</p>"]
    assert time.monotonic() - started < 5


# -- redirects


def test_redirects_followed_loops_and_chains_refused(site_at):
    site = site_at("127.0.0.2")
    site.routes["/old"] = (301, {"Location": "/new"}, b"")
    site.page("/new")
    site.routes["/loop-a"], site.routes["/loop-b"] = redirect("/loop-b"), redirect("/loop-a")
    for i in range(5):
        site.routes[f"/hop{i}"] = redirect(f"/hop{i + 1}")
    site.page("/hop5")
    site.routes["/ftp"] = redirect("ftp://127.0.0.2/file")
    seeds = [site.url + p for p in ("/old", "/loop-a", "/hop0", "/ftp")]
    pages, rejected, _ = run(seeds, cfg(max_redirects=3))
    assert urls(pages) == {site.url + "/new"}  # the final URL, after redirects
    assert rejected[site.url + "/loop-a"]["reason"] == "too_many_redirects"
    assert "loop" in rejected[site.url + "/loop-a"]["detail"]
    assert rejected[site.url + "/hop0"]["reason"] == "too_many_redirects"
    assert rejected[site.url + "/ftp"]["reason"] == "invalid_url"


def test_redirect_to_a_url_already_crawled_is_not_a_second_page(site_at):
    site = site_at("127.0.0.2")
    site.page("/", "/alias")
    site.routes["/alias"] = redirect("/")
    pages, rejected, stats = run([site.url + "/"], cfg(max_depth=1))
    assert urls(pages) == {site.url + "/"} and not rejected and stats["redirect_to_seen"] == 1


# -- content


def test_bad_charset_broken_html_and_plain_text_still_become_pages(site_at):
    site = site_at("127.0.0.2")
    broken = b"<html><p>caf\xe9 au lait <b>unclosed <div <a href='/x'>"
    site.routes["/latin"] = (200, {"Content-Type": "text/html; charset=no-such-charset"}, broken)
    site.routes["/untyped"] = (200, {}, b"  <!doctype html><p>no content type")
    site.routes["/text"] = (200, {"Content-Type": "text/plain; charset=bogus"}, b"na\xefve plain text")
    site.routes["/utf8"] = (200, {"Content-Type": "text/plain"}, "naïve ✓".encode())
    pages, rejected, _ = run([site.url + p for p in ("/latin", "/untyped", "/text", "/utf8")], cfg())
    by_url = {p.url.rsplit("/", 1)[1]: p for p in pages}
    assert not rejected and by_url["latin"].html == broken and by_url["untyped"].html.startswith(b"  <!doctype")
    assert by_url["text"].text == "na\xefve plain text" and by_url["text"].html is None
    assert by_url["utf8"].text == "naïve ✓"


def test_binary_and_unwanted_content_types_are_rejected(site_at):
    site = site_at("127.0.0.2")
    site.routes["/img"] = (200, {"Content-Type": "image/png"}, b"\x89PNG\r\n\x1a\n" + bytes(100))
    site.routes["/exe"] = (200, {"Content-Type": "text/html"}, b"MZ\x90\x00\x03\x00\x00\x00")
    site.routes["/blob"] = (200, {}, b"\x00\x01\x02")
    pages, rejected, _ = run([site.url + p for p in ("/img", "/exe", "/blob")], cfg())
    assert not pages and {r["reason"] for r in rejected.values()} == {"bad_content_type"}
    assert "image/png" in rejected[site.url + "/img"]["detail"]


def test_empty_body_is_a_page(site_at):
    site = site_at("127.0.0.2")
    site.routes["/empty"] = (200, {"Content-Type": "text/html"}, b"")
    pages, rejected, _ = run([site.url + "/empty"], cfg())
    assert [p.html for p in pages] == [b""] and not rejected


# -- politeness


def test_user_agent_on_every_request(site_at):
    site = site_at("127.0.0.2")
    site.page("/", "/a")
    site.page("/a")
    run([site.url + "/"], cfg(max_depth=1, sitemaps=True))
    assert len(site.log) == 4 and {ua for _, _, ua in site.log} == {UA}  # robots, sitemap, 2 pages


def test_per_host_delay_between_request_starts(static_site_at):
    routes = html_tree({"/": [f"/p{i}" for i in range(4)], **{f"/p{i}": [] for i in range(4)}})
    (first, first_log), (second, second_log) = static_site_at("127.0.0.2", routes), static_site_at("127.0.0.3", routes)
    started = time.monotonic()
    pages, _, _ = run([first + "/", second + "/"],
                      cfg(max_depth=1, per_host_delay_s=0.2, per_host_concurrency=2, concurrency=8))
    elapsed = time.monotonic() - started
    assert len(pages) == 10
    for arrivals in (first_log, second_log):
        assert_paced([t for t, _ in arrivals()], 6, 0.2)
    assert elapsed < 2.2  # side by side: one host alone needs 6 x 0.2 s, both one after the other 2.4 s


class InFlight:
    """Counts requests being handled, per site and over all sites, and keeps the peaks."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.now: dict[str, int] = {}
        self.peak: dict[str, int] = {}

    def _add(self, key: str, n: int) -> None:
        self.now[key] = self.now.get(key, 0) + n
        self.peak[key] = max(self.peak.get(key, 0), self.now[key])

    def slow_page(self, handler, site) -> None:
        with self.lock:
            self._add(site.url, 1)
            self._add("all", 1)
        time.sleep(0.15)
        with self.lock:
            self._add(site.url, -1)
            self._add("all", -1)
        _answer(handler, 200, {"Content-Type": "text/html"}, b"<p>slow</p>")


def test_requests_in_flight_per_host_and_overall(site_at):
    sites = [site_at(f"127.0.0.{n}") for n in (2, 3, 4)]
    counter = InFlight()
    for site in sites:
        site.routes.update({f"/s{i}": counter.slow_page for i in range(4)})
    seeds = [site.url + f"/s{i}" for site in sites for i in range(4)]
    pages, _, _ = run(seeds, cfg(per_host_concurrency=2, concurrency=3, respect_robots=False))
    assert len(pages) == 12
    assert max(counter.peak[site.url] for site in sites) == 2 and counter.peak["all"] == 3


# -- seeds and lifecycle


def test_invalid_and_duplicate_seeds(site_at):
    site = site_at("127.0.0.2")
    site.page("/")
    pages, rejected, stats = run([site.url + "/", site.url + "/#top", "ftp://x/", "http://[::1", "not a url"], cfg())
    assert urls(pages) == {site.url + "/"} and stats["skipped_seen"] == 1
    assert [r["reason"] for r in rejected.values()] == ["invalid_url"] * 3


def test_empty_seed_list_is_refused():
    with pytest.raises(InputError, match="seed URLs"):
        crawl([], cfg())


def test_closing_the_iterator_stops_the_crawl(site_at):
    site = site_at("127.0.0.2")
    site.page("/", *[f"/p{i}" for i in range(50)])
    for i in range(50):
        site.page(f"/p{i}")
    items = crawl([site.url + "/"], cfg(max_depth=1, per_host_delay_s=0.05), backoff_s=0.01)
    assert isinstance(next(items), RawPage)
    items.close()
    time.sleep(0.3)
    requests = len(site.log)
    time.sleep(0.3)
    assert len(site.log) == requests < 20
    assert not [t for t in threading.enumerate() if t.name == "synthq-crawl"]
