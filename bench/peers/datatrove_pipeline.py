"""DataTrove's own ingest pipeline, run inside DataTrove's virtual environment by
bench/peer_ingest.py (it never imports synthq). Prints one JSON object as its last line.

    pipeline: WarcReader -> Trafilatura -> GopherRepetitionFilter -> GopherQualityFilter ->
              JsonlWriter, then MinHash dedup in DataTrove's four steps (signatures, buckets,
              clusters, filter); `tasks` = `workers` = the cores given.
    extract:  DataTrove's Trafilatura step alone on {id, html} JSONL lines -> {id, text}.

No language filter: DataTrove's LanguageFilter downloads its fastText model from the network
on first use, and this bench runs offline (the caller says so in its output).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path


def pipeline(warcs: Path, work: Path, cores: int) -> dict:
    from datatrove.executor import LocalPipelineExecutor
    from datatrove.pipeline.dedup.minhash import (
        MinhashConfig,
        MinhashDedupBuckets,
        MinhashDedupCluster,
        MinhashDedupFilter,
        MinhashDedupSignature,
    )
    from datatrove.pipeline.extractors import Trafilatura
    from datatrove.pipeline.filters import GopherQualityFilter, GopherRepetitionFilter
    from datatrove.pipeline.readers import JsonlReader, WarcReader
    from datatrove.pipeline.writers import JsonlWriter

    config = MinhashConfig()  # DataTrove's defaults: 5-grams, 14 buckets of 8 hashes
    run = {"tasks": cores, "workers": cores, "skip_completed": False}
    steps = {
        "extract + filter + signatures": LocalPipelineExecutor(
            pipeline=[
                WarcReader(str(warcs)),
                Trafilatura(),
                GopherRepetitionFilter(),
                GopherQualityFilter(),
                JsonlWriter(str(work / "filtered")),
                MinhashDedupSignature(output_folder=str(work / "signatures"), config=config),
            ],
            logging_dir=str(work / "logs" / "1"), **run,
        ),
        "buckets": LocalPipelineExecutor(
            pipeline=[MinhashDedupBuckets(input_folder=str(work / "signatures"), output_folder=str(work / "buckets"), config=config)],
            logging_dir=str(work / "logs" / "2"), tasks=config.num_buckets, workers=cores, skip_completed=False,
        ),
        "clusters": LocalPipelineExecutor(
            pipeline=[MinhashDedupCluster(input_folder=str(work / "buckets"), output_folder=str(work / "remove"), config=config)],
            logging_dir=str(work / "logs" / "3"), tasks=1, skip_completed=False,
        ),
        "filter": LocalPipelineExecutor(
            pipeline=[
                JsonlReader(str(work / "filtered")),
                MinhashDedupFilter(input_folder=str(work / "remove")),
                JsonlWriter(str(work / "output")),
            ],
            logging_dir=str(work / "logs" / "4"), **run,
        ),
    }
    seconds = {}
    for name, executor in steps.items():
        start = time.perf_counter()
        executor.run()
        seconds[name] = time.perf_counter() - start
    filtered = sum(1 for f in (work / "filtered").glob("*.jsonl*") for _ in _lines(f))
    kept = sum(1 for f in (work / "output").glob("*.jsonl*") for _ in _lines(f))
    return {"seconds": seconds, "after_filters": filtered, "kept": kept}


def _lines(path: Path):
    import gzip

    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as f:
        yield from (line for line in f if line.strip())


def extract(pages: Path) -> dict:
    from datatrove.data import Document
    from datatrove.pipeline.extractors import Trafilatura

    rows = [json.loads(line) for line in pages.read_text(encoding="utf-8").splitlines() if line.strip()]
    step = Trafilatura()
    texts = {}
    for row in rows:  # one document at a time, so a page the extractor skips is seen as empty
        out = list(step.run(iter([Document(text=row["html"], id=row["id"], metadata={})])))
        texts[row["id"]] = out[0].text if out else ""
    return {"texts": texts}


def versions() -> dict:
    from importlib.metadata import version

    return {name: version(name) for name in ("datatrove", "trafilatura")}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("mode", choices=("pipeline", "extract"))
    ap.add_argument("--input", type=Path, required=True)
    ap.add_argument("--work", type=Path)
    ap.add_argument("--cores", type=int, default=1)
    args = ap.parse_args()
    out = pipeline(args.input, args.work, args.cores) if args.mode == "pipeline" else extract(args.input)
    print(json.dumps({**out, "versions": versions()}))


if __name__ == "__main__":
    main()
