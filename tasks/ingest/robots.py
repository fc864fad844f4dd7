"""Where a crawl may go on a site: robots.txt rules (RFC 9309), sitemaps, and the links a
page lets crawlers follow.

`RobotsRules` answers "may the crawler fetch this URL?" and "how long between requests?"
(RFC 9309 matching by Protego: longest pattern wins, '*' and '$' understood; urllib.robotparser
takes the first match and no wildcards). It comes from the robots.txt response: the rules of
a 2xx body, allow-all for a 4xx (no robots.txt), and a refusal for 5xx or no answer (the site may be overloaded: RFC 9309
treats it as fully disallowed). `parse_sitemap` reads a sitemap or sitemap index
(XML, or plain text with one URL a line) into page URLs and nested sitemap URLs.
`SiteRules` fetches each origin's robots.txt once (concurrent askers share the fetch) and
reads its sitemaps. `extract_links` reads a page's links, minus what meta robots and
rel=nofollow exclude. `normalize_url` is the one URL form the crawler compares and
deduplicates on.
"""

from __future__ import annotations

import asyncio
import re
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from urllib.parse import urljoin, urlsplit, urlunsplit

from lxml import etree
from protego import Protego

from synthq.tasks.ingest.fetch import Fetcher, Politeness, Refusal
from synthq.tasks.ingest.netguard import BoundedBody

ROBOTS_MAX_BYTES = 500 * 1024  # RFC 9309: parse at least the first 500 KiB
ROBOTS_MAX_REDIRECTS = 5  # RFC 9309: follow at least five
MAX_SITEMAPS_PER_HOST = 50  # sitemap files read per origin (an index may list 50,000)
MAX_URL_CHARS = 4096  # longer URLs are almost always session ids or spider traps
_DEFAULT_PORTS = {"http": 80, "https": 443}


def product_token(user_agent: str) -> str:
    """The name robots.txt groups are matched on: 'synthq' for 'synthq/0.1 (...)'."""
    return user_agent.split("/")[0].strip().lower()


@dataclass
class RobotsRules:
    """One origin's robots.txt, reduced to what applies to the crawler's user agent."""

    parser: Protego | None = None  # None: no rules (allow all)
    agent: str = "*"  # the product token the rules are matched for
    delay: float | None = None  # Crawl-delay, seconds
    sitemaps: list[str] = field(default_factory=list)
    refusal: tuple[str, str] | None = None  # (reason, detail): refuse every URL of the origin

    def allows(self, url: str) -> bool:
        """RFC 9309 (Protego): the longest matching pattern decides, Allow wins a tie, no match allows."""
        return self.parser is None or self.parser.can_fetch(url, self.agent)


def allow_all() -> RobotsRules:
    return RobotsRules()


def refuse_all(reason: str, detail: str) -> RobotsRules:
    return RobotsRules(refusal=(reason, detail))


# "User-agent: SynthQ-Test/2.0" names the product token "synthq-test": sites often write the
# whole User-Agent header where RFC 9309 wants the token alone.
_AGENT_LINE = re.compile(r"^(\s*user-agent\s*:\s*)([^/#\s]+)/[^#\n]*", re.IGNORECASE | re.MULTILINE)


def rules_from_text(text: str, user_agent: str) -> RobotsRules:
    """The rules of the groups naming the agent's product token (merged), else of the '*'
    group, as Protego reads them (RFC 9309: '*' and '$' patterns, longest match, Allow wins
    a tie, percent-encoding normalized, fractional Crawl-delay, Sitemap lines)."""
    parser = Protego.parse(_AGENT_LINE.sub(r"\1\2", text.removeprefix("\ufeff")))  # a UTF-8 BOM is no field
    token = product_token(user_agent)
    delay = parser.crawl_delay(token)
    return RobotsRules(parser, token, max(0.0, float(delay)) if delay is not None else None, list(parser.sitemaps))


