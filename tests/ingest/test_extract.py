"""One raw page to one document: extraction, language, quality, and every rejection reason."""

from datetime import datetime, timezone

import pytest

from synthq.tasks.core.config import IngestConfig
from synthq.tasks.ingest.extract import extract_page, text_id
from synthq.tasks.ingest.raw import RawPage
from synthq.tasks.sample import PAGES

CFG = IngestConfig()
NOW = datetime(2026, 11, 25, tzinfo=timezone.utc)


def _page(html: bytes | None = None, text: str | None = None, url: str = "file:///tmp/p.html") -> RawPage:
    return RawPage(url=url, source="test", fetch_time=NOW, html=html, text=text, offset=7)


def test_sample_page_main_text_without_chrome():
    doc, rej = extract_page(_page((PAGES / "01-sourdough-starter.html").read_bytes()), CFG)
    assert rej is None
    assert doc["url"].startswith("https://kitchen-notes.example/")  # the page's canonical URL
    assert doc["n_words"] > 300 and doc["language"] == "en" and doc["language_score"] > 0.9
    assert "starter" in doc["text"].lower()
    assert "Sponsored" not in doc["text"] and "Privacy" not in doc["text"]
    assert doc["source"] == "test" and doc["source_offset"] == 7 and doc["fetch_time"] == NOW
    assert doc["id"] == text_id(doc["text"].upper() + "  ")  # case and spacing do not change the id


def test_fetched_page_keeps_the_url_it_came_from():
    html = (PAGES / "01-sourdough-starter.html").read_bytes()
    doc, _ = extract_page(_page(html, url="https://mirror.example/a"), CFG)
    assert doc["url"] == "https://mirror.example/a"


def test_plain_text_goes_straight_to_cleaning():
    text = (
        "Rebasing rewrites the history of a branch so that it starts from the tip of another one. "
        "Merging keeps both histories and records where they joined, which is safer on shared branches. "
        "Teams that prefer a linear history rebase their feature branches before they open a pull request, "
        "and they never rebase commits that other people have already pulled from the server."
    )
    doc, rej = extract_page(_page(text=text, url="https://git.example/rebase"), CFG)
    assert rej is None and doc["text"] == text and doc["language"] == "en"


@pytest.mark.parametrize(
    "content, reason",
    [
        (b"", "empty_page"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)), "binary_content"),
        (b"<html><body><script>var a=1;</script></body></html>", "no_main_text"),
        (b"<html><body><p>Only a few words here.</p></body></html>", "too_short"),
        (b"<<<>>><html<body><p>broken <b>tags</i> everywhere</div>", None),
    ],
)
def test_bad_pages_are_rejected_with_reason(content, reason):
    doc, rej = extract_page(_page(content), CFG)
    assert doc is None
    if reason:
        assert rej["reason"] == reason
    assert rej["stage"] == "ingest" and rej["detail"] and rej["record_id"] == "file:///tmp/p.html"


def test_oversized_page_is_rejected_unparsed():
    cfg = IngestConfig(max_page_bytes=1000)
    doc, rej = extract_page(_page(b"<p>" + b"word " * 1000 + b"</p>"), cfg)
    assert doc is None and rej["reason"] == "too_large" and "max_page_bytes=1000" in rej["detail"]


def test_language_allow_list():
    german = (
        "Der Sauerteig braucht Zeit, Wärme und regelmäßiges Füttern mit Mehl und Wasser. Am ersten Tag "
        "verrührt man gleiche Teile Roggenmehl und lauwarmes Wasser in einem sauberen Glas und deckt es locker ab. "
        "Nach etwa vierundzwanzig Stunden zeigen sich die ersten Bläschen, dann nimmt man die Hälfte weg und füttert "
        "erneut. Ein kräftiger Ansatz verdoppelt sein Volumen innerhalb von sechs Stunden und riecht angenehm säuerlich, "
        "ein wenig nach Joghurt. Wer im Winter backt, stellt das Glas in die Nähe der Heizung, aber nicht direkt darauf."
    )
    doc, rej = extract_page(_page(text=german), CFG)
    assert doc is None and rej["reason"] == "language_not_allowed" and "de" in rej["detail"]
    doc, rej = extract_page(_page(text=german), IngestConfig(languages=[]))
    assert rej is None and doc["language"] == "de"


def test_quality_filter_rejection_is_named():
    spam = "\n".join(["Buy now"] * 80)
    doc, rej = extract_page(_page(text=spam), CFG)
    assert doc is None and rej["reason"] not in ("too_short", "no_main_text")
    assert rej["detail"]


JSON_LD_PAGE = b"""<html><head><title>Fallback title | Site</title>
<script type="application/ld+json">{"@context": "https://schema.org", "@type": "NewsArticle", "headline": "The headline from JSON-LD",
"datePublished": "2024-03-05", "author": {"@type": "Person", "name": "Ada Writer"}}</script>
<link rel="canonical" href="https://news.example/story"></head><body><article>
<h1>The headline</h1><p>""" + b"A paragraph of the story that says something about the weather and the town. " * 12 + b"""</p>
</article><footer><a href="/about">About</a> Licensed CC BY-SA</footer></body></html>"""
OG_PAGE = b"""<html><head><meta property="og:title" content="Open Graph title">
<meta property="og:url" content="https://og.example/page"><meta name="date" content="2023-11-02">
<meta charset="latin-1"></head><body><div class="content"><p>""" + "Caf\xe9 cr\xe8me and more words here. ".encode("latin-1") * 20 + b"""</p></div></body></html>"""


@pytest.mark.parametrize("fast", [False, True])
def test_extraction_matches_trafilatura_with_metadata(fast):
    """Ingest reads only the title, date and URL of trafilatura's metadata: each page must give
    exactly what `bare_extraction(with_metadata=True)` gives for the text and those fields."""
    import trafilatura

    from synthq.tasks.ingest.extract import extract_html

    pages = [p.read_bytes() for p in sorted(PAGES.glob("*.html"))] + [JSON_LD_PAGE, OG_PAGE]
    compared = 0
    for html in pages:
        full = trafilatura.bare_extraction(html, with_metadata=True, fast=fast)
        got, bad = extract_html(_page(html), IngestConfig(fast=fast))
        if full is None:
            assert bad and bad[0] == "no_main_text"
            continue
        expected = {"text": full.text.strip(), "title": full.title, "date": full.date or "", "url": full.url or "file:///tmp/p.html"}
        assert got == expected
        compared += 1
    assert compared >= len(pages) - 2
