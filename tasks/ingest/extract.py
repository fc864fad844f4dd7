"""Main-text extraction from one HTML page with trafilatura, and the checks around it.

A page that cannot become a document is returned as a rejection with a reason a user can
read: unreadable, binary, no main text, too short.
"""

from __future__ import annotations

import hashlib
import os
import re
from datetime import datetime, timezone

import trafilatura

from tasks.core.config import IngestConfig
from tasks.core.records import rejection

STAGE = "ingest"
MAX_PAGE_BYTES = 20 * 1024 * 1024  # larger files are not web pages worth extracting


def text_id(text: str) -> str:
    """Document id: hash of the normalized text, so exact duplicates share their id."""
    normalized = re.sub(r"\s+", " ", text.lower()).strip()
    return hashlib.sha256(normalized.encode()).hexdigest()[:16]


def _read(path: str) -> tuple[bytes | None, str | None]:
    try:
        size = os.path.getsize(path)
        if size > MAX_PAGE_BYTES:
            return None, f"file is {size} bytes, over the {MAX_PAGE_BYTES} byte cap"
        with open(path, "rb") as f:
            return f.read(), None
    except OSError as e:
        return None, f"cannot read file: {e.strerror or e}"


def extract_page(path: str, cfg: IngestConfig) -> tuple[dict | None, dict | None]:
    """(document, None) or (None, rejection) for one HTML file."""
    ref = {"source": path}
    data, err = _read(path)
    if err:
        return None, rejection(STAGE, "unreadable", err, path, ref)
    if b"\x00" in data[:8192]:
        return None, rejection(STAGE, "binary_content", "file holds NUL bytes: not an HTML page", path, ref)
    if not data.strip():
        return None, rejection(STAGE, "empty_page", "file is empty", path, ref)
    try:
        doc = trafilatura.bare_extraction(data, with_metadata=True, fast=cfg.fast)
    except Exception as e:  # trafilatura raises on some malformed trees; that is the page's fault
        return None, rejection(STAGE, "extraction_failed", f"{type(e).__name__}: {e}"[:300], path, ref)
    text = (doc.text or "").strip() if doc else ""
    if not text:
        return None, rejection(STAGE, "no_main_text", "no main text found in the page", path, ref)
    n_words = len(text.split())
    if n_words < cfg.min_words:
        detail = f"{n_words} words, fewer than ingest.min_words={cfg.min_words}"
        return None, rejection(STAGE, "too_short", detail, path, {**ref, "text": text})
    return {
        "id": text_id(text),
        "url": doc.url or f"file://{os.path.abspath(path)}",
        "title": doc.title or "",
        "text": text,
        "language": doc.language or "",
        "source": path,
        "fetch_time": datetime.fromtimestamp(int(os.path.getmtime(path)), tz=timezone.utc),
        "n_words": n_words,
    }, None
