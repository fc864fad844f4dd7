"""The ingest crawler: seed URLs in, raw pages (or rejection rows) out, politely and safely.

    for item in crawl(seeds, cfg, stats=stats):  # RawPage or rejection dict, as they come
        ...

Every seed and every URL taken up ends as exactly one item: a `RawPage` or a rejection with
stage "ingest" and one of the reasons robots_disallowed, robots_unavailable,
private_address, http_error, timeout, connection_error, too_large, bad_content_type,
too_many_redirects, invalid_url (fetch_error for a failure nobody foresaw). URLs seen
before, past `max_depth` or past `max_pages` are not items; `stats` counts them.

Inside, an asyncio crawl with httpx runs on its own event loop in a background thread and
hands items over through a bounded queue, so a slow consumer slows the crawl instead of
filling memory, and closing the iterator stops it. Fetching one URL (address guard, pacing,
retries, redirects, caps) lives in `netguard`; robots.txt, sitemaps and links in `robots`.
"""

from __future__ import annotations

import asyncio
import functools
import queue
import re
import ssl
import threading
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timezone

import httpx

from synthq.tasks.core.config import CrawlConfig
from synthq.tasks.core.errors import InputError
from synthq.tasks.core.records import rejection
from synthq.tasks.ingest.fetch import Fetched, Fetcher, Politeness, Refusal
from synthq.tasks.ingest.netguard import AddressGuard, GuardedBackend, GuardedTransport, Resolver, resolve_host
from synthq.tasks.ingest.raw import RawPage
from synthq.tasks.ingest.robots import SiteRules, extract_links, host_of, normalize_url, origin_of

STAGE = "ingest"
_UNICODE_BOMS = (b"\xef\xbb\xbf", b"\xff\xfe", b"\xfe\xff")


def _content_type(headers: httpx.Headers) -> tuple[str, str | None]:
    media, _, params = headers.get("content-type", "").partition(";")
    charset = re.search(r"charset\s*=\s*[\"']?([\w.:-]+)", params, re.I)
    return media.strip().lower(), charset[1] if charset else None


def _decode_text(body: bytes, charset: str | None) -> str:
    """Text in its declared charset, else UTF-8, else Windows-1252 (never fails)."""
    for encoding in (charset, "utf-8"):
        if encoding:
            try:
                return body.decode(encoding)
            except (LookupError, UnicodeDecodeError):
                continue
    return body.decode("cp1252", "replace")


def page_from_response(got: Fetched) -> RawPage:
    """The fetched body as a RawPage: HTML as bytes (extraction reads its charset), text/*
    decoded. Binary bodies and untyped non-HTML bodies are refused."""
    media, charset = _content_type(got.headers)
    head = got.body[:1024]
    if b"\x00" in head and not head.startswith(_UNICODE_BOMS):
        raise Refusal("bad_content_type", f"the body of this {media or 'untyped'} response is binary")
    if not media:
        if not head.lstrip(b"\xef\xbb\xbf \t\r\n")[:1] == b"<":
            raise Refusal("bad_content_type", "no Content-Type, and the body does not look like HTML")
        media = "text/html"
    now = datetime.now(timezone.utc)
    if media.startswith("text/") and "html" not in media:
        return RawPage(url=got.url, source="crawl", fetch_time=now, text=_decode_text(got.body, charset))
    return RawPage(url=got.url, source="crawl", fetch_time=now, html=got.body)


def new_stats() -> dict:
    """The crawl's counters (filled in place while it runs)."""
    keys = ("seeds pages rejected requests retries bytes robots_fetched sitemaps_fetched sitemap_errors "
            "skipped_seen redirect_to_seen beyond_max_pages beyond_max_depth links_offsite")
    return {**dict.fromkeys(keys.split(), 0), "reasons": {}, "elapsed_s": 0.0}


@dataclass
class _Item:
    url: str  # normalized
    depth: int  # links followed from a seed (seeds and sitemap pages: 0)
    found_on: str | None = None  # page or sitemap that linked to it

    def record(self) -> dict:
        return {"url": self.url, "source": "crawl", "depth": self.depth, "found_on": self.found_on}


