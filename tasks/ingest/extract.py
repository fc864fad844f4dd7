"""From one raw page to one clean document: extraction, language, quality, or a rejection.

HTML goes through trafilatura (main text, title, date, canonical URL); plain text (WET
records, text columns) goes straight to cleaning. Then the language is identified and the
quality filters run. A page that cannot become a document comes back as a rejection with a
reason a user can read and count.

Of trafilatura's metadata only the title, date and URL are read, with trafilatura's own
functions in its own order: the same values as `bare_extraction(with_metadata=True)`, without
the author, site name, categories, tags and licence searches, which cost about a fifth of the
extraction time and which no record keeps.
"""

from __future__ import annotations

import hashlib
import re

import trafilatura
from htmldate import find_date
from trafilatura.metadata import examine_meta, extract_meta_json, extract_title, extract_url
from trafilatura.settings import DEFAULT_CONFIG, Document, set_date_params
from trafilatura.utils import load_html

from synthq.tasks.core.config import IngestConfig
from synthq.tasks.core.records import rejection
from synthq.tasks.core import filters
from synthq.tasks.core.langid import check_language
from synthq.tasks.ingest.raw import RawPage
from synthq.tasks.core.words import split_words

STAGE = "ingest"
_SPACES = re.compile(r"\s+")
_MAX_FILE_SIZE = DEFAULT_CONFIG.getint("DEFAULT", "MAX_FILE_SIZE")  # what bare_extraction allows
_EXTENSIVE_DATES = DEFAULT_CONFIG.getboolean("DEFAULT", "EXTENSIVE_DATE_SEARCH")


def text_id(text: str) -> str:
    """Document id: hash of the normalized text, so exact duplicates share their id."""
    normalized = _SPACES.sub(" ", text.lower()).strip()
    return hashlib.sha256(normalized.encode()).hexdigest()[:16]


def _reject(page: RawPage, reason: str, detail: str, **extra) -> tuple[None, dict]:
    return None, rejection(STAGE, reason, detail, page.url, {**page.ref, **extra})


def _check_html(page: RawPage, cfg: IngestConfig) -> tuple[str, str] | None:
    data = page.html
    if len(data) > cfg.max_page_bytes:
        return "too_large", f"page is {len(data)} bytes, over ingest.max_page_bytes={cfg.max_page_bytes}"
    if not data.strip():
        return "empty_page", "the page is empty"
    if b"\x00" in data[:8192]:
        return "binary_content", "the page holds NUL bytes: not HTML"
    return None


def _metadata(tree) -> Document:
    """Title, URL and date of a page, as trafilatura's `extract_metadata` finds them (meta
    tags, then JSON-LD, then the page's own title and canonical link; htmldate for the date)."""
    meta = examine_meta(tree)
    try:
        meta = extract_meta_json(tree, meta)
    except Exception:  # trafilatura's JSON-LD parser fails on some pages; it ignores that too
        pass
    found = Document()
    found.title = meta.title or extract_title(tree)
    found.url = meta.url or extract_url(tree, None)
    found.date = find_date(tree, **set_date_params(_EXTENSIVE_DATES), url=found.url)
    found.clean_and_trim()
    return found


def extract_html(page: RawPage, cfg: IngestConfig) -> tuple[dict | None, tuple[str, str] | None]:
    """trafilatura's main text and metadata, or a (reason, detail)."""
    bad = _check_html(page, cfg)
    if bad:
        return None, bad
    try:
        tree = load_html(page.html, _MAX_FILE_SIZE)
        if tree is None:
            return None, ("no_main_text", "no HTML tree could be parsed from the page")
        meta = _metadata(tree)
        doc = trafilatura.bare_extraction(tree, url=meta.url, fast=cfg.fast)
    except Exception as e:  # trafilatura raises on some malformed trees: the page's fault, not the run's
        return None, ("extraction_failed", f"{type(e).__name__}: {e}"[:300])
    if doc is None:
        return None, ("no_main_text", "no main text found in the page")
    # a local file's canonical URL comes from the page itself; a fetched page keeps the URL it came from
    url = (meta.url or page.url) if page.url.startswith("file://") else page.url
    return {"text": (doc.text or "").strip(), "title": meta.title or page.title, "date": meta.date or "", "url": url}, None


def extract_page(page: RawPage, cfg: IngestConfig) -> tuple[dict | None, dict | None]:
    """(document, None) or (None, rejection) for one raw page."""
    if page.html is not None:
        got, bad = extract_html(page, cfg)
        if bad:
            return _reject(page, *bad)
    else:
        got = {"text": (page.text or "").strip(), "title": page.title, "date": "", "url": page.url}
    text = got["text"]
    if not text:
        return _reject(page, "no_main_text", "no main text found in the page")
    n_words = len(split_words(text))
    if n_words < cfg.quality.min_words:  # the cheapest check first: most junk is short
        return _reject(page, "too_short", f"{n_words} words, fewer than ingest.quality.min_words={cfg.quality.min_words}", text=text)
    language, score, bad = check_language(text, cfg.languages, cfg.min_language_score)
    if bad:
        return _reject(page, *bad, text=text[:2000])
    bad = filters.apply(text, cfg.quality, language=language)
    if bad:
        return _reject(page, *bad, text=text[:2000])
    return {
        "id": text_id(text),
        "url": got["url"],
        "title": got["title"],
        "text": text,
        "language": language,
        "language_score": score,
        "date": got["date"],
        "source": page.source,
        "source_offset": page.offset,
        "fetch_time": page.fetch_time,
        "n_words": n_words,
    }, None
