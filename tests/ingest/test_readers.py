"""Reading units into raw pages: WARC/WET, HTML files, JSONL/Parquet rows, HF datasets, remote
files; every record comes out as a page, a rejection or a counted non-document record."""

from __future__ import annotations

import gzip
import io
import json
import uuid
from datetime import datetime, timezone

import fsspec
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from warcio.archiveiterator import ArchiveIterator
from warcio.statusandheaders import StatusAndHeaders
from warcio.warcwriter import WARCWriter

from synthq.tasks.core.config import IngestConfig
from synthq.tasks.ingest.raw import RawPage
from synthq.tasks.ingest.readers import BOM, read_units
from synthq.tasks.ingest.sources import plan

CFG = IngestConfig()
DATE = "2025-03-04T05:06:07Z"
PAGE = b"<html><head><title>T</title></head><body><p>" + b"Words of a page. " * 40 + b"</p></body></html>"


def _http(status: str, ctype: str) -> StatusAndHeaders:
    return StatusAndHeaders(status, [("Content-Type", ctype)], protocol="HTTP/1.1")


def _write(out, gz: bool, records: list[tuple]) -> None:
    """records: (type, uri, payload, http headers or None)."""
    writer = WARCWriter(out, gzip=gz)
    writer.write_record(writer.create_warcinfo_record("crawl.warc", {"software": "test"}))
    for rec_type, uri, payload, http in records:
        headers = {"WARC-Date": DATE} if rec_type != "request" else None
        record = writer.create_warc_record(uri, rec_type, payload=io.BytesIO(payload), http_headers=http, warc_headers_dict=headers)
        writer.write_record(record)


def crawl_records() -> list[tuple]:
    return [
        ("request", "https://a.example/", b"", StatusAndHeaders("GET / HTTP/1.1", [("Host", "a.example")], is_http_request=True)),
        ("response", "https://a.example/", PAGE, _http("200 OK", "text/html; charset=utf-8")),
        ("metadata", "https://a.example/", b"fetchTimeMs: 12\n", None),
        ("response", "https://a.example/gone", b"<p>not here</p>", _http("404 Not Found", "text/html")),
        ("response", "https://a.example/logo.png", b"\x89PNG\r\n\x1a\n", _http("200 OK", "image/png")),
        ("response", "https://b.example/x", PAGE.replace(b"T<", b"X<"), _http("200 OK", "application/xhtml+xml")),
    ]


def warc_file(path, gz: bool = True, records: list[tuple] | None = None) -> str:
    with open(path, "wb") as out:
        _write(out, gz, crawl_records() if records is None else records)
    return str(path)


def _read(path_or_uri: str, cfg: IngestConfig = CFG, kind: str = "warc") -> tuple[list, list, dict]:
    stats: dict = {}
    items = list(read_units([{"kind": kind, "uri": path_or_uri, "start": 0, "stop": -1, "stamp": ""}], cfg, stats))
    return [i for i in items if isinstance(i, RawPage)], [i for i in items if isinstance(i, dict)], stats


@pytest.mark.parametrize("gz, name", [(True, "a.warc.gz"), (False, "a.warc")])
def test_warc_pages_rejections_and_counted_records(tmp_path, gz, name):
    path = warc_file(tmp_path / name, gz)
    pages, rejected, stats = _read(path)
    assert [p.url for p in pages] == ["https://a.example/", "https://b.example/x"]
    assert pages[0].html == PAGE and pages[0].text is None and pages[0].source == path
    assert pages[0].fetch_time == datetime(2025, 3, 4, 5, 6, 7, tzinfo=timezone.utc)
    assert [(r["reason"], r["detail"]) for r in rejected] == [("warc_http_status", "HTTP 404"), ("warc_not_html", "Content-Type image/png")]
    assert all(json.loads(r["record"])["offset"] > 0 and "payload" not in r["record"] for r in rejected)
    assert stats == {"warcinfo": 1, "request": 1, "metadata": 1}
    with open(path, "rb") as f:  # the offset is where the record starts in the file
        f.seek(pages[1].offset)
        record = next(iter(ArchiveIterator(f)))
        assert record.rec_headers.get_header("WARC-Target-URI") == "https://b.example/x"


def test_wet_conversion_records_are_plain_text(tmp_path):
    text = "Plain text of a page, already extracted by the crawler."
    records = [("conversion", "https://a.example/", text.encode(), None), ("conversion", "https://b.example/", "é".encode(), None)]
    for path in (tmp_path / "a.wet.gz", tmp_path / "b.wet"):
        pages, rejected, stats = _read(warc_file(path, str(path).endswith(".gz"), records))
        assert [(p.url, p.text, p.html) for p in pages] == [("https://a.example/", text, None), ("https://b.example/", "é", None)]
        assert rejected == [] and stats == {"warcinfo": 1}


