"""The lake's report: per dataset, what was kept and what was rejected, by reason.

For the stages that call the LLM it also gives the schema-valid rate: the share of LLM
outputs that parsed and validated (rejections whose reason starts with `llm_` failed).
"""

from __future__ import annotations

from synthq.tasks.core.lake import Lake

DATASETS = ("documents", "demonstrations", "instructions", "scored", "curated", "responses", "pairs")
LLM_DATASETS = ("demonstrations", "instructions", "scored", "responses")


def lake_report(lake: Lake) -> list[dict]:
    rows = []
    for name in DATASETS:
        rep = lake.report(name)
        if not rep["shards"]:
            continue
        if name in LLM_DATASETS:
            failed = sum(v for k, v in rep["reasons"].items() if k.startswith("llm_"))
            calls = rep["kept"] + failed
            rep["llm_valid"] = (rep["kept"], calls)
        rows.append(rep)
    return rows


def fault_totals(manifests: list[dict]) -> dict[str, dict[str, int]]:
    """Service faults of the openai engine over the shards, per kind: met, retried, failed."""
    out: dict[str, dict[str, int]] = {}
    for m in manifests:
        for key, n in m.get("stats", {}).get("faults", {}).items():
            kind, _, what = key.partition(".")
            if what:
                out.setdefault(kind, {"met": 0, "retried": 0, "failed": 0})[what] += n
    return out


def shard_memory(manifests: list[dict]) -> dict | None:
    """Over the shards that measured it: the largest and the median peak resident set of a
    shard's worker, and the most a shard added to the size its worker had when it began (MiB);
    None when no shard measured it (not on Linux, or written before shards did)."""
    measured = [m["stats"]["memory"] for m in manifests if m.get("stats", {}).get("memory")]
    if not measured:
        return None
    peaks = sorted(x["peak_mib"] for x in measured)
    return {"shards": len(measured), "peak_mib_max": peaks[-1], "peak_mib_median": peaks[len(peaks) // 2],
            "added_mib_max": max(x["peak_mib"] - x["rss_start_mib"] for x in measured)}


def failed_shards(lake: Lake) -> list[dict]:
    """Every shard, in every dataset, whose last run failed."""
    return [f for name in DATASETS for f in lake.failures(name)]


def failure_summary(failed: list[dict]) -> str:
    """One line: how many shards failed where, the first error, and what to do."""
    where = ", ".join(f"{f['dataset']}/{f['shard']}" for f in failed[:5]) + (", ..." if len(failed) > 5 else "")
    return (f"{len(failed)} shard(s) failed ({where}; first error: {failed[0]['error'][:200]}). Rerun the same command to "
            "retry them: finished shards are skipped and every cached LLM answer is reused.")


def _clip(text: str, n: int = 300) -> str:
    text = " ".join(text.split())
    return text if len(text) <= n else text[: n - 3] + "..."


def pairs_markdown(pairs: list[dict]) -> str:
    """Preference pairs as markdown: the query, both answers with their scores, judge and rule."""
    lines = []
    for p in pairs:
        lines += [
            f"### {_clip(p['query'], 160)}", "",
            f"- chosen ({p['score_chosen']:.2f}): {_clip(p['chosen'][0]['content'])}",
            f"- rejected ({p['score_rejected']:.2f}): {_clip(p['rejected'][0]['content'])}",
            f"- judge: {p['judge']}, rule: {p['rule']}", "",
        ]
    return "\n".join(lines)
