"""Hostile and awkward input files, written here: gzip-compressed pages (and a gzip bomb),
files of unknown types, byte-order marks in JSONL, seed and benchmark files."""

from __future__ import annotations

import gzip
import json

from synthq.tasks.attribute.seeds import load_seeds
from synthq.tasks.core.config import IngestConfig
from synthq.tasks.curate.decontaminate import load_benchmark
from synthq.tasks.ingest.raw import RawPage
from synthq.tasks.ingest.readers import read_units
from synthq.tasks.ingest.sources import plan
from synthq.tasks.sample import PAGES

BOM = b"\xef\xbb\xbf"


def _read(folder, cfg: IngestConfig = IngestConfig()) -> tuple[list[RawPage], list[dict]]:
    units = [u for _, _, group in plan([str(folder)], cfg, 100).shards for u in group]
    items = list(read_units(units, cfg))
    return [i for i in items if isinstance(i, RawPage)], [i for i in items if isinstance(i, dict)]


def test_gzip_pages_are_read_and_a_bomb_stops_at_the_cap(tmp_path):
    html = (PAGES / "01-sourdough-starter.html").read_bytes()
    (tmp_path / "page.html.gz").write_bytes(gzip.compress(html))
    (tmp_path / "bomb.htm.gz").write_bytes(gzip.compress(b"<p>" + b"a" * 3_000_000 + b"</p>"))  # 3 MB from about 3 KB
    (tmp_path / "broken.html.gz").write_bytes(b"\x1f\x8b\x08\x00not really gzip")
    pages, rejected = _read(tmp_path, IngestConfig(max_page_bytes=1_000_000))
    assert [p.html for p in pages] == [html] and pages[0].source.endswith("page.html.gz")
    assert not pages[0].url.endswith(".gz")
    reasons = {r["record_id"].rsplit("/", 1)[-1]: r["reason"] for r in rejected}
    assert reasons == {"bomb.htm.gz": "too_large", "broken.html.gz": "unreadable"}
    assert "decompressed" in next(r["detail"] for r in rejected if r["reason"] == "too_large")


def test_files_of_unknown_types_are_named_in_rejections(tmp_path):
    (tmp_path / "a.html").write_bytes((PAGES / "01-sourdough-starter.html").read_bytes())
    (tmp_path / "notes.txt").write_text("nothing to see")
    (tmp_path / "logo.png").write_bytes(b"\x89PNG")
    found = plan([str(tmp_path)], IngestConfig(), 100)
    assert found.summary["ignored"] == 2
    pages, rejected = _read(tmp_path)
    assert len(pages) == 1
    assert sorted((r["record_id"].rsplit("/", 1)[-1], r["reason"]) for r in rejected) == [
        ("logo.png", "unknown_file_type"), ("notes.txt", "unknown_file_type")]
    assert "not one of HTML" in rejected[0]["detail"]


def test_byte_order_marks_are_not_data(tmp_path):
    rows = [{"text": f"Row {i} of a file saved by an editor that writes a byte-order mark.", "url": f"https://e.example/{i}"} for i in range(3)]
    (tmp_path / "docs.jsonl").write_bytes(BOM + "".join(json.dumps(r) + "\n" for r in rows).encode())
    pages, rejected = _read(tmp_path)
    assert not rejected and [p.text for p in pages] == [r["text"] for r in rows]

    seeds = tmp_path / "seeds.jsonl"
    seeds.write_bytes(BOM + b'{"id": 1, "prompt": "Explain sourdough."}\n{"id": 2, "prompt": "Explain rebase."}\n')
    good, bad = load_seeds(str(seeds))
    assert [s["id"] for s in good] == ["1", "2"] and not bad

    bench = tmp_path / "bench.jsonl"
    bench.write_bytes(BOM + b'{"prompt": "What is 2+2?"}\n')
    csv = tmp_path / "bench.csv"
    csv.write_bytes(BOM + b"prompt\nWhat is 3+3?\n")
    assert load_benchmark(str(bench), "prompt") == ["What is 2+2?"]
    assert load_benchmark(str(csv), "prompt") == ["What is 3+3?"]
