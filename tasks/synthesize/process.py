"""The synthesize stage for one shard of documents: one grounded instruction per document.

Similar documents are grouped and each group shares one demonstration block (see plan.py),
so the engine prefills it once per group; each document is cut by tokens and gets a
JSON-schema-constrained answer: thought, scene, compositions, query. Failed outputs are
rejected with their reason and raw text.
"""

from __future__ import annotations

import hashlib

import pyarrow as pa

from synthq.tasks.shards.context import StageContext
from synthq.tasks.core.errors import LakeError
from synthq.tasks.core.lake import StageResult
from synthq.tasks.core.prompts import load_prompt
from synthq.tasks.core.records import INSTRUCTIONS, REJECTED, table
from synthq.tasks.shards.stage import Stage
from synthq.tasks.llm.engine import output_model, rejected_output
from synthq.tasks.synthesize.carry import carried
from synthq.tasks.synthesize.demos import demonstration_vectors
from synthq.tasks.synthesize.outputs import Synthesis
from synthq.tasks.synthesize.plan import PROMPT, Planned, build_requests

STAGE = "synthesize"


def instruction(plan: Planned, value: Synthesis, model: str, version: str) -> dict:
    doc = plan.doc
    return {
        "id": hashlib.sha256(f"{doc['id']}:{version}".encode()).hexdigest()[:16],
        "document_id": doc["id"],
        "document_url": doc["url"],
        "demonstration_ids": plan.demonstration_ids,
        **value.model_dump(),
        "model": model,
        "prompt_version": version,
    }


def shard_stats(plans: list[Planned]) -> dict:
    """What the manifest shows besides the LLM counts: how much of the prompts the groups shared."""
    n = max(len(plans), 1)
    groups = len({p.group for p in plans})
    return {
        "documents": len(plans),
        "mean_demonstrations": sum(len(p.demonstration_ids) for p in plans) / n,
        "groups": groups,
        "mean_group_size": len(plans) / max(groups, 1),
        "mean_shared_block_tokens": sum(p.shared_tokens for p in plans) / n,
    }


def process(docs_tbl: pa.Table, ctx: StageContext) -> StageResult:
    """Documents -> instructions. Needs ctx.extras['demonstrations'] (list of dicts)."""
    version = load_prompt(PROMPT).version
    docs = docs_tbl.to_pylist()
    kept, rejected = carried(ctx.lake, [d["id"] for d in docs])
    done = {r["document_id"] for r in kept} | {r["record_id"] for r in rejected}
    todo = [d for d in docs if d["id"] not in done]
    plans = build_requests(todo, ctx.extras["demonstrations"], ctx) if todo else []
    parsed = ctx.complete([p.request for p in plans], output_model(Synthesis, ctx.cfg.synthesize.output_caps))
    for plan, out in zip(plans, parsed):
        if out.value is None:
            ref = {"document_id": plan.doc["id"], "demonstration_ids": plan.demonstration_ids}
            rejected.append(rejected_output(STAGE, out, plan.doc["id"], ref))
        else:
            kept.append(instruction(plan, out.value, ctx.model_name, version))
    return StageResult(table(kept, INSTRUCTIONS), table(rejected, REJECTED), {**shard_stats(plans), "carried": len(done)})


def prepare(ctx: StageContext) -> None:
    demos = ctx.lake.read("demonstrations").to_pylist()
    if not demos:
        raise LakeError("The demonstrations dataset is empty: attribution grounded no seed (see its report).")
    ctx.extras["demonstrations"] = demos
    if ctx.cfg.synthesize.similar_fraction > 0:
        ctx.extras["demonstration_vectors"] = demonstration_vectors(ctx.lake, demos, ctx.cfg.embedder)


DATASET = "instructions"
STAGE_SPEC = Stage(
    DATASET, ("synthesize", "engine", "seed", "embedder"), process, prepare, uses_engine=True, cpus=0.5, prompts=(PROMPT,)
)
