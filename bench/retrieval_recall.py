"""recall@1 of the attribute stage's corpus retrieval modes (dense, bm25, hybrid) on the
retrieval test set of tests/attribute/retrieval_set.py: the share of seed queries whose top
document is the one they were written for, among near-topic distractors. The baseline is dense
retrieval (the mode the stage had alone), measured in the same run.

    .venv/bin/python bench/retrieval_recall.py [--embedder bundled]

--smoke runs the same code on the same set (it is small): the figure is the real one.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the retrieval set lives in tests/

import smoke  # noqa: E402

from tests.attribute.retrieval_set import DOCUMENTS, QUERIES, evaluate  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--embedder", default="bundled")
    args = smoke.parse(ap)
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        recall = evaluate(f"{tmp}/lake", embedder=args.embedder)
    print(f"retrieval set: {len(DOCUMENTS)} documents ({len(QUERIES)} targets, {len(DOCUMENTS) - len(QUERIES)} distractors), "
          f"{len(QUERIES)} seed queries, embedder {args.embedder} ({time.perf_counter() - start:.1f}s)")
    print("| mode | recall@1 |\n|---|---|")
    for mode, value in recall.items():
        print(f"| {mode} | {value:.3f} ({round(value * len(QUERIES))}/{len(QUERIES)}) |")
    for mode in ("bm25", "hybrid"):
        print(f"ratio {mode} / dense recall@1: {recall[mode] / recall['dense']:.2f}" if recall["dense"] else f"ratio {mode} / dense: dense found none")
    print(f"best: {max(recall, key=lambda m: (recall[m], m == 'hybrid'))}")


if __name__ == "__main__":
    main()
