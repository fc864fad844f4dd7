"""Extraction quality on held-out real pages: synthq ingest against plain trafilatura.

Pages: real news and article pages in 8 languages (CNN, Wired, Time, Yonhap, Arabic,
Chinese, Japanese, Thai, Spanish, Latvian, ...), each with a reference text of its article
body. They are the test pages of the newspaper4k package, taken from its source distribution
on PyPI (`pip download --no-binary`); extraction was not tuned on them. The reference texts
are newspaper4k's checked expectations, not a human-annotated gold standard: a score below 1
mixes both extractors' errors. Offline, point `--pages` at a folder with `html/` and `txt/`.

Score per page: bag-of-words precision, recall and F1 of the extracted text against the
reference, over the words MinHash sees (`synthq.tasks.ingest.minhash.normalize`: lowercased,
punctuation stripped, one word per character in scripts written without spaces), as
article-extraction benchmarks score. Printed: the mean F1 of plain `trafilatura.extract`, the
mean F1 of the text synthq ingest extracts (`synthq.tasks.ingest.extract.extract_html`), their ratio
(target: >= 1, ingest loses nothing), the mean F1 in `ingest.fast` mode, and what ingest's
language and quality filters then keep, with the default allow-list (English) and with every
language allowed.

    .venv/bin/python bench/extraction_quality.py [--pages DIR]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tarfile
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path

import trafilatura

import smoke

from synthq.tasks.core.config import IngestConfig
from synthq.tasks.ingest.extract import extract_html, extract_page
from synthq.tasks.ingest.minhash import normalize
from synthq.tasks.ingest.raw import RawPage

PACKAGE = "newspaper4k==0.9.6"
CACHE = Path.home() / ".cache" / "synthq" / "bench"


def fetch_pages() -> Path:
    """The package's test pages, downloaded once from PyPI into the cache."""
    folder = CACHE / PACKAGE.replace("==", "-")
    data = folder / "tests" / "data"
    if not data.is_dir():
        CACHE.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:", "-q", "-d", str(CACHE), PACKAGE],
            check=True,
        )
        sdist = next(CACHE.glob(PACKAGE.replace("==", "-") + ".tar.gz"))
        with tarfile.open(sdist) as tar:
            tar.extractall(CACHE, members=[m for m in tar.getmembers() if "/tests/data/" in m.name], filter="data")
    return data


def held_out(data: Path, limit: int = 0) -> list[tuple[Path, Path]]:
    """(page, reference text) pairs of the pages that have a reference, the first `limit` (0: all)."""
    pairs = [(h, data / "txt" / f"{h.stem}.txt") for h in sorted((data / "html").glob("*.html"))]
    return [(h, t) for h, t in pairs if t.is_file()][: limit or None]


def score(got: str, reference: str) -> tuple[float, float, float]:
    """(precision, recall, F1) of the extracted words against the reference words."""
    g, r = Counter(normalize(got)), Counter(normalize(reference))
    common = sum((g & r).values())
    if not common:
        return 0.0, 0.0, 0.0
    p, rec = common / sum(g.values()), common / sum(r.values())
    return p, rec, 2 * p * rec / (p + rec)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pages", type=Path, help="a folder with html/NAME.html and txt/NAME.txt (default: download)")
    ap.add_argument("--limit", type=int, default=0, help="score only the first N pages (0: all)")
    args = smoke.parse(ap, limit=3)
    data = args.pages or fetch_pages()
    pairs = held_out(data, args.limit)
    cfg, fast_mode, every_language = IngestConfig(), IngestConfig(fast=True), IngestConfig(languages=[])
    now = datetime.now(timezone.utc)
    plain_f1, ours_f1, fast_f1, kept, rejected = [], [], [], Counter(), {"default": Counter(), "all": Counter()}
    print(f"{len(pairs)} pages with a reference text, from {data}")
    print(f"{'page':28} {'plain P/R/F1':>17} {'synthq P/R/F1':>17}")
    for html_file, txt_file in pairs:
        html, reference = html_file.read_bytes(), txt_file.read_text(encoding="utf-8")
        plain = trafilatura.extract(html) or ""
        page = RawPage(url=html_file.as_uri(), source="bench", fetch_time=now, html=html)
        got, _ = extract_html(page, cfg)
        ours = got["text"] if got else ""
        p1, p2 = score(plain, reference), score(ours, reference)
        plain_f1.append(p1[2])
        ours_f1.append(p2[2])
        fast, _ = extract_html(page, fast_mode)
        fast_f1.append(score(fast["text"] if fast else "", reference)[2])
        for name, settings in (("default", cfg), ("all", every_language)):
            doc, rej = extract_page(page, settings)
            kept[name] += doc is not None
            if rej:
                rejected[name][rej["reason"]] += 1
        print(f"{html_file.stem[:28]:28} {p1[0]:.2f}/{p1[1]:.2f}/{p1[2]:.2f}   {p2[0]:.2f}/{p2[1]:.2f}/{p2[2]:.2f}")
    plain_mean, ours_mean = sum(plain_f1) / len(pairs), sum(ours_f1) / len(pairs)
    print(f"mean F1: plain trafilatura.extract {plain_mean:.3f}, synthq ingest {ours_mean:.3f}; ratio {ours_mean / plain_mean:.3f} (target >= 1)")
    print(f"with ingest.fast (trafilatura's fast mode): mean F1 {sum(fast_f1) / len(pairs):.3f}")
    print(f"pages where synthq scores lower: {sum(o < p - 1e-9 for o, p in zip(ours_f1, plain_f1))}, higher: {sum(o > p + 1e-9 for o, p in zip(ours_f1, plain_f1))}")
    for name, label in (("default", f"languages={cfg.languages}"), ("all", "every language allowed")):
        print(f"ingest ({label}) keeps {kept[name]} of {len(pairs)}; rejected: {dict(rejected[name]) or 'none'}")


if __name__ == "__main__":
    main()
