"""Pages named by URL, as documents: what other stages call to ground on the live web (the
attribute stage's search mode). Each URL goes through the crawler (robots.txt, pacing, size
caps, the private-address guard), then extraction, language and quality filters exactly like
an ingested page.

    outcomes = fetch_documents(urls, cfg.ingest, source="search")
    outcomes[url]  # a documents row, or a rejection row saying why the page is not one
"""

from __future__ import annotations

from synthq.tasks.core.config import IngestConfig
from synthq.tasks.ingest.crawl import crawl
from synthq.tasks.ingest.extract import extract_page
from synthq.tasks.ingest.raw import RawPage
from synthq.tasks.ingest.robots import normalize_url


def _key(url: str) -> str:
    try:
        return normalize_url(url)
    except ValueError:
        return url


def fetch_documents(urls: list[str], cfg: IngestConfig, source: str, **crawler_options) -> dict[str, dict]:
    """URL -> documents row or rejection row, for each URL asked (one crawl for all, links not
    followed). A page that a redirect moved is paired with the URL that led to it."""
    wanted = list(dict.fromkeys(urls))
    if not wanted:
        return {}
    crawl_cfg = cfg.crawl.model_copy(update={"max_depth": 0, "follow_links": False, "sitemaps": False, "max_pages": len(wanted)})
    by_key = {_key(u): u for u in wanted}
    outcomes: dict[str, dict] = {}
    moved: list[dict] = []
    for item in crawl(wanted, crawl_cfg, **crawler_options):
        if isinstance(item, RawPage):
            item.source = source
            doc, rejected = extract_page(item, cfg)
            outcome = doc or rejected
            asked = by_key.get(_key(item.url))
        else:
            outcome, asked = item, by_key.get(_key(item["record_id"]), item["record_id"])
        if asked is None or asked in outcomes:
            moved.append(outcome)
        else:
            outcomes[asked] = outcome
    left = [u for u in wanted if u not in outcomes]
    outcomes.update(zip(left, moved))  # redirected pages, in the order asked
    return outcomes
