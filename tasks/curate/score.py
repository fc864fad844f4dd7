"""Scoring one shard of instructions on the seven criteria (0/1 each, total 0-7)."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa

from tasks.core.context import StageContext
from tasks.core.lake import StageResult
from tasks.core.stage import Stage
from tasks.core.prompts import load_prompt
from tasks.core.records import CRITERIA, CURATED, REJECTED, table
from tasks.curate.outputs import Scores
from tasks.llm.engine import complete, rejected_output, schema_for

STAGE = "curate"
PROMPT = Path(__file__).parent / "prompts" / "score.yaml"


def process(instr: pa.Table, ctx: StageContext) -> StageResult:
    """Instructions -> scored instructions (topic -1 until selection runs)."""
    rows = instr.to_pylist()
    prompt = load_prompt(PROMPT)
    c = ctx.cfg.curate
    schema = schema_for(Scores)
    reqs = [
        ctx.request(f"score:{prompt.version}:{r['id']}", prompt.messages(query=r["query"]), schema, c.max_output_tokens, 0.0)
        for r in rows
    ]
    kept, rejected = [], []
    for row, out in zip(rows, complete(ctx.engine, reqs, Scores)):
        if out.value is None:
            rejected.append(rejected_output(STAGE, out, row["id"], row))
            continue
        scores = {f"score_{k}": int(getattr(out.value, k)) for k in CRITERIA}
        kept.append(
            {
                **row,
                **scores,
                "score_total": sum(scores.values()),
                "score_model": ctx.model_name,
                "score_prompt_version": prompt.version,
                "topic": -1,
            }
        )
    return StageResult(table(kept, CURATED), table(rejected, REJECTED), {"scored": len(kept)})


# Only what scoring reads: a change to selection options must not re-score every query.
STAGE_SPEC = Stage("scored", ("curate.max_output_tokens", "engine"), process, uses_engine=True, cpus=0.5)
