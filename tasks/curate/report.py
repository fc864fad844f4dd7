"""The curation report: what scoring and selection kept and dropped, and why.

Counts per reason, the score histogram of the kept queries, how many queries the topics held
(topics per size, one row per size at any number of topics), and contamination
hits per benchmark; written beside the curated dataset and shown in the Prefect UI.
"""

from __future__ import annotations

import json
from collections import Counter
from itertools import accumulate

from synthq.tasks.core.lake import Lake
from synthq.tasks.curate.select import selection_info


def curation_report(lake: Lake) -> dict:
    scored, curated = lake.report("scored"), lake.report("curated")
    histogram: Counter = Counter()
    for shard in lake.shards("curated"):  # one shard's scores at a time, never the curated rows
        histogram.update(lake.read_shard("curated", shard, columns=["score_total"]).column("score_total").to_pylist())
    selection = selection_info(lake).get("stats", {})
    return {
        "scored": scored["kept"] + scored["rejected"],
        "kept": curated["kept"],
        "rejected": {**scored["reasons"], **curated["reasons"]},
        "score_histogram": dict(sorted(histogram.items())),
        "topic_size_histogram": selection.get("topic_size_histogram") or _per_size(selection.get("topic_sizes", {})),
        "contamination_hits": selection.get("contamination_hits", {}),
    }


def render_markdown(rep: dict) -> str:
    def rows(d: dict) -> str:
        return "\n".join(f"| {k} | {v} |" for k, v in d.items()) or "| - | 0 |"

    return (
        f"## Curation\n\n{rep['scored']} queries scored, {rep['kept']} kept.\n\n"
        f"| rejected because | count |\n|---|---|\n{rows(rep['rejected'])}\n\n"
        f"| score (0-7) | kept queries |\n|---|---|\n{rows(rep['score_histogram'])}\n\n"
        f"| benchmark | contaminated queries dropped |\n|---|---|\n{rows(rep['contamination_hits'])}\n\n"
        f"{_topics(rep['topic_size_histogram'])}\n"
    )


def _topics(histogram: dict[str, int]) -> str:
    """How many topics held how many queries before the best of each was kept."""
    if not histogram:
        return "Topics: no topic selection ran."
    sizes = sorted((int(size), n) for size, n in histogram.items())
    topics, queries = sum(n for _, n in sizes), sum(size * n for size, n in sizes)
    median = next(size for (size, _), seen in zip(sizes, accumulate(n for _, n in sizes)) if seen > topics // 2)
    table = "\n".join(f"| {size} | {n} |" for size, n in sizes)
    return (f"Topics: {topics}, holding {queries} queries before the best of each was kept "
            f"(min {sizes[0][0]}, median {median}, max {sizes[-1][0]} per topic).\n\n"
            f"| queries in the topic | topics |\n|---|---|\n{table}\n")


def _per_size(sizes: dict[str, int]) -> dict[str, int]:
    """Topics per size from one size per topic, as selections before this histogram counted them."""
    return {str(k): v for k, v in sorted(Counter(sizes.values()).items())}


def write_report(lake: Lake) -> dict:
    rep = curation_report(lake)
    lake.write_bytes(lake.path("curated", "report.json"), json.dumps(rep, indent=2).encode())
    lake.write_bytes(lake.path("curated", "report.md"), render_markdown(rep).encode())
    return rep
