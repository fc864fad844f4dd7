"""The synthesis requests of a shard, grouped so that the engine's prefix cache does the work.

Documents are grouped by meaning (see groups.py). Each group shares one demonstration
block, chosen for the group (see demos.py) and byte-identical in every prompt of the group:
system prompt, then the block, then the document. The requests of a group are consecutive and
carry the group's name, so the engine prefills the shared part once and keeps the group on
one replica. The block fits the token budget on top of the group's longest document, so every
prompt of the group is within `prompt_tokens`.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from synthq.tasks.shards.context import StageContext
from synthq.tasks.core import constraints as verifiable
from synthq.tasks.core.embeddings import embed, passages
from synthq.tasks.core.words import FUNCTION_WORDS
from synthq.tasks.core.doc_vectors import shard_vectors
from synthq.tasks.core.prompts import Prompt, load_prompt
from synthq.tasks.llm.engine import Request, output_model, schema_for
from synthq.tasks.synthesize.demos import choose, demonstration_vectors, draw, render_demonstration
from synthq.tasks.synthesize.groups import group_documents, unit
from synthq.tasks.synthesize.outputs import Synthesis

PROMPT = Path(__file__).parent / "prompts" / "synthesize.yaml"
CONSTRAIN = Path(__file__).parent / "prompts" / "constrain.yaml"  # added for a query with verifiable constraints
BLOCKS_DIR = "indexes/demonstration_blocks"  # rendered, token-counted demonstrations, one file per set


@dataclass
class Planned:
    """One document's request, the demonstrations it shows and the group it belongs to."""

    doc: dict
    request: Request
    demonstration_ids: list[str]
    group: int
    shared_tokens: int  # tokens of the group's demonstration block
    constraints: list[dict] = field(default_factory=list)  # verifiable constraints the query must state


def demonstration_blocks(prompt: Prompt, demos: list[dict], ctx: StageContext) -> dict[str, tuple[str, int]]:
    """demo id -> (rendered block, its token count), once per run: the first shard renders and
    counts them and keeps them in the lake, the others read them (a block depends only on the
    demonstration, the prompt, the tokenizer and the document budget)."""
    doc_tokens = ctx.cfg.synthesize.demonstration_document_tokens
    tokenizer = ctx.cfg.engine.tokenizer or ctx.cfg.engine.model
    key = blocks_key(demos, prompt.version, tokenizer, doc_tokens)
    path = ctx.lake.path(BLOCKS_DIR, f"{key}.parquet")
    if ctx.lake.fs.exists(path):
        with ctx.lake.fs.open(path, "rb") as f:
            kept = pq.read_table(f).to_pydict()
        return {i: (b, n) for i, b, n in zip(kept["id"], kept["block"], kept["tokens"])}
    blocks = {}
    for demo in demos:
        block = render_demonstration(prompt, demo, ctx.tokens, doc_tokens)
        blocks[demo["id"]] = (block, ctx.tokens.count(block) + 2)  # + the blank lines between blocks
    ids = list(blocks)
    ctx.lake.write_table(path, pa.table({"id": ids, "block": [blocks[i][0] for i in ids], "tokens": [blocks[i][1] for i in ids]}))
    return blocks


def blocks_key(demos: list[dict], version: str, tokenizer: str, doc_tokens: int) -> str:
    """Changes when any demonstration's content, the prompt version, the tokenizer or the budget does."""
    digest = hashlib.sha256(json.dumps([version, tokenizer, doc_tokens], default=str).encode())
    for demo in demos:
        digest.update(json.dumps(demo, sort_keys=True, default=str).encode())
    return digest.hexdigest()[:16]


def embeddings(docs: list[dict], demos: list[dict], ctx: StageContext) -> tuple[np.ndarray | None, np.ndarray | None]:
    """Document and demonstration vectors, or None where the config needs none (group_size 1
    and similar_fraction 0 is the method's per-document random draw). The documents' vectors
    are the ones attribution's index was built from, when the lake keeps them for this shard."""
    s = ctx.cfg.synthesize
    if s.group_size == 1 and s.similar_fraction == 0:
        return None, None
    doc_vectors = shard_vectors(ctx.lake, ctx.shard, [d["id"] for d in docs], ctx.cfg.embedder) if ctx.shard else None
    if doc_vectors is None:  # the retrieval index embedded no such shard (a run without attribution's index)
        texts = passages(pa.table({"title": [d["title"] for d in docs], "text": [d["text"] for d in docs]}))
        doc_vectors = embed(texts, ctx.cfg.embedder)
    if s.similar_fraction == 0:
        return doc_vectors, None
    demo_vectors = ctx.extras.get("demonstration_vectors")
    if demo_vectors is None:
        demo_vectors = demonstration_vectors(ctx.lake, demos, ctx.cfg.embedder)
    return doc_vectors, demo_vectors


