"""Local HTTP sites on loopback addresses for the crawler's tests, and helpers to run a crawl."""

from __future__ import annotations

import struct
import threading
import time
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from synthq.tasks.core.config import CrawlConfig
from synthq.tasks.ingest.crawl import crawl
from synthq.tasks.ingest.raw import RawPage

UA = "synthq-test/9.9 (+https://example.invalid/bot)"


class Site:
    """One HTTP/1.1 server on a loopback address. Routes map a path to (status, headers,
    body) or to a function(handler, site) that writes the response (and closes the
    connection when it sends no Content-Length)."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.routes: dict = {}
        self.log: list[tuple[float, str, str]] = []  # (monotonic time, path, user agent)
        self.closing = threading.Event()
        self.sent: dict[str, int] = {}
        site = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                site.log.append((time.monotonic(), self.path, self.headers.get("User-Agent", "")))
                route = site.routes.get(self.path, (404, {"Content-Type": "text/plain"}, b"not found"))
                if callable(route):
                    return route(self, site)
                status, headers, body = route
                self.send_response(status)
                for name, value in {"Content-Length": str(len(body)), **headers}.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(body)

            protocol_version = "HTTP/1.1"  # keep-alive, as real servers do

        self.server = ThreadingHTTPServer((host, port), Handler)
        self.server.daemon_threads = True
        self.url = f"http://{host}:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def page(self, path: str, *links: str, ctype: str = "text/html; charset=utf-8") -> None:
        body = "<html><body>" + "".join(f'<a href="{link}">{link}</a>' for link in links) + "</body></html>"
        self.routes[path] = (200, {"Content-Type": ctype}, body.encode())

    def paths(self) -> list[str]:
        return [path for _, path, _ in self.log]

    def close(self) -> None:
        self.closing.set()
        self.server.shutdown()
        self.server.server_close()


# A static site in its own process, for timing: its clock is not stalled by the crawler's
# garbage collection or the GIL, so the arrival times it prints are what a server sees.
STATIC_SITE = """
import json, sys, time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
routes = json.loads(sys.argv[2])
class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def log_message(self, *args): pass
    def do_GET(self):
        print(time.monotonic(), self.path, flush=True)
        status, ctype, body = routes.get(self.path, [404, "text/plain", "not found"])
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body.encode())))
        self.end_headers()
        self.wfile.write(body.encode())
server = ThreadingHTTPServer((sys.argv[1], 0), Handler)
print(server.server_port, flush=True)
server.serve_forever()
"""


def html_tree(paths_and_links: dict[str, list[str]]) -> dict:
    links = lambda hrefs: "".join(f'<a href="{h}">{h}</a>' for h in hrefs)  # noqa: E731
    return {path: (200, "text/html", f"<html>{links(hrefs)}</html>") for path, hrefs in paths_and_links.items()}


def cfg(**overrides) -> CrawlConfig:
    base = dict(allow_private=True, per_host_delay_s=0, timeout_s=2, retries=1, user_agent=UA, max_depth=0)
    return CrawlConfig(**{**base, **overrides})


def run(seeds, config: CrawlConfig, **options) -> tuple[list[RawPage], dict[str, dict], dict]:
    """Pages, rejections by URL, and stats of a crawl."""
    stats: dict = {}
    items = list(crawl(seeds, config, stats=stats, backoff_s=options.pop("backoff_s", 0.01), **options))
    pages = [i for i in items if isinstance(i, RawPage)]
    rejected = {i["record_id"]: i for i in items if isinstance(i, dict)}
    assert len(pages) + len(rejected) == len(items)
    return pages, rejected, stats


def urls(pages: list[RawPage]) -> set[str]:
    return {p.url for p in pages}


def gzip_of_zeros(gib: int = 1) -> bytes:
    """A valid gzip stream of `gib` GiB of zeros, about 1 MB on the wire: one deflate block
    of 1 MiB of zeros repeated (a full flush makes each block independent)."""
    zeros = bytes(2**20)
    deflate = zlib.compressobj(9, zlib.DEFLATED, -15)
    block, tail = deflate.compress(zeros) + deflate.flush(zlib.Z_FULL_FLUSH), deflate.flush()
    crc = 0
    for _ in range(1024 * gib):
        crc = zlib.crc32(zeros, crc)
    header = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"
    return header + block * (1024 * gib) + tail + struct.pack("<II", crc, (gib << 30) & 0xFFFFFFFF)


def redirect(to: str):
    return (302, {"Location": to}, b"")


def assert_paced(arrivals: list[float], count: int, delay: float) -> None:
    """Requests arrived `delay` apart. Unpaced, they would arrive milliseconds apart. The
    median is tested, not each gap: on a loaded machine the server process may handle a
    request sent on time a few hundred ms late, which shortens the gap after it."""
    gaps = sorted(b - a for a, b in zip(arrivals, arrivals[1:]))
    assert len(arrivals) == count and gaps[len(gaps) // 2] >= delay * 0.9, gaps
