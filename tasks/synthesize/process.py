"""The synthesize stage for one shard of documents: one grounded instruction per document.

Each document gets its own seeded draw of demonstrations within the token budget, the
document cut by tokens, and a JSON-schema-constrained answer: thought, scene,
compositions, query. Failed outputs are rejected with their reason and raw text.
"""

from __future__ import annotations

import hashlib
import random
from pathlib import Path

import pyarrow as pa

from tasks.core.context import StageContext
from tasks.core.errors import LakeError
from tasks.core.lake import StageResult
from tasks.core.stage import Stage
from tasks.core.prompts import load_prompt
from tasks.core.records import INSTRUCTIONS, REJECTED, table
from tasks.llm.engine import Request, rejected_output, schema_for
from tasks.synthesize.demos import choose, render_demonstration
from tasks.synthesize.outputs import Synthesis

STAGE = "synthesize"
PROMPT = Path(__file__).parent / "prompts" / "synthesize.yaml"


def build_requests(docs: list[dict], demos: list[dict], ctx: StageContext) -> tuple[list[Request], list[list[str]]]:
    """One request per document, and the demonstration ids each one shows."""
    s = ctx.cfg.synthesize
    prompt = load_prompt(PROMPT)
    schema = schema_for(Synthesis)
    blocks = {}
    for demo in demos:
        block = render_demonstration(prompt, demo, ctx.tokens, s.demonstration_document_tokens)
        blocks[demo["id"]] = (block, ctx.tokens.count(block) + 2)  # + the blank lines between blocks
    requests, demo_ids = [], []
    for doc in docs:
        text = ctx.tokens.cut(doc["text"], s.document_tokens)
        base = ctx.tokens.count_messages(prompt.messages(demonstrations=[], title=doc["title"], document=text))
        rng = random.Random(f"{ctx.cfg.seed}:{doc['id']}")
        chosen = choose(demos, blocks, base, s.prompt_tokens, s.max_demonstrations, rng)
        messages = prompt.messages(demonstrations=[blocks[d["id"]][0] for d in chosen], title=doc["title"], document=text)
        rid = f"syn:{prompt.version}:{doc['id']}"
        requests.append(ctx.request(rid, messages, schema, s.max_output_tokens, s.temperature))
        demo_ids.append([d["id"] for d in chosen])
    return requests, demo_ids


def process(docs_tbl: pa.Table, ctx: StageContext) -> StageResult:
    """Documents -> instructions. Needs ctx.extras['demonstrations'] (list of dicts)."""
    docs = docs_tbl.to_pylist()
    version = load_prompt(PROMPT).version
    requests, demo_ids = build_requests(docs, ctx.extras["demonstrations"], ctx)
    parsed = ctx.complete(requests, Synthesis)
    kept, rejected = [], []
    usage = {"prompt_tokens": 0, "output_tokens": 0}
    for doc, ids, out in zip(docs, demo_ids, parsed):
        for key in usage:
            usage[key] += out.usage.get(key, 0)
        if out.value is None:
            ref = {"document_id": doc["id"], "demonstration_ids": ids}
            rejected.append(rejected_output(STAGE, out, doc["id"], ref))
            continue
        kept.append(
            {
                "id": hashlib.sha256(f"{doc['id']}:{version}".encode()).hexdigest()[:16],
                "document_id": doc["id"],
                "document_url": doc["url"],
                "demonstration_ids": ids,
                **out.value.model_dump(),
                "model": ctx.model_name,
                "prompt_version": version,
            }
        )
    stats = {"documents": len(docs), **usage, "mean_demonstrations": sum(map(len, demo_ids)) / max(len(docs), 1)}
    return StageResult(table(kept, INSTRUCTIONS), table(rejected, REJECTED), stats)


def prepare(ctx: StageContext) -> None:
    demos = ctx.lake.read("demonstrations").to_pylist()
    if not demos:
        raise LakeError("The demonstrations dataset is empty: attribution grounded no seed (see its report).")
    ctx.extras["demonstrations"] = demos


DATASET = "instructions"
STAGE_SPEC = Stage(DATASET, ("synthesize", "engine", "seed"), process, prepare, uses_engine=True, cpus=0.5)