class _Frontier:
    """One crawl on the event loop: URLs taken up (deduplicated, within depth and budget),
    a queue per host worked by up to per_host_concurrency workers, robots.txt per origin,
    sitemaps per seed host."""

    def __init__(self, cfg: CrawlConfig, fetcher: Fetcher, site_rules: SiteRules,
                 emit: Callable[[object], Awaitable[None]], stats: dict) -> None:
        self.cfg, self.fetcher, self.site_rules, self.emit, self.stats = cfg, fetcher, site_rules, emit, stats
        self.accept = [t.lower() for t in cfg.content_types]
        self.seen: set[str] = set()
        self.beyond_depth: set[str] = set()
        self.beyond_budget: set[str] = set()
        self.taken = 0
        self.queues: dict[str, deque[_Item]] = {}
        self.workers: dict[str, int] = {}
        self.tasks: set[asyncio.Task] = set()
        self.pending = 0  # queued items + running tasks; the crawl is over at zero
        self.idle = asyncio.Event()
        self.failure: BaseException | None = None

    async def run(self, seeds: list[str]) -> None:
        self.pending += 1  # held while seeding, so early finishers cannot end the crawl
        try:
            for raw in seeds:
                await self._add_seed(raw)
            if self.cfg.sitemaps:
                for origin in dict.fromkeys(origin_of(u) for u in list(self.seen)):
                    self._spawn(self._expand_sitemaps(origin))
            self._finish()
            await self.idle.wait()
            if self.failure is not None:
                raise self.failure
        finally:
            self.stats["beyond_max_depth"] = len(self.beyond_depth)
            self.stats["beyond_max_pages"] = len(self.beyond_budget)
            await _cancel(self.tasks)
            await self.site_rules.close()

    # -- taking URLs up
    async def _add_seed(self, raw: str) -> None:
        self.stats["seeds"] += 1
        try:
            url = normalize_url(raw)
        except ValueError as exc:
            await self._reject(_Item(raw, 0), "invalid_url", str(exc))
            return
        self._add(url, 0, None)

    def _add(self, url: str, depth: int, found_on: str | None) -> None:
        if url in self.seen:
            self.stats["skipped_seen"] += 1
        elif depth > self.cfg.max_depth:
            self.beyond_depth.add(url)
        elif self.taken >= self.cfg.max_pages:
            self.beyond_budget.add(url)
        else:
            self.seen.add(url)
            self.beyond_depth.discard(url)
            self.taken += 1
            self._enqueue(_Item(url, depth, found_on))

    def _enqueue(self, item: _Item) -> None:
        host = host_of(item.url)
        self.queues.setdefault(host, deque()).append(item)
        self.pending += 1
        if self.workers.get(host, 0) < self.cfg.per_host_concurrency:
            self.workers[host] = self.workers.get(host, 0) + 1
            self._spawn(self._work_host(host))

    # -- bookkeeping
    def _spawn(self, coro: Awaitable[None]) -> None:
        self.pending += 1
        task = asyncio.create_task(self._counted(coro))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _counted(self, coro: Awaitable[None]) -> None:
        try:
            await coro
        except Exception as exc:  # a crawler bug: end the crawl and show it
            self.failure = self.failure or exc
            self.idle.set()
        finally:
            self._finish()

    def _finish(self) -> None:
        self.pending -= 1
        if self.pending == 0:
            self.idle.set()

    async def _work_host(self, host: str) -> None:
        queue = self.queues[host]
        try:
            while queue:
                item = queue.popleft()
                try:
                    await self._process(item)
                finally:
                    self._finish()
        finally:
            self.workers[host] -= 1

    # -- one URL
    async def _process(self, item: _Item) -> None:
        try:
            got = await self.fetcher.follow(item.url, accept=self.accept, max_bytes=self.cfg.max_bytes,
                                            max_redirects=self.cfg.max_redirects, before_hop=self._obey_robots)
            if not self._claim_final_url(item, got.url):
                return
            page = page_from_response(got)
        except Refusal as refusal:
            await self._reject(item, refusal.reason, refusal.detail)
            return
        except Exception as exc:  # an unforeseen server behaviour must not end the crawl
            await self._reject(item, "fetch_error", f"{type(exc).__name__}: {exc}")
            return
        self.stats["pages"] += 1
        await self.emit(page)
        if page.html is not None and self.cfg.follow_links:
            self._follow_links(page, item.depth + 1)

    def _claim_final_url(self, item: _Item, final_url: str) -> bool:
        """False when a redirect ended on a URL the crawl already has (one page per URL)."""
        final = normalize_url(final_url)
        if final == item.url:
            return True
        if final in self.seen:
            self.stats["redirect_to_seen"] += 1
            return False
        self.seen.add(final)
        return True

    def _follow_links(self, page: RawPage, depth: int) -> None:
        host = host_of(page.url)
        for link in extract_links(page.html, page.url):
            if host_of(link) == host:
                self._add(link, depth, page.url)
            else:
                self.stats["links_offsite"] += 1

    async def _reject(self, item: _Item, reason: str, detail: str) -> None:
        self.stats["rejected"] += 1
        self.stats["reasons"][reason] = self.stats["reasons"].get(reason, 0) + 1
        await self.emit(rejection(STAGE, reason, detail, item.url, item.record()))

    async def _obey_robots(self, url: str) -> None:
        if self.cfg.respect_robots:
            await self.site_rules.check(url)

    async def _expand_sitemaps(self, origin: str) -> None:
        """Take up the pages of the origin's sitemaps as depth-0 URLs on the same host."""
        host = host_of(origin)
        async for page, sitemap in self.site_rules.sitemap_pages(origin, self.cfg.respect_robots):
            if host_of(page) == host:
                self._add(page, 0, sitemap)
            else:
                self.stats["links_offsite"] += 1


async def _cancel(tasks: Iterable[asyncio.Task]) -> None:
    running = [t for t in tasks if not t.done()]
    for task in running:
        task.cancel()
    await asyncio.gather(*running, return_exceptions=True)


