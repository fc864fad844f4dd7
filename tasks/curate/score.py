"""Scoring one shard of instructions on the seven criteria (0/1 each, total 0-7), and, when
`curate.moderation` is on, a safety verdict for each (a failed verdict rejects the row:
moderation fails closed). Queries that fail the model-free checks (checks.py) are rejected
first, with their reason, and cost no scoring call."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
from pydantic import BaseModel

from synthq.tasks.shards.context import StageContext
from synthq.tasks.core.lake import StageResult
from synthq.tasks.shards.stage import Stage
from synthq.tasks.core.prompts import Prompt, load_prompt
from synthq.tasks.core.records import CRITERIA, CURATED, REJECTED, rejection, table
from synthq.tasks.curate.checks import QueryChecker
from synthq.tasks.curate.outputs import Moderation, Scores
from synthq.tasks.llm.engine import Parsed, rejected_output, schema_for

STAGE = "curate"
PROMPTS = Path(__file__).parent / "prompts"


def _ask(ctx: StageContext, rows: list[dict], name: str, prompt: Prompt, model: type[BaseModel]) -> list[Parsed]:
    schema, limit = schema_for(model), ctx.cfg.curate.max_output_tokens
    reqs = [ctx.request(f"{name}:{prompt.version}:{r['id']}", prompt.messages(query=r["query"]), schema, limit, 0.0) for r in rows]
    return ctx.complete(reqs, model)


def documents_of(ctx: StageContext, ids: set[str]) -> dict[str, str]:
    """id -> text of the named documents (a query's document may be gone after a re-ingest: absent)."""
    docs = ctx.lake.read_rows("documents", ids, ["id", "text"])  # one documents shard in memory at a time
    return dict(zip(docs.column("id").to_pylist(), docs.column("text").to_pylist()))


def model_free(rows: list[dict], ctx: StageContext) -> tuple[list[dict], list[dict], dict]:
    """(rows that pass the checks, rejections, counts per reason)."""
    checks = ctx.cfg.curate.checks
    if not checks.enabled or not rows:
        return rows, [], {}
    docs = documents_of(ctx, {r["document_id"] for r in rows})
    checker = QueryChecker(checks)
    kept, rejected = [], []
    for row in rows:
        failed = checker.check(row["query"], row["document_id"], docs.get(row["document_id"]))
        if failed:
            rejected.append(rejection(STAGE, failed[0], failed[1], row["id"], row))
        else:
            kept.append(row)
    return kept, rejected, {"model_free_checked": len(rows), "model_free_dropped": len(rejected)}


def process(instr: pa.Table, ctx: StageContext) -> StageResult:
    """Instructions -> scored instructions (topic -1 until selection runs)."""
    rows, rejected, stats = model_free(instr.to_pylist(), ctx)
    prompt = load_prompt(PROMPTS / "score.yaml")
    scored = _ask(ctx, rows, "score", prompt, Scores)
    if ctx.cfg.curate.moderation:
        moderated = _ask(ctx, rows, "moderate", load_prompt(PROMPTS / "moderate.yaml"), Moderation)
    else:
        moderated = [None] * len(rows)
    kept = []
    for row, out, mod in zip(rows, scored, moderated):
        if out.value is None:
            rejected.append(rejected_output(STAGE, out, row["id"], row))
            continue
        if mod is not None and mod.value is None:  # no verdict: the row does not pass
            rejected.append({**(r := rejected_output(STAGE, mod, row["id"], row)), "detail": f"moderation: {r['detail']}"})
            continue
        scores = {f"score_{k}": int(getattr(out.value, k).score) for k in CRITERIA}
        kept.append(
            {
                **row,
                **scores,
                "score_total": sum(scores.values()),
                "score_analysis": {k: getattr(out.value, k).analysis for k in CRITERIA},
                "score_model": ctx.model_name,
                "score_prompt_version": prompt.version,
                "topic": -1,
                "moderation": mod.value.verdict if mod else "",
                "moderation_categories": list(mod.value.categories) if mod else [],
            }
        )
    return StageResult(table(kept, CURATED), table(rejected, REJECTED), {**stats, "scored": len(kept)})


# Only what scoring reads: a change to selection options must not re-score every query.
STAGE_SPEC = Stage(
    "scored", ("curate.max_output_tokens", "curate.moderation", "curate.checks", "engine"), process,
    uses_engine=True, cpus=0.5, prompts=(PROMPTS / "score.yaml", PROMPTS / "moderate.yaml"),
)
