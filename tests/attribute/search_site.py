"""A search engine on loopback for the search-mode tests: a SearXNG-shaped JSON API and a
generic one, whose hits are pages of the same local site (bundled sample pages, a login wall
that ingest's filters drop, a page robots.txt disallows)."""

from __future__ import annotations

import json
from urllib.parse import parse_qs, urlsplit

from synthq.tasks.sample import PAGES
from tests.ingest.sites import Site

KEY = "sk-test-7d1f0c9a-never-log-me"


def _page(name: str) -> tuple[int, dict, bytes]:
    return 200, {"Content-Type": "text/html; charset=utf-8"}, (PAGES / name).read_bytes()


class SearchSite:
    """`hits` are paths on this site, returned for every query; `failing` makes the API answer 503."""

    def __init__(self, hits: list[str]):
        self.site, self.hits, self.failing, self.queries, self.keys = Site(), list(hits), False, [], []
        self.site.routes = _Routes(self)
        self.site.routes.update({
            "/robots.txt": (200, {"Content-Type": "text/plain"}, b"User-agent: *\nDisallow: /private/\n"),
            "/articles/regression.html": _page("29-intro-linear-regression.html"),
            "/articles/sourdough.html": _page("01-sourdough-starter.html"),
            "/articles/login.html": _page("37-login-wall.html"),
            "/articles/blackholes.html": _page("12-black-holes-event-horizons.html"),
            "/private/espresso.html": _page("18-espresso-dialing-in.html"),
        })
        self.url = self.site.url

    def answer(self, handler, path: str) -> None:
        parts = urlsplit(path)
        args = {k: v[0] for k, v in parse_qs(parts.query).items()}
        self.queries.append(args.get("q") or args.get("query"))
        self.keys.append(handler.headers.get("X-Api-Key") or args.get("key"))
        urls = [f"{self.url}{p}" for p in self.hits]
        if self.failing:
            status, body = 503, b'{"error": "overloaded"}'
        elif parts.path == "/search":  # SearXNG: results[].url/title/content
            status, body = 200, json.dumps({"query": args.get("q"), "results": [
                {"url": u, "title": f"hit {i}", "content": "...", "engine": "local"} for i, u in enumerate(urls)]}).encode()
        else:  # a generic API: data.items[].link
            status, body = 200, json.dumps({"data": {"items": [{"link": u, "name": f"hit {i}"} for i, u in enumerate(urls)]}}).encode()
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)

    def close(self) -> None:
        self.site.close()


class _Routes(dict):
    def __init__(self, search: SearchSite):
        super().__init__()
        self.search = search

    def get(self, path, default=None):
        if path.startswith(("/search?", "/api/v1?")):
            return lambda handler, site: self.search.answer(handler, path)
        return super().get(path, default)
