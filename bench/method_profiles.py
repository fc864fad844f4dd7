"""The default profile against the `paper` profile (configs/paper.yaml) on the same documents
and seeds, with the bundled model: what each writes, side by side.

Both run attribute, synthesize and curate through the factory's own flows (real Prefect,
Ray, vLLM) on one copy each of the same ingested sample. `paper` runs with what this machine
allows: the bundled model's 8,192-token context, so synthesis keeps the method's 7,500-token
prompt budget with 692 output tokens. Scoring runs with the model-free checks off in both, so
the judge sees every query and its scores can be set against what the checks would drop.

Per profile: seeds grounded (and rejected for having no grounding page), schema-valid share
of synthesis, prompt tokens per synthesis request, query length, distinct 4-gram ratio over
all queries, query-to-document overlap and copied share, the judge's score distribution, and
the drops of the model-free checks (`synthq.tasks.curate.checks`) by reason, with the judge's mean
score of the queries they drop and of those they keep.

With --smoke the two profiles run on 2 documents and 2 seeds against the test suite's stub
endpoint (tests/llm/faults.py: instant, schema-valid answers): what a smoke proves is each
profile's path through the flows and the table; what the bundled model writes under each is
what a full run measures.

    .venv/bin/python bench/method_profiles.py [--docs 40] [--seeds 40] [--profiles default,paper] [--smoke]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import shutil
import statistics
import tempfile
from collections import Counter
from pathlib import Path

import smoke

from synthq.tasks.core.config import load_config
from synthq.tasks.core.lake import Lake
from synthq.tasks.core.method_config import QueryChecks
from synthq.tasks.curate.checks import QueryChecker, copied_share, document_overlap
from synthq.tasks.core.filters import DocView
from synthq.tasks.sample import PAGES, SEEDS

ROOT = Path(__file__).resolve().parents[1]
ON_THIS_MACHINE = {  # the paper profile within the bundled model's context
    "engine.max_model_len": 8192, "synthesize.max_output_tokens": 692, "curate.max_output_tokens": 2048,
}
SMOKE = {  # tiny budgets, same code path
    "default": {"attribute.document_tokens": 256, "synthesize.document_tokens": 256, "synthesize.prompt_tokens": 1200,
                "attribute.max_output_tokens": 384, "synthesize.max_output_tokens": 256, "curate.max_output_tokens": 384},
    "paper": {"engine.max_model_len": 4096, "attribute.document_tokens": 256, "attribute.max_output_tokens": 384,
              "synthesize.document_tokens": 256, "synthesize.demonstration_document_tokens": 256,
              "synthesize.prompt_tokens": 1600, "synthesize.max_output_tokens": 256, "curate.max_output_tokens": 384},
}


def four_gram_ratio(queries: list[str]) -> float:
    grams = [g for q in queries for g in zip(*(DocView(q).words[i:] for i in range(4)))]
    return len(set(grams)) / len(grams) if grams else 0.0


def measure(lake: Lake) -> dict:
    docs = {d["id"]: d["text"] for d in lake.read("documents").select(["id", "text"]).to_pylist()}
    instr = lake.read("instructions").to_pylist()
    rejected = lake.read("instructions", rejected=True).num_rows
    scored = {r["id"]: r["score_total"] for r in lake.read("scored").to_pylist()}
    demos = lake.report("demonstrations")
    llm = [m["stats"]["llm"] for m in lake.manifests("instructions") if "llm" in m["stats"]]
    checker, drops, kept_scores, dropped_scores = QueryChecker(QueryChecks()), Counter(), [], []
    overlaps, copied = [], []
    for r in instr:
        words = DocView(r["query"]).words
        text = docs.get(r["document_id"], "")
        overlaps.append(document_overlap(words, set(DocView(text).words))[0])
        copied.append(copied_share(words, DocView(text).words, QueryChecks().copy_ngram))
        failed = checker.check(r["query"], r["document_id"], text)
        drops[failed[0] if failed else "kept"] += 1
        if r["id"] in scored:
            (dropped_scores if failed else kept_scores).append(scored[r["id"]])
    lengths = [len(r["query"].split()) for r in instr]
    return {
        "seeds grounded": demos["kept"],
        "no_grounding_document": demos["reasons"].get("no_grounding_document", 0),
        "schema-valid share": len(instr) / max(len(instr) + rejected, 1),
        "prompt tokens / request": sum(x["prompt_tokens"] for x in llm) / max(sum(x["calls"] for x in llm), 1),
        "query words (mean, median)": (statistics.mean(lengths), statistics.median(lengths)) if lengths else (0, 0),
        "distinct 4-gram ratio": four_gram_ratio([r["query"] for r in instr]),
        "query-document overlap (mean)": statistics.mean(overlaps) if overlaps else 0.0,
        "copied share (mean)": statistics.mean(copied) if copied else 0.0,
        "scores": dict(sorted(Counter(scored.values()).items())),
        "model-free": dict(drops.most_common()),
        "judge mean: dropped / kept": (
            statistics.mean(dropped_scores) if dropped_scores else float("nan"),
            statistics.mean(kept_scores) if kept_scores else float("nan"),
        ),
    }


def run_profile(name: str, ingested: Path, work: Path, sets: dict) -> dict:
    from synthq.flows.attribute import attribute_flow
    from synthq.flows.curate import curate_flow
    from synthq.flows.synthesize import synthesize_flow

    lake_dir = work / name
    shutil.copytree(ingested, lake_dir)
    config = str(ROOT / "configs" / "paper.yaml") if name == "paper" else None
    cfg = load_config(config, {"lake": str(lake_dir), "shard_size": 64, "curate.checks.enabled": False, **sets})
    print(f"{name}: attribute, synthesize, score ...", flush=True)
    attribute_flow(cfg)
    synthesize_flow(cfg)
    curate_flow(cfg)
    return measure(Lake(cfg.lake))


def show(results: dict[str, dict]) -> None:
    names = list(results)
    print("\n" + " " * 34 + "".join(f"{n:>22}" for n in names))
    for key in results[names[0]]:
        cells = []
        for n in names:
            v = results[n][key]
            if isinstance(v, float):
                cells.append(f"{v:>22.3f}")
            elif isinstance(v, tuple):
                cells.append(f"{' / '.join(f'{x:.1f}' for x in v):>22}")
            elif isinstance(v, dict):
                cells.append(f"{', '.join(f'{k}:{c}' for k, c in v.items()):>22}")
            else:
                cells.append(f"{v:>22}")
        print(f"{key:34}" + "".join(cells))
    for n in names:
        print(f"{n} model-free drops: {results[n]['model-free']}")
    if not {"default", "paper"} <= set(results):
        return
    a, b = results["default"], results["paper"]
    print(f"ratio paper / default: schema-valid share {b['schema-valid share'] / max(a['schema-valid share'], 1e-9):.2f}, "
          f"query words {b['query words (mean, median)'][0] / max(a['query words (mean, median)'][0], 1e-9):.2f}, "
          f"prompt tokens {b['prompt tokens / request'] / max(a['prompt tokens / request'], 1e-9):.2f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--docs", type=int, default=40, help="sample pages to ingest (the sample has 38)")
    ap.add_argument("--seeds", type=int, default=40, help="sample seeds to ground")
    ap.add_argument("--profiles", default="default,paper", help="comma-separated profiles to run (default: both)")
    args = smoke.parse(ap, docs=2, seeds=2)
    if unknown := set(args.profiles.split(",")) - {"default", "paper"}:
        ap.error(f"unknown profile(s) {sorted(unknown)}: choose from default, paper")
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    from synthq.flows.ingest import ingest_flow

    with tempfile.TemporaryDirectory() as tmp, contextlib.ExitStack() as stack:
        stub = {}
        if args.smoke:
            sys.path[:0] = [str(ROOT)]
            from tests.llm.faults import Faulty

            # the stub's texts are not about the documents: no retrieval floor, so every seed is grounded
            stub = {**stack.enter_context(Faulty(rate=0.0)).engine_settings(), "attribute.min_retrieval_score": -1.0}
        work = Path(tmp)
        pages = work / "pages"
        pages.mkdir()
        for page in sorted(PAGES.glob("*.html"))[: args.docs]:
            shutil.copy(page, pages / page.name)
        seeds = work / "seeds.jsonl"
        seeds.write_text("\n".join(SEEDS.read_text().splitlines()[: args.seeds]) + "\n")
        ingested = work / "ingested"
        ingest_flow(load_config(None, {"lake": str(ingested), "shard_size": 64, "ingest.sources": str(pages)}))
        results = {}
        for name in args.profiles.split(","):
            sets = {"attribute.seeds": str(seeds), **(SMOKE[name] if args.smoke else ON_THIS_MACHINE if name == "paper" else {}), **stub}
            results[name] = run_profile(name, ingested, work, sets)
        show(results)


if __name__ == "__main__":
    main()
