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
from synthq.tasks.core.constraints import as_record, describe, stated
from synthq.tasks.core.errors import LakeError
from synthq.tasks.core.lake import StageResult
from synthq.tasks.core.prompts import load_prompt
from synthq.tasks.core.records import INSTRUCTIONS, REJECTED, rejection, table
from synthq.tasks.shards.stage import Stage
from synthq.tasks.llm.engine import output_model, rejected_output
from synthq.tasks.synthesize.carry import carried
from synthq.tasks.synthesize.demos import demonstration_vectors
from synthq.tasks.synthesize.outputs import Synthesis
from synthq.tasks.synthesize.plan import CONSTRAIN, PROMPT, Planned, build_requests

STAGE = "synthesize"


def instruction(plan: Planned, value: Synthesis, model: str, version: str, appended: tuple[str, ...] = ()) -> dict:
    doc = plan.doc
    return {
        "id": hashlib.sha256(f"{doc['id']}:{version}".encode()).hexdigest()[:16],
        "document_id": doc["id"],
        "document_url": doc["url"],
        "demonstration_ids": plan.demonstration_ids,
        **value.model_dump(),
        "constraints": [as_record(c, "appended" if c["kind"] in appended else "model") for c in plan.constraints],
        "model": model,
        "prompt_version": version,
    }


def with_constraints(plan: Planned, value: Synthesis, unstated: str) -> tuple[Synthesis, tuple[str, ...]]:
    """The synthesis with every constraint of the plan stated in its query: as the model wrote it,
    or with IFEval's statements of the missing ones appended (unstated=append); returns the
    kinds appended. With unstated=reject, a query that misses any raises Unstated."""
    missing = [c for c in plan.constraints if not stated(c, value.query)]
    if not missing:
        return value, ()
    if unstated == "reject":
        raise Unstated(", ".join(c["kind"] for c in missing))
    query = " ".join([value.query.rstrip(), *(describe(c) for c in missing)])
    return value.model_copy(update={"query": query}), tuple(c["kind"] for c in missing)


class Unstated(Exception):
    """The query leaves out the arguments of these constraint kinds."""


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
    woven = {"model": 0, "appended": 0}  # constraints of kept queries, by who stated them
    for plan, out in zip(plans, parsed):
        if out.value is None:
            ref = {"document_id": plan.doc["id"], "demonstration_ids": plan.demonstration_ids}
            rejected.append(rejected_output(STAGE, out, plan.doc["id"], ref))
            continue
        try:
            value, appended = with_constraints(plan, out.value, ctx.cfg.synthesize.constraints.unstated)
        except Unstated as missing:
            row = instruction(plan, out.value, ctx.model_name, version)
            rejected.append(rejection(STAGE, "constraint_not_stated", f"the query does not state {missing}", plan.doc["id"], row))
            continue
        kept.append(instruction(plan, value, ctx.model_name, version, appended))
        woven["model"] += len(plan.constraints) - len(appended)
        woven["appended"] += len(appended)
    return StageResult(table(kept, INSTRUCTIONS), table(rejected, REJECTED), {**shard_stats(plans), "carried": len(done), "constraints_stated": woven})


def prepare(ctx: StageContext) -> None:
    demos = ctx.lake.read("demonstrations").to_pylist()
    if not demos:
        raise LakeError("The demonstrations dataset is empty: attribution grounded no seed (see its report).")
    ctx.extras["demonstrations"] = demos
    if ctx.cfg.synthesize.similar_fraction > 0:
        ctx.extras["demonstration_vectors"] = demonstration_vectors(ctx.lake, demos, ctx.cfg.embedder)


DATASET = "instructions"
STAGE_SPEC = Stage(
    DATASET, ("synthesize", "engine", "seed", "embedder"), process, prepare, uses_engine=True, cpus=0.5, prompts=(PROMPT, CONSTRAIN)
)