@functools.cache
def _ssl_context() -> ssl.SSLContext:
    """Loading the CA bundle takes about 0.1 s: once per process is enough."""
    return httpx.create_ssl_context(trust_env=False)


def _http_client(cfg: CrawlConfig, backend: GuardedBackend) -> httpx.AsyncClient:
    """An httpx client whose connections all go through the address guard."""
    transport = GuardedTransport(backend, _ssl_context(), cfg.concurrency)
    headers = {"User-Agent": cfg.user_agent, "Accept-Encoding": "gzip, deflate",
               "Accept": "text/html,application/xhtml+xml,text/plain;q=0.9,*/*;q=0.1"}
    return httpx.AsyncClient(transport=transport, headers=headers, timeout=cfg.timeout_s,
                             follow_redirects=False, trust_env=False)


class Crawler:
    """Crawls seed URLs into raw pages and rejections; `stats` fills in as it runs.

    `resolver` (host, port -> addresses) and `allowed_networks` (CIDRs let through the
    address guard, e.g. an intranet) are for special deployments and tests; `backoff_s` is
    the first retry's wait (doubling, with jitter)."""

    def __init__(self, cfg: CrawlConfig, *, stats: dict | None = None, resolver: Resolver | None = None,
                 allowed_networks: Iterable[str] = (), backoff_s: float = 1.0, queue_size: int = 256) -> None:
        self.cfg = cfg
        self.stats = stats if stats is not None else {}
        self.stats.update(new_stats())
        self.guard = AddressGuard.of(cfg.allow_private, allowed_networks)
        self.resolver = resolver or resolve_host
        self.backoff_s, self.queue_size = backoff_s, queue_size

    def run(self, seeds: list[str]) -> Iterator[RawPage | dict]:
        if isinstance(seeds, str) or not seeds or not all(isinstance(s, str) for s in seeds):
            raise InputError("crawl needs a non-empty list of seed URLs (strings); "
                             "give http(s) URLs or a urls:FILE with one URL per line")
        return self._items(list(seeds))

    def _items(self, seeds: list[str]) -> Iterator[RawPage | dict]:
        loop = _LoopThread(lambda emit: self._crawl(seeds, emit), self.queue_size)
        try:
            yield from loop.items()
        finally:
            loop.stop()

    async def _crawl(self, seeds: list[str], emit: Callable[[object], Awaitable[None]]) -> None:
        started = time.monotonic()
        cfg = self.cfg
        try:
            async with _http_client(cfg, GuardedBackend(self.guard, self.resolver)) as client:
                politeness = Politeness(cfg.concurrency, cfg.per_host_concurrency, cfg.per_host_delay_s)
                fetcher = Fetcher(client, politeness, cfg.timeout_s, cfg.retries, self.backoff_s, self.stats)
                site_rules = SiteRules(fetcher, politeness, cfg.user_agent, cfg.max_bytes, cfg.max_redirects)
                await _Frontier(cfg, fetcher, site_rules, emit, self.stats).run(seeds)
        finally:
            self.stats["elapsed_s"] = round(time.monotonic() - started, 3)


def crawl(seeds: list[str], cfg: CrawlConfig, stats: dict | None = None, **options) -> Iterator[RawPage | dict]:
    """Raw pages and rejections of a crawl from `seeds`, as they come (see `Crawler`)."""
    return Crawler(cfg, stats=stats, **options).run(seeds)


_END = object()


class _LoopThread:
    """Runs a producer coroutine on a fresh event loop in a daemon thread. Its items reach
    `items()` through a queue bounded by a semaphore the consumer releases, so the producer
    waits when the consumer is slow. `stop()` cancels the producer and joins the thread."""

    def __init__(self, produce: Callable[[Callable[[object], Awaitable[None]]], Awaitable[None]], size: int):
        self._produce, self._size = produce, size
        self._out: queue.SimpleQueue = queue.SimpleQueue()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=asyncio.run, args=(self._main(),), name="synthq-crawl", daemon=True)

    async def _main(self) -> None:
        self.loop, self.task = asyncio.get_running_loop(), asyncio.current_task()
        self._room = asyncio.Semaphore(self._size)
        self._ready.set()
        try:
            await self._produce(self._put)
        except asyncio.CancelledError:  # stopped by the consumer: nobody is waiting for items
            pass
        except Exception as exc:  # surfaces in the consumer's thread
            self._out.put(_Failed(exc))
        finally:
            self._out.put(_END)

    async def _put(self, item: object) -> None:
        await self._room.acquire()
        self._out.put(item)

    def items(self) -> Iterator:
        self._thread.start()
        self._ready.wait()
        while (item := self._out.get()) is not _END:
            if isinstance(item, _Failed):
                raise item.error
            self._call_in_loop(self._room.release)
            yield item

    def stop(self) -> None:
        if self._thread.is_alive():
            self._call_in_loop(self.task.cancel)
            self._thread.join()

    def _call_in_loop(self, callback: Callable[[], object]) -> None:
        try:
            self.loop.call_soon_threadsafe(callback)
        except RuntimeError:  # the crawl is over and its loop closed
            pass


@dataclass
class _Failed:
    error: Exception