def test_truncated_gzip_warc_ends_with_a_corrupt_rejection(tmp_path):
    data = open(warc_file(tmp_path / "full.warc.gz"), "rb").read()
    cut = tmp_path / "cut.warc.gz"
    cut.write_bytes(data[: len(data) * 2 // 3])
    pages, rejected, _ = _read(str(cut))
    assert len(pages) == 1 and rejected[-1]["reason"] == "warc_corrupt"
    assert "rest of the file is skipped" in rejected[-1]["detail"]
    assert json.loads(rejected[-1]["record"])["offset"] > 0


def test_truncated_plain_warc_and_garbage_never_raise(tmp_path):
    data = open(warc_file(tmp_path / "full.warc", gz=False), "rb").read()
    end = data.index(b"https://b.example/x") + 400
    (tmp_path / "cut.warc").write_bytes(data[:end])
    pages, rejected, _ = _read(str(tmp_path / "cut.warc"))
    assert len(pages) == 1 and rejected[-1]["reason"] == "warc_corrupt" and "Content-Length" in rejected[-1]["detail"]
    for junk in (b"\x00\x01 not a warc" * 20, gzip.compress(b"hello, not a warc\r\n\r\n"), b"WARC/1.0\r\nWARC-Type"):
        (tmp_path / "junk.warc.gz").write_bytes(junk)
        pages, rejected, _ = _read(str(tmp_path / "junk.warc.gz"))
        assert pages == [] and [r["reason"] for r in rejected] == ["warc_corrupt"]


def test_oversized_records_and_files_are_rejected_unread(tmp_path):
    cfg = IngestConfig(max_page_bytes=200)
    pages, rejected, _ = _read(warc_file(tmp_path / "a.warc.gz"), cfg)
    assert pages == [] and {r["reason"] for r in rejected} == {"too_large", "warc_http_status", "warc_not_html"}
    (tmp_path / "big.html").write_bytes(PAGE)
    pages, rejected, _ = _read(str(tmp_path / "big.html"), cfg, kind="html")
    assert pages == [] and rejected[0]["reason"] == "too_large" and "max_page_bytes=200" in rejected[0]["detail"]


def test_html_files_and_unreadable_ones(tmp_path):
    (tmp_path / "p.html").write_bytes(PAGE)
    pages, rejected, _ = _read(str(tmp_path / "p.html"), kind="html")
    assert pages[0].url == f"file://{tmp_path}/p.html" and pages[0].html == PAGE and pages[0].fetch_time.tzinfo
    pages, rejected, _ = _read(str(tmp_path / "gone.html"), kind="html")
    assert pages == [] and rejected[0]["reason"] == "unreadable"


def _jsonl_lines() -> list[str]:
    return [
        json.dumps({"text": "first text", "url": "https://t.example/1", "title": "One"}),
        "{not json",
        "",
        json.dumps({"text": ""}),
        json.dumps({"html": "<p>from html</p>"}),
        json.dumps(["a", "list"]),
        json.dumps({"text": 7, "html": None}),
    ]


@pytest.mark.parametrize("name", ["t.jsonl", "t.jsonl.gz"])
def test_jsonl_rows_bad_lines_and_empty_text(tmp_path, name):
    body = ("\n".join(_jsonl_lines()) + "\n").encode()
    (tmp_path / name).write_bytes(gzip.compress(body) if name.endswith(".gz") else body)
    found = plan([str(tmp_path / name)], CFG, shard_size=100)
    items = list(read_units(found.shards[0][2], CFG))
    pages = [i for i in items if isinstance(i, RawPage)]
    reasons = [(i["reason"], i["record_id"]) for i in items if isinstance(i, dict)]
    path = str(tmp_path / name)
    assert [(p.url, p.text, p.html, p.title, p.offset) for p in pages] == [
        ("https://t.example/1", "first text", None, "One", 0),
        (f"file://{path}#4", None, b"<p>from html</p>", "", 4),
    ]
    assert reasons == [("bad_json", f"{path}:2"), ("empty_text", f"{path}:3"), ("bad_json", f"{path}:6"), ("empty_text", f"{path}:6")]
    assert json.loads(items[1]["record"])["line"] == "{not json"


def test_jsonl_row_range(tmp_path):
    (tmp_path / "t.jsonl").write_text("".join(json.dumps({"text": f"row {i}"}) + "\n" for i in range(10)))
    found = plan([str(tmp_path)], CFG, shard_size=4)
    read = [[p.text for p in read_units(units, CFG)] for _, _, units in found.shards]
    assert read == [[f"row {i}" for i in range(a, b)] for a, b in ((0, 4), (4, 8), (8, 10))]


def test_jsonl_shards_start_reading_at_their_own_first_line(tmp_path):
    """Each unit carries the byte where its first line begins (BOM, CRLF, blank lines and
    multi-byte text included); reading starts there, and a file rewritten since it was planned
    (the offset no longer starts a line) is read from its first line instead."""
    lines = [json.dumps({"text": f"row {i} é✓"}, ensure_ascii=False) if i % 5 else "" for i in range(23)]
    path = tmp_path / "t.jsonl"
    path.write_bytes(BOM + "\r\n".join(lines).encode() + b"\r\n")
    found = plan([str(tmp_path)], CFG, shard_size=4)
    units = [u for _, _, us in found.shards for u in us]
    assert [u["offset"] for u in units][:2] == [0, len(BOM) + len(("\r\n".join(lines[:4]) + "\r\n").encode())]
    expected = [[f"row {i} é✓" for i in range(u["start"], u["stop"]) if i % 5] for u in units]
    assert [[p.text for p in read_units([u], CFG)] for u in units] == expected
    junk = path.read_bytes()[: units[2]["offset"]].replace(b"row", b"{{{")  # lines before shard 2, no longer JSON
    path.write_bytes(junk + path.read_bytes()[len(junk):])
    assert [p.text for p in read_units([units[2]], CFG)] == expected[2]  # started at its offset: never saw them
    path.write_bytes(b"x" + path.read_bytes())  # rewritten since planned: shard 1's offset now falls inside a line
    read = [p for p in read_units([units[1]], CFG)]
    assert [p.offset for p in read if isinstance(p, RawPage)] == [i for i in range(4, 8) if i % 5]  # read from line 0


def test_parquet_rows_across_row_groups(tmp_path):
    rows = {"html": [f"<p>{i}</p>" for i in range(25)], "url": [f"https://p.example/{i}" for i in range(25)], "other": list(range(25))}
    pq.write_table(pa.table(rows), tmp_path / "p.parquet", row_group_size=7)
    found = plan([str(tmp_path)], CFG, shard_size=10)
    read = [[(p.offset, p.url, p.html) for p in read_units(units, CFG)] for _, _, units in found.shards]
    assert read == [[(i, f"https://p.example/{i}", f"<p>{i}</p>".encode()) for i in range(a, b)] for a, b in ((0, 10), (10, 20), (20, 25))]


def test_hf_dataset_rows_and_splits(tmp_path):
    from datasets import Dataset, DatasetDict

    texts = ["alpha text", "", "gamma text"]
    DatasetDict({"train": Dataset.from_dict({"text": texts}), "test": Dataset.from_dict({"text": ["test text"]})}).save_to_disk(str(tmp_path / "dd"))
    found = plan([f"hf:{tmp_path / 'dd'}"], CFG, shard_size=100)
    items = list(read_units(found.shards[0][2], CFG))
    pages = [i for i in items if isinstance(i, RawPage)]
    uri = f"hf:{tmp_path / 'dd'}"
    assert [(p.text, p.url, p.offset) for p in pages] == [("test text", f"{uri}#test[0]", 0), ("alpha text", f"{uri}#train[0]", 0), ("gamma text", f"{uri}#train[2]", 2)]
    assert [i["reason"] for i in items if isinstance(i, dict)] == ["empty_text"]


def test_remote_files_through_fsspec(tmp_path):
    fs = fsspec.filesystem("memory")
    root = f"/synthq-{uuid.uuid4().hex}"
    fs.pipe(f"{root}/cc/a.warc.gz", open(warc_file(tmp_path / "a.warc.gz"), "rb").read())
    fs.pipe(f"{root}/t.jsonl.gz", gzip.compress(b'{"text": "remote row"}\n'))
    fs.pipe(f"{root}/p.html", PAGE)
    try:
        found = plan([f"memory://{root}"], CFG, shard_size=10)
        stats: dict = {}
        pages = [p for _, _, units in found.shards for p in read_units(units, CFG, stats) if isinstance(p, RawPage)]
        urls = {f"memory://{root}/p.html", f"memory://{root}/t.jsonl.gz#0", "https://a.example/", "https://b.example/x"}
        assert {p.url for p in pages} == urls and len(pages) == len(urls)
        assert stats == {"warcinfo": 1, "request": 1, "metadata": 1}
    finally:
        fs.rm(root, recursive=True)


def test_every_record_is_a_page_a_rejection_or_counted(tmp_path):
    warc_file(tmp_path / "a.warc.gz")
    (tmp_path / "t.jsonl").write_text("\n".join(_jsonl_lines()) + "\n")
    (tmp_path / "p.html").write_bytes(PAGE)
    stats: dict = {}
    items = [i for _, _, units in plan([str(tmp_path)], CFG, 3).shards for i in read_units(units, CFG, stats)]
    warc_records = 1 + len(crawl_records())
    json_records = len([line for line in _jsonl_lines() if line])
    assert len(items) + sum(stats.values()) == warc_records + json_records + 1
