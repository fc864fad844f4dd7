"""Crawler throughput against local sites: how close it gets to its politeness ceiling, and
what the crawler costs over bare HTTP fetching.

Starts one HTTP server per host on 127.0.0.2, 127.0.0.3, ... (in a child process, so serving
does not compete with the crawler for the GIL), each with a tree of linked pages, and crawls
them from their home pages.

1. Polite crawl. A request to a host starts at least per_host_delay_s after the previous one
   (per_host_concurrency only lets requests overlap when a response takes longer than the
   delay), so the ceiling is hosts / per_host_delay_s requests per second (robots.txt
   included). Printed: pages/s and the ratio of requests/s to that ceiling.
2. Unthrottled crawl (delay 0) vs. a baseline measured in the same run: bare httpx GETs of
   the same URLs at the same concurrency (no robots.txt, link parsing, address checks, caps):
   pages/s, and CPU time per page in the crawling process (what the crawler's work costs).

    .venv/bin/python bench/crawl_throughput.py [--hosts 8] [--pages 2000] [--delay 0.05]
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from threading import Thread

import httpx

import smoke

from synthq.tasks.core.config import CrawlConfig
from synthq.tasks.ingest.crawl import crawl
from synthq.tasks.ingest.raw import RawPage

FANOUT = 10  # links per page: page i links to pages 10i+1 .. 10i+10 of its host
FILLER = "<p>" + "Plain words make a page about the size of a short article. " * 30 + "</p>"


def page_body(i: int, pages: int) -> bytes:
    links = "".join(f'<a href="/p{c}">page {c}</a> ' for c in range(FANOUT * i + 1, FANOUT * i + FANOUT + 1) if c < pages)
    return f"<!doctype html><html><head><title>Page {i}</title></head><body>{links}{FILLER}</body></html>".encode()


def serve(hosts: list[str], pages_per_host: int, ports) -> None:
    """Child process: one keep-alive server per host; sends back the ports, serves forever."""

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):
            pass

        def do_GET(self):
            i = self.path[2:]
            status, body = (200, page_body(int(i), pages_per_host)) if self.path.startswith("/p") and i.isdigit() \
                else (404, b"not found")
            self.send_response(status)
            self.send_header("Content-Type", "text/html; charset=utf-8" if status == 200 else "text/plain")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    servers = [ThreadingHTTPServer((host, 0), Handler) for host in hosts]
    for server in servers:
        server.daemon_threads = True
        Thread(target=server.serve_forever, daemon=True).start()
    ports.put([s.server_port for s in servers])
    while True:
        time.sleep(3600)


def crawl_rate(seeds: list[str], cfg: CrawlConfig) -> tuple[int, dict, float, float]:
    """Pages, stats, wall seconds and CPU seconds (this process: the servers run elsewhere)."""
    stats: dict = {}
    started, cpu = time.perf_counter(), time.process_time()
    pages = sum(isinstance(item, RawPage) for item in crawl(seeds, cfg, stats=stats))
    return pages, stats, time.perf_counter() - started, time.process_time() - cpu


async def bare_fetch(urls_by_host: list[list[str]], per_host: int, concurrency: int) -> float:
    """Wall seconds to GET every URL with plain httpx, `per_host` workers per host and at
    most `concurrency` requests in flight: the crawler's shape without any of its work."""
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    gate = asyncio.Semaphore(concurrency)
    async with httpx.AsyncClient(limits=limits, trust_env=False) as client:
        async def worker(todo: list[str]) -> None:
            while todo:
                url = todo.pop()
                async with gate:
                    (await client.get(url)).raise_for_status()

        started = time.perf_counter()
        await asyncio.gather(*(worker(todo) for todo in urls_by_host for _ in range(per_host)))
        return time.perf_counter() - started


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--hosts", type=int, default=8)
    ap.add_argument("--pages", type=int, default=2000, help="pages over all hosts")
    ap.add_argument("--delay", type=float, default=0.05, help="per_host_delay_s of the polite crawl")
    ap.add_argument("--per-host", type=int, default=2, help="per_host_concurrency")
    ap.add_argument("--concurrency", type=int, default=16)
    args = smoke.parse(ap, hosts=2, pages=40)
    per_host = args.pages // args.hosts
    hosts = [f"127.0.0.{2 + n}" for n in range(args.hosts)]
    ports = multiprocessing.get_context("spawn").Queue()
    server = multiprocessing.get_context("spawn").Process(target=serve, args=(hosts, per_host, ports), daemon=True)
    server.start()
    try:
        origins = [f"http://{h}:{p}" for h, p in zip(hosts, ports.get(timeout=30))]
        seeds = [f"{o}/p0" for o in origins]
        run(args, origins, seeds, per_host)
    finally:
        server.kill()


def run(args, origins: list[str], seeds: list[str], per_host: int) -> None:
    total = per_host * len(origins)
    base = dict(allow_private=True, max_pages=total, max_depth=10, timeout_s=10, retries=1)
    polite = CrawlConfig(**base, per_host_delay_s=args.delay, per_host_concurrency=args.per_host,
                         concurrency=args.concurrency)
    print(f"{len(origins)} hosts x {per_host} pages ({len(page_body(1, per_host)):,} bytes each), "
          f"{FANOUT} links per page, crawled from the home pages")

    pages, stats, seconds, _ = crawl_rate(seeds, polite)
    ceiling = len(origins) / args.delay if args.delay else float("inf")
    print(f"polite: per_host_delay_s={args.delay} per_host_concurrency={args.per_host} concurrency={args.concurrency}: "
          f"{pages:,} pages ({stats['requests']:,} requests) in {seconds:.1f}s = {pages / seconds:.0f} pages/s")
    print(f"ratio requests/s / politeness ceiling ({len(origins)} hosts / {args.delay}s = {ceiling:.0f}/s): "
          f"{stats['requests'] / seconds / ceiling:.2f}")

    fast = polite.model_copy(update={"per_host_delay_s": 0.0, "per_host_concurrency": 4, "concurrency": 32})
    pages, stats, seconds, cpu = crawl_rate(seeds, fast)
    urls = [[f"{o}/p{i}" for i in range(per_host)] for o in origins]
    bare_cpu = time.process_time()
    bare = total / asyncio.run(bare_fetch(urls, fast.per_host_concurrency, fast.concurrency))
    bare_cpu = time.process_time() - bare_cpu
    print(f"unthrottled (delay 0, per_host_concurrency 4, concurrency 32): {pages:,} pages in {seconds:.1f}s "
          f"= {pages / seconds:.0f} pages/s, {1000 * cpu / pages:.2f} ms CPU per page; bare httpx GETs of the "
          f"same URLs, same shape: {bare:.0f} pages/s, {1000 * bare_cpu / total:.2f} ms CPU per page")
    print(f"ratio crawler / bare httpx: pages/s {pages / seconds / bare:.2f} (1.0: the local servers are the "
          f"bottleneck), CPU per page {cpu / pages / (bare_cpu / total):.2f}")


if __name__ == "__main__":
    main()