class SiteRules:
    """robots.txt of every origin a crawl touches, fetched once each, and their sitemaps.
    A robots.txt Crawl-delay slows the host down in `politeness`."""

    def __init__(self, fetcher: Fetcher, politeness: Politeness, user_agent: str,
                 max_bytes: int, max_redirects: int) -> None:
        self.fetcher, self.politeness, self.user_agent = fetcher, politeness, user_agent
        self.max_bytes, self.max_redirects = max_bytes, max_redirects
        self._loads: dict[str, asyncio.Task] = {}

    async def check(self, url: str) -> None:
        """Raise a Refusal unless robots.txt lets the crawler fetch the URL."""
        origin = origin_of(url)
        rules = await self.of(origin)
        if rules.refusal is not None:
            raise Refusal(*rules.refusal)
        if not rules.allows(url):
            path = urlsplit(url).path or "/"
            raise Refusal("robots_disallowed",
                          f"robots.txt of {origin} disallows {path} for {product_token(self.user_agent)}")

    async def of(self, origin: str) -> RobotsRules:
        if origin not in self._loads:
            self._loads[origin] = asyncio.create_task(self._load(origin))
        return await asyncio.shield(self._loads[origin])  # one asker cancelled: the fetch goes on

    async def close(self) -> None:
        for task in self._loads.values():
            task.cancel()
        await asyncio.gather(*self._loads.values(), return_exceptions=True)

    async def _load(self, origin: str) -> RobotsRules:
        try:
            got = await self.fetcher.follow(f"{origin}/robots.txt", accept=None, max_bytes=ROBOTS_MAX_BYTES,
                                            max_redirects=ROBOTS_MAX_REDIRECTS, truncate=True)
        except Refusal as refusal:
            return _robots_failure(origin, refusal)
        self.fetcher.stats["robots_fetched"] += 1
        rules = rules_from_text(got.body.decode("utf-8", "replace"), self.user_agent)
        if rules.delay:
            self.politeness.slow_down(host_of(origin), rules.delay)
        return rules

    async def sitemap_pages(self, origin: str, use_robots: bool) -> AsyncIterator[tuple[str, str]]:
        """(page URL, sitemap URL) of the origin's sitemaps: robots.txt Sitemap: lines and
        /sitemap.xml, indexes followed, on the origin's host only."""
        rules = await self.of(origin) if use_robots else allow_all()
        if rules.refusal is not None:
            return
        todo = deque(dict.fromkeys([*rules.sitemaps, f"{origin}/sitemap.xml"]))
        done: set[str] = set()
        while todo and len(done) < MAX_SITEMAPS_PER_HOST:
            sitemap = todo.popleft()
            if sitemap in done or host_of(sitemap) != host_of(origin):
                continue
            done.add(sitemap)
            pages, nested = await self._read_sitemap(sitemap)
            todo.extend(nested)
            for page in pages:
                try:
                    yield normalize_url(page), sitemap
                except ValueError:
                    continue

    async def _read_sitemap(self, url: str) -> tuple[list[str], list[str]]:
        stats = self.fetcher.stats
        try:
            got = await self.fetcher.follow(url, accept=None, max_bytes=self.max_bytes,
                                            max_redirects=self.max_redirects, truncate=True)
            body = got.body
            if body[:2] == b"\x1f\x8b":  # a .xml.gz served as a file, not as Content-Encoding
                unzipped = BoundedBody("gzip", self.max_bytes, truncate=True)
                unzipped.feed(body)
                body = unzipped.bytes()
        except (Refusal, ValueError):
            stats["sitemap_errors"] += 1
            return [], []
        stats["sitemaps_fetched"] += 1
        return parse_sitemap(body)


def _robots_failure(origin: str, refusal: Refusal) -> RobotsRules:
    """RFC 9309: no robots.txt (4xx) or too many redirects allows all; 5xx or no answer
    disallows all. A host the address guard refuses stays refused as such."""
    if refusal.status is not None and 400 <= refusal.status < 500 and refusal.status != 429:
        return allow_all()
    if refusal.reason == "too_many_redirects":
        return allow_all()
    if refusal.reason == "private_address" and origin_of(refusal.url or "") == origin:
        return refuse_all(refusal.reason, refusal.detail)
    return refuse_all("robots_unavailable", f"robots.txt of {origin} could not be read ({refusal.detail}); "
                      "the site is treated as disallowed until it answers (RFC 9309)")


_SITEMAP_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, recover=True, huge_tree=False)


def parse_sitemap(body: bytes) -> tuple[list[str], list[str]]:
    """(page URLs, nested sitemap URLs) of a sitemap, sitemap index or text sitemap."""
    if not body.lstrip()[:1] == b"<":
        lines = body.decode("utf-8", "replace").splitlines()
        return [s.strip() for s in lines if s.strip().startswith(("http://", "https://"))], []
    try:
        root = etree.fromstring(body, _SITEMAP_PARSER)
    except etree.XMLSyntaxError:
        return [], []
    if root is None:
        return [], []
    locs = [el.text.strip() for el in root.iter("{*}loc") if el.text and el.text.strip()]
    is_index = etree.QName(root).localname.lower() == "sitemapindex"
    return ([], locs) if is_index else (locs, [])


def normalize_url(url: str) -> str:
    """scheme://host[:port]/path?query, scheme and host lower-cased, default port, fragment
    and credentials dropped. ValueError (with a readable message) if it is no http(s) URL."""
    if len(url) > MAX_URL_CHARS:
        raise ValueError(f"URL longer than {MAX_URL_CHARS} characters: {url[:80]}...")
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS:
        raise ValueError(f"not an http(s) URL: {url!r}")
    host, port = parts.hostname, parts.port  # .port raises ValueError for a bad port
    if not host:
        raise ValueError(f"no host in {url!r}")
    try:
        host = host if host.isascii() else host.encode("idna").decode("ascii")
    except UnicodeError as exc:
        raise ValueError(f"bad host name in {url!r}") from exc
    host = f"[{host}]" if ":" in host else host
    netloc = host if port in (None, _DEFAULT_PORTS[scheme]) else f"{host}:{port}"
    return urlunsplit((scheme, netloc, parts.path or "/", parts.query, ""))


def origin_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def host_of(url: str) -> str:
    return urlsplit(url).hostname or ""


def extract_links(html: bytes, page_url: str) -> list[str]:
    """Normalized http(s) links of a page (<a>, <area>), resolved against <base>; none when
    the page says `<meta name=robots content=nofollow>`, and no rel=nofollow links."""
    try:
        root = etree.fromstring(html, etree.HTMLParser(recover=True, no_network=True))
    except (etree.ParserError, etree.XMLSyntaxError, ValueError):
        return []
    if root is None:
        return []
    for meta in root.iter("meta"):
        if (meta.get("name") or "").lower() == "robots" and "nofollow" in (meta.get("content") or "").lower():
            return []
    base = next((b.get("href").strip() for b in root.iter("base") if b.get("href")), "")
    base_url = urljoin(page_url, base) if base else page_url
    links = []
    for anchor in root.iter("a", "area"):
        href = (anchor.get("href") or "").strip()
        if href and "nofollow" not in (anchor.get("rel") or "").lower().split():
            try:
                links.append(normalize_url(urljoin(base_url, href)))
            except ValueError:
                continue
    return list(dict.fromkeys(links))
