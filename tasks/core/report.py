"""The lake's report: per dataset, what was kept and what was rejected, by reason.

For the stages that call the LLM it also gives the schema-valid rate: the share of LLM
outputs that parsed and validated (rejections whose reason starts with `llm_` failed).
"""

from __future__ import annotations

from tasks.core.lake import Lake

DATASETS = ("documents", "demonstrations", "instructions", "scored", "curated")
LLM_DATASETS = ("demonstrations", "instructions", "scored")


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
