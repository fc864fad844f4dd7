"""The ingest flow on real Prefect and Ray over every kind of source at once: HTML files, a
JSONL table, a WARC file and a crawl of a local site; then a rerun that adds nothing, and
an append that drops a near-copy of an earlier document."""

from __future__ import annotations

import functools
import json
import shutil
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from io import BytesIO

import pytest
from warcio.statusandheaders import StatusAndHeaders
from warcio.warcwriter import WARCWriter

from datetime import datetime, timezone

from synthq.tasks.core.config import IngestConfig, load_config
from synthq.tasks.ingest.extract import extract_page
from synthq.tasks.ingest.raw import RawPage
from synthq.tasks.core.lake import Lake
from synthq.tasks.sample import PAGES

FOLDER = ["01-sourdough-starter.html", "37-login-wall.html"]
WARC = "05-git-rebase-vs-merge.html"
CRAWLED = ["08-budgeting-50-30-20.html", "01-sourdough-starter.html"]  # the second is also in FOLDER


@pytest.fixture
def site(tmp_path):
    """The sample pages served on loopback, with an index page linking two of them."""
    root = tmp_path / "site"
    root.mkdir()
    for name in CRAWLED:
        shutil.copy(PAGES / name, root / name)
    (root / "index.html").write_text("<html><body>" + "".join(f'<a href="/{n}">{n}</a>' for n in CRAWLED) + "</body></html>")

    class Quiet(SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(root)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}/index.html"
    server.shutdown()
    server.server_close()


def _warc(path, page: str) -> None:
    with open(path, "wb") as out:
        writer = WARCWriter(out, gzip=True)
        headers = StatusAndHeaders("200 OK", [("Content-Type", "text/html; charset=utf-8")], protocol="HTTP/1.1")
        body = (PAGES / page).read_bytes()
        writer.write_record(writer.create_warc_record("https://git.example/rebase", "request", payload=BytesIO(b"GET / HTTP/1.1\r\n\r\n")))
        writer.write_record(writer.create_warc_record("https://git.example/rebase", "response", payload=BytesIO(body), http_headers=headers))


def _sources(tmp_path, site: str) -> list[str]:
    folder = tmp_path / "html"
    folder.mkdir()
    for name in FOLDER:
        shutil.copy(PAGES / name, folder / name)
    _warc(tmp_path / "cc.warc.gz", WARC)
    rows = [json.dumps({"url": "https://notes.example/linreg", "text": _article()}), "{not json"]
    (tmp_path / "notes.jsonl").write_text("\n".join(rows) + "\n")
    return [str(folder), str(tmp_path / "cc.warc.gz"), str(tmp_path / "notes.jsonl"), site]


def _article() -> str:
    html = (PAGES / "29-intro-linear-regression.html").read_bytes()
    doc, _ = extract_page(RawPage("file:///x", "t", datetime.now(timezone.utc), html=html), IngestConfig())
    return doc["text"]


def _config(lake_dir: str, sources: list[str]):
    return load_config(None, {
        "lake": lake_dir, "shard_size": 2, "ingest.sources": sources,
        "ingest.crawl.allow_private": True, "ingest.crawl.per_host_delay_s": 0.0,
    })


def test_every_source_then_rerun_then_append(prefect_server, ray_local, lake_dir, tmp_path, site):
    from synthq.flows.ingest import ingest_flow

    cfg = _config(lake_dir, _sources(tmp_path, site))
    report = ingest_flow(cfg)
    lake = Lake(lake_dir)
    docs = lake.read("documents").to_pylist()
    by_source = {d["source"] for d in docs}
    assert "crawl" in by_source and any(s.endswith("cc.warc.gz") for s in by_source)
    assert any(s.endswith("notes.jsonl") for s in by_source)
    warc_doc = next(d for d in docs if d["source"].endswith("cc.warc.gz"))
    assert warc_doc["url"] == "https://git.example/rebase" and warc_doc["source_offset"] > 0
    # 1 + 1 + 1 + 2 crawled (the index page is too short) minus the sourdough page seen twice
    assert report["kept"] == 4, report
    reasons = report["reasons"]
    assert reasons["duplicate"] == 1 and reasons["bad_json"] == 1 and reasons["too_short"] >= 2  # login wall, index
    assert len({d["id"] for d in docs}) == len(docs)

    before = lake.read("documents")
    again = ingest_flow(cfg)  # the same sources again: every shard is finished, nothing is added
    assert again == report and lake.read("documents").equals(before)

    near = tmp_path / "later"
    near.mkdir()
    html = (PAGES / WARC).read_text()
    answer = html.index("Both commands integrate")
    (near / "copy.html").write_text(html[:answer] + "In short: " + html[answer:])
    shutil.copy(PAGES / "16-exposure-triangle.html", near / "new.html")
    later = ingest_flow(_config(lake_dir, [str(near)]))
    assert later["kept"] == report["kept"] + 1  # earlier documents stay; only the new page is added
    assert later["reasons"]["near_duplicate"] == 1
    near_dup = next(r for r in lake.read("documents", rejected=True).to_pylist() if r["reason"] == "near_duplicate")
    assert "copy.html" in near_dup["record"] and warc_doc["id"] in near_dup["detail"]
