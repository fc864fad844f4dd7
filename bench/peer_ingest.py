"""Ingest against DataTrove's own pipeline, on the same pages and the same cores.

Pages: the bundled sample pages (real page chrome) written as WARC files, one file per copy;
every copy after the first carries a one-line edit per page, so copies are near duplicates
that MinHash must drop. Both sides read the same WARC files:

- synthq: `ingest_flow` (real Prefect and Ray, every core): WARC reading, extraction,
  language id, quality filters, MinHash signatures and LSH dedup, Parquet shards in the lake.
- DataTrove (its own virtual environment, installed from the package registry on first run
  into ~/.cache/synthq/bench/peers): WarcReader -> Trafilatura -> Gopher repetition and quality
  filters -> MinHash dedup in its four steps, `tasks` = `workers` = the cores
  (bench/peers/datatrove_pipeline.py). It runs without a language filter: its LanguageFilter
  downloads a fastText model on first use and this machine is offline; synthq's language id
  is in its own time.

Each side runs once on one copy first (imports, Ray workers, Prefect's server), then is timed
on all copies. Printed: pages/s per core, documents kept, the ratios; and the extraction F1 of
each on bench/extraction_quality.py's held-out news pages (same scoring).

    .venv/bin/python bench/peer_ingest.py [--copies 20] [--limit 0] [--smoke]
"""

from __future__ import annotations

import argparse
import io
import json
import os
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

from warcio.statusandheaders import StatusAndHeaders
from warcio.warcwriter import WARCWriter

import smoke
from extraction_quality import fetch_pages, held_out, score
from peers.envs import peer_python, run_peer

from synthq.tasks.core.config import IngestConfig, load_config
from synthq.tasks.core.lake import Lake
from synthq.tasks.ingest.extract import extract_html
from synthq.tasks.ingest.raw import RawPage
from synthq.tasks.sample import PAGES

# with what its extras leave out and its steps need here: lxml's cleaner (trafilatura 1.x) and
# spaCy (its English word tokenizer, no model download)
PEER = ["datatrove[io,processing]==0.10.1", "lxml_html_clean==0.4.6", "spacy==3.8.18"]
PEER_ENV = "datatrove-0.10.1"
PEER_SCRIPT = Path(__file__).resolve().parent / "peers" / "datatrove_pipeline.py"


def write_warcs(folder: Path, copies: int) -> int:
    """One WARC file per copy of the sample pages; copy k > 0 edits one line of each page."""
    folder.mkdir(parents=True)
    pages = sorted(PAGES.glob("*.html"))
    for k in range(copies):
        with (folder / f"copy-{k:03d}.warc.gz").open("wb") as f:
            writer = WARCWriter(f, gzip=True)
            for page in pages:
                html = page.read_bytes()
                if k:
                    html = html.replace(b"</h1>", f"</h1><p>Edition {k} of this page.</p>".encode(), 1)
                headers = StatusAndHeaders("200 OK", [("Content-Type", "text/html; charset=utf-8")], protocol="HTTP/1.1")
                url = f"https://pages.example/{k}/{page.stem}"
                writer.write_record(writer.create_warc_record(url, "response", payload=io.BytesIO(html), http_headers=headers))
    return copies * len(pages)


def synthq_ingest(warcs: Path, lake: Path) -> tuple[float, dict]:
    from synthq.flows.ingest import ingest_flow

    start = time.perf_counter()
    ingest_flow(load_config(None, {"lake": str(lake), "ingest.sources": str(warcs), "shard_size": 1000}))
    seconds = time.perf_counter() - start
    return seconds, Lake(str(lake)).report("documents")


def datatrove_ingest(python: Path, warcs: Path, work: Path, cores: int) -> dict:
    return run_peer(python, PEER_SCRIPT, "pipeline", "--input", str(warcs), "--work", str(work), "--cores", str(cores),
                    what="DataTrove's pipeline")


def extraction_f1(python: Path | None, work: Path, limit: int) -> tuple[int, float, float | None]:
    pairs = held_out(fetch_pages(), limit)
    now, cfg = datetime.now(timezone.utc), IngestConfig()
    ours = []
    for html_file, txt_file in pairs:
        got, _ = extract_html(RawPage(url=html_file.as_uri(), source="bench", fetch_time=now, html=html_file.read_bytes()), cfg)
        ours.append(score(got["text"] if got else "", txt_file.read_text(encoding="utf-8"))[2])
    if python is None:
        return len(pairs), sum(ours) / len(pairs), None
    lines = work / "news.jsonl"
    lines.write_text("".join(json.dumps({"id": h.stem, "html": h.read_text(encoding="utf-8", errors="replace")}) + "\n" for h, _ in pairs))
    texts = run_peer(python, PEER_SCRIPT, "extract", "--input", str(lines), what="DataTrove's extractor")["texts"]
    peer = [score(texts.get(h.stem, ""), t.read_text(encoding="utf-8"))[2] for h, t in pairs]
    return len(pairs), sum(ours) / len(pairs), sum(peer) / len(pairs)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--copies", type=int, default=20, help="copies of the 38 sample pages (one WARC file each)")
    ap.add_argument("--limit", type=int, default=0, help="held-out news pages to score (0: all)")
    args = smoke.parse(ap, copies=2, limit=3)
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    cores = os.cpu_count() or 1
    python, why = peer_python(PEER_ENV, PEER, install=not args.smoke)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        write_warcs(work / "warm", 1)
        pages = write_warcs(work / "warcs", args.copies)
        print(f"{pages} pages in {args.copies} WARC files ({pages // args.copies} distinct pages, near-duplicate copies), {cores} cores")
        synthq_ingest(work / "warm", work / "lake-warm")
        ours_s, report = synthq_ingest(work / "warcs", work / "lake")
        ours_rate = pages / ours_s / cores
        print(f"synthq ingest_flow: {ours_s:.1f}s, {ours_rate:.1f} pages/s per core; kept {report['kept']}, "
              f"rejected {dict(sorted(report['reasons'].items()))}")
        if python is None:
            print(f"DataTrove not run: {why}")
        else:
            datatrove_ingest(python, work / "warm", work / "peer-warm", cores)
            peer = datatrove_ingest(python, work / "warcs", work / "peer", cores)
            peer_s = sum(peer["seconds"].values())
            peer_rate = pages / peer_s / cores
            steps = ", ".join(f"{k} {v:.1f}s" for k, v in peer["seconds"].items())
            print(f"DataTrove {peer['versions']['datatrove']} (trafilatura {peer['versions']['trafilatura']}): {peer_s:.1f}s ({steps}), "
                  f"{peer_rate:.1f} pages/s per core; after filters {peer['after_filters']}, kept {peer['kept']} (no language filter: offline)")
            print(f"ratio synthq / DataTrove pages/s per core: {ours_rate / peer_rate:.2f}; documents kept: {report['kept']} / {peer['kept']}")
        n, ours_f1, peer_f1 = extraction_f1(python, work, args.limit)
        print(f"extraction F1 on {n} held-out news pages: synthq {ours_f1:.3f}" + (f", DataTrove {peer_f1:.3f}; ratio {ours_f1 / peer_f1:.3f}" if peer_f1 else ""))


if __name__ == "__main__":
    main()
