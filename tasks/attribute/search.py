"""Web search providers for `attribute.retrieval: search`: a query in, ranked hits (url, title) out.

- `searxng`: a SearXNG instance's JSON API, `GET {url}/search?q=...&format=json`, hits in
  `results[].url/title/content` (the open, self-hostable default).
- `http`: any JSON search API: `template` is the request URL with `{query}` (and `{api_key}`),
  `results_path` the dotted path to the hit list, `url_field`/`title_field` the hit's fields.

The API key comes from the environment variable `api_key_env` names, is sent in the URL or in
`api_key_header`, and never appears in a log, an error or a record: errors show the URL with the
key masked. Timeouts, dropped connections, 429 and 5xx are retried with backoff; a search that
still fails raises `ServiceError`, which fails the shard for a rerun (the seed is not bad data).
"""

from __future__ import annotations

import logging
import os
import random
import time
from dataclasses import dataclass
from urllib.parse import quote_plus, urlsplit

import httpx

from synthq.tasks.core.config import SearchConfig
from synthq.tasks.core.errors import ConfigError, ServiceError

USER_AGENT = "synthq/0.1 (attributed grounding; search)"
MASK = "***"


_MASKED: set[str] = set()  # keys of every provider made in this process


def masked(text: str) -> str:
    """The text with every known search API key (plain or URL-encoded) replaced by ***."""
    for key in _MASKED:
        text = text.replace(key, MASK).replace(quote_plus(key), MASK)
    return text


class _MaskKeys(logging.Filter):
    """httpx logs each request's URL at INFO: a key in a URL template must not reach the log."""

    def filter(self, record: logging.LogRecord) -> bool:
        if _MASKED:
            message = record.getMessage()
            if masked(message) != message:
                record.msg, record.args = masked(message), ()
        return True


logging.getLogger("httpx").addFilter(_MaskKeys())


@dataclass
class Hit:
    url: str
    title: str
    rank: int  # 1 = the provider's top hit


class SearchProvider:
    def __init__(self, cfg: SearchConfig, backoff_s: float = 1.0):
        self.cfg, self.backoff_s = cfg, backoff_s
        self.key = self._key()
        if self.key:
            _MASKED.add(self.key)
        if cfg.provider == "searxng" and not cfg.url:
            raise ConfigError("attribute.retrieval=search with provider searxng needs attribute.search.url (the SearXNG base URL).")
        if cfg.provider == "http" and (not cfg.template or "{query}" not in cfg.template):
            raise ConfigError("attribute.search.provider=http needs attribute.search.template: a URL with {query}.")

    def _key(self) -> str | None:
        name = self.cfg.api_key_env
        if not name:
            return None
        key = os.environ.get(name)
        if not key:
            raise ConfigError(f"attribute.search.api_key_env names {name}, which is not set in the environment.")
        return key

    @property
    def name(self) -> str:
        """What demonstrations record as their provider: kind and host, never a key."""
        where = self.cfg.url if self.cfg.provider == "searxng" else self.cfg.template
        return f"{self.cfg.provider}:{urlsplit(where).netloc}"

    def _request(self, query: str) -> tuple[str, dict | None, dict]:
        headers = {"User-Agent": USER_AGENT, "Accept": "application/json"}
        if self.key and self.cfg.api_key_header:
            headers[self.cfg.api_key_header] = self.cfg.api_key_prefix + self.key
        if self.cfg.provider == "searxng":
            return self.cfg.url.rstrip("/") + "/search", {"q": query, "format": "json"}, headers
        url = self.cfg.template.replace("{query}", quote_plus(query)).replace("{api_key}", quote_plus(self.key or ""))
        return url, None, headers

    def _masked(self, text: str) -> str:
        return masked(text)

    def search(self, query: str) -> list[Hit]:
        """The top `hits` results, best first; ServiceError when the API keeps failing."""
        url, params, headers = self._request(query)
        last = ""
        for attempt in range(self.cfg.retries + 1):
            if attempt:
                time.sleep(self.backoff_s * 2 ** (attempt - 1) * random.uniform(0.5, 1.5))
            try:
                response = httpx.get(url, params=params, headers=headers, timeout=self.cfg.timeout_s, trust_env=False)
            except httpx.TransportError as e:  # timeouts, refused and dropped connections
                last = f"{type(e).__name__}: {e}"
                continue
            if response.status_code == 429 or response.status_code >= 500:
                last = f"HTTP {response.status_code}"
                continue
            if response.status_code != 200:
                raise ConfigError(self._masked(f"The search API answered HTTP {response.status_code} to {response.request.url}: "
                                               "check attribute.search (URL, key, template)."))
            try:
                return self._hits(response.json())
            except ValueError as e:
                last = f"not a JSON search answer ({e})"
        raise ServiceError(self._masked(f"search for {query!r} failed after {self.cfg.retries + 1} attempts ({last}) at {url}"))

    def _hits(self, answer) -> list[Hit]:
        found = answer
        for part in (self.cfg.results_path.split(".") if self.cfg.results_path else []):
            found = found.get(part) if isinstance(found, dict) else None
        if found is None:
            found = []  # no hit list: most APIs leave it out when nothing matched
        if not isinstance(found, list):
            raise ValueError(f"'{self.cfg.results_path}' is not a list")
        hits = []
        for hit in found:
            url = hit.get(self.cfg.url_field) if isinstance(hit, dict) else None
            if isinstance(url, str) and url.startswith(("http://", "https://")):
                title = hit.get(self.cfg.title_field)
                hits.append(Hit(url, title if isinstance(title, str) else "", len(hits) + 1))
            if len(hits) == self.cfg.hits:
                break
        return hits
