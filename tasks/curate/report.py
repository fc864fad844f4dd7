"""The curation report: what scoring and selection kept and dropped, and why.

Counts per reason, the score histogram of the kept queries, topic sizes, and contamination
hits per benchmark; written beside the curated dataset and shown in the Prefect UI.
"""

from __future__ import annotations

import json
from collections import Counter

from synthq.tasks.core.lake import Lake
from synthq.tasks.curate.select import selection_info

TOPICS_LISTED = 50  # more topics than this are summed up in the markdown report, not listed


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
        "topic_sizes": selection.get("topic_sizes", {}),
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
        f"Topics: {len(rep['topic_sizes'])} ({_topic_sizes(rep['topic_sizes'])})\n"
    )


def _topic_sizes(sizes: dict[str, int]) -> str:
    """Topic sizes before the best of each was kept: each one when there are few, else their
    spread (report.json holds every size)."""
    if not sizes:
        return "no topic selection ran"
    if len(sizes) <= TOPICS_LISTED:
        return f"sizes before keeping the best of each: {json.dumps(sizes)}"
    ordered = sorted(sizes.values())
    median = ordered[len(ordered) // 2]
    return (f"queries per topic before keeping the best of each: min {ordered[0]}, median {median}, "
            f"max {ordered[-1]}; every size is in report.json")


def write_report(lake: Lake) -> dict:
    rep = curation_report(lake)
    lake.write_bytes(lake.path("curated", "report.json"), json.dumps(rep, indent=2).encode())
    lake.write_bytes(lake.path("curated", "report.md"), render_markdown(rep).encode())
    return rep
