"""What every ingest source yields: one raw page (HTML or plain text) with its provenance.

Readers (files, tables, WARC/WET, Hugging Face datasets, the crawler) turn their input into
`RawPage`s, or into rejection rows (`synthq.tasks.core.records.rejection`) for input they cannot
read. Extraction and cleaning take it from there, whatever the source was.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass
class RawPage:
    url: str  # the page's URL, or file:// path when it has none
    source: str  # input file, WARC/WET file, dataset path, or "crawl"
    fetch_time: datetime  # timezone-aware (UTC)
    html: bytes | None = None  # HTML to extract main text from ...
    text: str | None = None  # ... or plain text that goes straight to cleaning (WET, text columns)
    offset: int | None = None  # WARC record byte offset, or row/line number in a table file
    title: str = ""  # known title (tables may carry one); extraction fills it for HTML

    @property
    def ref(self) -> dict:
        """Provenance, as kept in a rejection's record."""
        return {"url": self.url, "source": self.source, "offset": self.offset}
