"""The attribute stage for one shard of seeds.

1. The LLM states each seed's intent and at most 5 keywords.
2. The keywords retrieve the best document from the corpus index.
3. Given document + seed, the LLM writes the scene and the query compositions.
Every seed that fails a step is rejected with the step's reason; the rest become
demonstrations.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pyarrow as pa

from synthq.tasks.attribute.outputs import Grounding, SeedAnalysis
from synthq.tasks.attribute.grounding import find_documents, prepare as prepare_retrieval, read_documents
from synthq.tasks.attribute.retrieve import load_index
from synthq.tasks.attribute.seeds import read_seeds
from synthq.tasks.core.config import FactoryConfig
from synthq.tasks.shards.context import StageContext
from synthq.tasks.core.lake import Lake, StageResult
from synthq.tasks.shards.stage import ShardSpec, Stage, dataset_identity
from synthq.tasks.sample import SEEDS, resolve
from synthq.tasks.core.prompts import load_prompt
from synthq.tasks.core.records import DEMONSTRATIONS, REJECTED, rejection, table
from synthq.tasks.llm.engine import Request, output_model, rejected_output, schema_for

STAGE = "attribute"
PROMPTS = Path(__file__).parent / "prompts"
KEYWORDS = PROMPTS / "keywords.yaml"
GROUND = PROMPTS / "ground.yaml"


def _request(ctx: StageContext, rid: str, messages: list[dict], schema: dict) -> Request:
    a = ctx.cfg.attribute
    return ctx.request(rid, messages, schema, a.max_output_tokens, a.temperature)


def analyse(ctx: StageContext, seeds: list[dict]):
    prompt = load_prompt(KEYWORDS)
    model = output_model(SeedAnalysis, ctx.cfg.attribute.output_caps)
    schema = schema_for(model)
    reqs = [
        _request(ctx, f"kw:{prompt.version}:{s['id']}", prompt.messages(prompt=s["prompt"], max_keywords=ctx.cfg.attribute.max_keywords), schema)
        for s in seeds
    ]
    return ctx.complete(reqs, model)


def ground(ctx: StageContext, pairs: list[tuple[dict, dict]]):
    """Scene and compositions for each (seed, document already cut to the budget)."""
    prompt = load_prompt(GROUND)
    model = output_model(Grounding, ctx.cfg.attribute.output_caps)
    schema = schema_for(model)
    reqs = []
    for seed, doc in pairs:
        messages = prompt.messages(prompt=seed["prompt"], title=doc["title"], document=doc["text"])
        reqs.append(_request(ctx, f"gr:{prompt.version}:{seed['id']}:{doc['id']}", messages, schema))
    return ctx.complete(reqs, model), prompt.version


def process(seeds_tbl: pa.Table, ctx: StageContext) -> StageResult:
    """Seeds (id, prompt) -> demonstrations. Needs ctx.extras: index, index_ids (see `prepare`)."""
    seeds = seeds_tbl.to_pylist()
    rejected = []
    analyses = analyse(ctx, seeds)
    ok = []
    for seed, parsed in zip(seeds, analyses):
        if parsed.value is None:
            rejected.append(rejected_output(STAGE, parsed, seed["id"], seed))
        else:
            ok.append((seed, parsed.value))

    queries = [f"{a.intent} {' '.join(a.keywords)}" for _, a in ok]
    found = find_documents(ctx, ok, queries)  # by attribute.retrieval; a seed may find nothing
    rejected += found.rejected
    how, floor, grounded = found.info, ctx.cfg.attribute.min_retrieval_score, []
    for (seed, analysis), (doc_id, score) in zip(found.kept, found.hits):
        if score < floor:  # the dense cosine in every mode: an unrelated top hit is no grounding
            detail = f"best document {doc_id} scores {score:.3f} < attribute.min_retrieval_score={floor:g}"
            rejected.append(rejection(STAGE, "no_grounding_document", detail, seed["id"], {**seed, "keywords": analysis.keywords}))
        else:
            grounded.append(((seed, analysis), (doc_id, score)))
    ok, hits = [g[0] for g in grounded], [g[1] for g in grounded]
    documents = found.documents if found.documents is not None else read_documents(ctx.lake, {doc_id for doc_id, _ in hits})
    budget = ctx.cfg.attribute.document_tokens
    pairs = [
        (seed, {**documents[doc_id], "text": ctx.tokens.cut(documents[doc_id]["text"], budget)})
        for (seed, _), (doc_id, _) in zip(ok, hits)
    ]
    groundings, version = ground(ctx, pairs)

    demos = []
    for (seed, analysis), (doc_id, score), (_, doc), parsed in zip(ok, hits, pairs, groundings):
        if parsed.value is None:
            rejected.append(rejected_output(STAGE, parsed, seed["id"], {**seed, "document_id": doc_id}))
            continue
        demos.append(
            {
                "id": hashlib.sha256(f"{seed['id']}:{doc_id}".encode()).hexdigest()[:16],
                "seed_id": seed["id"],
                "seed_prompt": seed["prompt"],
                "intent": analysis.intent,
                "keywords": analysis.keywords,
                "document_id": doc_id,
                "document_url": doc["url"],
                "document_text": doc["text"],
                "retrieval_score": score,
                **how[seed["id"]],
                "scene": parsed.value.scene,
                "query_compositions": parsed.value.query_compositions.model_dump(),
                "model": ctx.model_name,
                "prompt_version": version,
            }
        )
    stats = {"seeds": len(seeds), "rejected": len(rejected)}
    return StageResult(table(demos, DEMONSTRATIONS), table(rejected, REJECTED), stats)


def prepare(ctx: StageContext) -> None:
    """Load the corpus index (memory-mapped) and what the retrieval mode needs beside it."""
    index, ids = load_index(ctx.lake)
    ctx.extras.update(index=index, index_ids=ids)
    prepare_retrieval(ctx)


def seed_specs(cfg: FactoryConfig) -> tuple[list[ShardSpec], list[dict], dict[str, str]]:
    """Shards of valid seeds, the rejected seed rows (written as shard 'bad-seeds'), and how
    each seed file was mapped (file -> prompt/id columns).

    A shard's input is its seeds and the corpus they are grounded in: when documents are
    added, every seed is matched again (keywords come from the LLM cache) and only the seeds
    whose best document changed are grounded anew. In search mode the corpus is the web, and
    the pages the search added are not an input."""
    found = read_seeds(resolve(cfg.attribute.seeds, SEEDS), cfg.attribute.seed_fields.model_dump())
    seeds, bad = found.seeds, found.rejected
    corpus = "search" if cfg.attribute.retrieval == "search" else dataset_identity(Lake(cfg.lake), "documents")
    specs = []
    for start in range(0, len(seeds), cfg.shard_size):
        chunk = seeds[start : start + cfg.shard_size]
        input_id = hashlib.sha256(json.dumps([corpus, chunk], sort_keys=True).encode()).hexdigest()[:16]
        specs.append(ShardSpec(f"{start // cfg.shard_size:05d}", input_id, rows=pa.Table.from_pylist(chunk)))
    return specs, bad, found.detected


def write_bad_seeds(lake: Lake, bad: list[dict], digest: str) -> dict:
    """Bad seed lines as a shard of their own, so they are counted like every other drop."""
    result = StageResult(DEMONSTRATIONS.empty_table(), table(bad, REJECTED), {"bad_seeds": len(bad)})
    input_id = hashlib.sha256(json.dumps(bad, sort_keys=True).encode()).hexdigest()[:16]
    return lake.write_shard(DATASET, "bad-seeds", result, input_id=input_id, config=digest)


DATASET = "demonstrations"
STAGE_SPEC = Stage(
    DATASET, ("attribute", "engine", "embedder", "seed"), process, prepare, uses_engine=True, cpus=0.5, prompts=(KEYWORDS, GROUND)
)

