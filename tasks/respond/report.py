"""What the respond stage shows a user: answers and pairs not kept, by reason, and sample pairs."""

from __future__ import annotations

from synthq.tasks.core.lake import Lake
from synthq.tasks.core.report import pairs_markdown


def respond_markdown(lake: Lake, n: int = 3) -> str:
    responses, made = lake.report("responses"), lake.report("pairs")
    reasons = {**responses["reasons"], **made["reasons"]}
    sample: list[dict] = []
    for shard in lake.shards("pairs"):  # the first shards only, not every pair
        if len(sample) >= n:
            break
        sample += lake.read_shard("pairs", shard).slice(0, n - len(sample)).to_pylist()
    lines = [
        "## Responses and preference pairs", "",
        f"answers kept: {responses['kept']}, pairs: {made['kept']}", "",
        "| not kept because | count |", "|---|---|",
        *(f"| {k} | {v} |" for k, v in sorted(reasons.items())),
        "", "### Sample pairs", "", pairs_markdown(sample),
    ]
    return "\n".join(lines) + "\n"