def group_rng(seed: int, doc_ids: list[str]) -> random.Random:
    """The random draw of a group depends on the seed and its documents only."""
    return random.Random(f"{seed}:{'|'.join(sorted(doc_ids))}")


def document_words(text: str, count: int = 8) -> list[str]:
    """The document's most frequent long content words: what a keyword constraint may ask to use or avoid."""
    words = [w for w in re.findall(r"[a-z]{6,}", text[:4000].lower()) if w not in FUNCTION_WORDS]
    return [w for w, _ in Counter(words).most_common(count)]


def constraints_for(doc: dict, ctx: StageContext) -> list[dict]:
    """The verifiable constraints of this document's query: a draw seeded by the run's seed and the
    document, so a rerun draws the same ones (synthesize.constraints)."""
    c = ctx.cfg.synthesize.constraints
    if not c.enabled:
        return []
    rng = random.Random(f"{ctx.cfg.seed}:constraints:{doc['id']}")
    if rng.random() >= c.share:
        return []
    return verifiable.draw(rng, rng.randint(1, c.max_per_query), verifiable.FREE_TEXT, document_words(doc["text"]))


def constraint_part(constraints: list[dict]) -> str:
    """What the request adds for the constraints: their statements and how to word them ('' for none)."""
    if not constraints:
        return ""
    return load_prompt(CONSTRAIN).user.render(rules=[verifiable.describe(c) for c in constraints]).strip()


def constrained(messages: list[dict], part: str) -> list[dict]:
    """The request's messages with the constraints' part after the document (the shared
    demonstration block before it stays byte-identical for the prefix cache)."""
    if not part:
        return messages
    return [*messages[:-1], {**messages[-1], "content": f"{messages[-1]['content']}\n\n{part}"}]


def build_requests(docs: list[dict], demos: list[dict], ctx: StageContext) -> list[Planned]:
    """One request per document, in group order (members of a group are consecutive)."""
    s = ctx.cfg.synthesize
    prompt = load_prompt(PROMPT)
    schema = schema_for(output_model(Synthesis, s.output_caps))
    blocks = demonstration_blocks(prompt, demos, ctx)
    texts = [ctx.tokens.cut(d["text"], s.document_tokens) for d in docs]
    rules = [constraints_for(d, ctx) for d in docs]
    parts = [constraint_part(r) for r in rules]
    bases = [  # each document's own part of the prompt, its constraints' statements included
        ctx.tokens.count_messages(constrained(prompt.messages(demonstrations=[], title=d["title"], document=t), part))
        for d, t, part in zip(docs, texts, parts)
    ]
    doc_vectors, demo_vectors = embeddings(docs, demos, ctx)
    groups = group_documents(doc_vectors, s.group_size, ctx.cfg.seed) if doc_vectors is not None else [[i] for i in range(len(docs))]
    planned = []
    for g, members in enumerate(groups):
        similarity = demo_vectors @ unit(doc_vectors[members].mean(axis=0)) if demo_vectors is not None else None
        ids = [docs[i]["id"] for i in members]
        rng = group_rng(ctx.cfg.seed, ids)
        candidates = draw(demos, similarity, set(ids), s.max_demonstrations, s.similar_fraction, rng)
        chosen = choose(candidates, blocks, max(bases[i] for i in members), s.prompt_tokens, s.fill)
        shown = [blocks[d["id"]][0] for d in chosen]
        shared = sum(blocks[d["id"]][1] for d in chosen)
        for i in members:
            messages = constrained(prompt.messages(demonstrations=shown, title=docs[i]["title"], document=texts[i]), parts[i])
            request = ctx.request(f"syn:{prompt.version}:{docs[i]['id']}", messages, schema, s.max_output_tokens, s.temperature)
            request = replace(request, group=f"syn:{g}")
            planned.append(Planned(docs[i], request, [d["id"] for d in chosen], g, shared, rules[i]))
    return planned
