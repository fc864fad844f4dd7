"""Choosing the demonstrations a group of documents shares: similar ones mixed with random ones.

The method draws up to `max_demonstrations` at random and adds them while the prompt stays
under `prompt_tokens` (counted with the model's tokenizer, chat template included). Here a
group of similar documents shares one draw: a `similar_fraction` of it are the demonstrations
nearest to the group (their document and seed against the group's documents, by embedding),
the rest are drawn at random, seeded by the group. Demonstrations grounded in one of the
group's own documents are left out: they would show the model a real user's request for the
very document it writes about.
"""

from __future__ import annotations

import hashlib
import io
import random

import numpy as np

from synthq.tasks.core.embeddings import embed
from synthq.tasks.core.lake import Lake
from synthq.tasks.core.prompts import Prompt

VECTORS_DIR = "indexes/demonstrations"
PASSAGE_CHARS = 2000  # what the encoder reads of a demonstration: its seed, then its document


def render_demonstration(prompt: Prompt, demo: dict, tokens, doc_tokens: int) -> str:
    comp = demo["query_compositions"]
    return prompt.render(
        "demonstration",
        document=tokens.cut(demo["document_text"], doc_tokens),
        scene=demo["scene"],
        query=demo["seed_prompt"],
        **comp,
    )


def demonstration_vectors(lake: Lake, demos: list[dict], embedder: str) -> np.ndarray:
    """Unit embeddings of the demonstrations, computed once per demonstration set and embedder
    and kept in the lake (every shard of the run reads the same file)."""
    key = hashlib.sha256("\n".join([embedder, *(d["id"] for d in demos)]).encode()).hexdigest()[:16]
    path = lake.path(VECTORS_DIR, f"{key}.npy")
    if lake.fs.exists(path):
        return np.load(io.BytesIO(lake.fs.cat_file(path)))
    vectors = embed([f"{d['seed_prompt']}\n{d['document_text']}"[:PASSAGE_CHARS] for d in demos], embedder)
    buf = io.BytesIO()
    np.save(buf, vectors)
    lake.write_bytes(path, buf.getvalue())
    return vectors


def interleave(similar: list, randoms: list, similar_fraction: float) -> list:
    """Both lists merged so that every prefix keeps about `similar_fraction` similar items:
    when the budget stops early, the mix still holds."""
    out, s, r = [], 0, 0
    while s < len(similar) or r < len(randoms):
        want_similar = s < similar_fraction * (len(out) + 1) - 1e-9
        if (want_similar and s < len(similar)) or r == len(randoms):
            out.append(similar[s])
            s += 1
        else:
            out.append(randoms[r])
            r += 1
    return out


def draw(
    demos: list[dict],
    similarity: np.ndarray | None,
    excluded_documents: set[str],
    limit: int,
    similar_fraction: float,
    rng: random.Random,
) -> list[dict]:
    """Up to `limit` candidates in prompt order: the nearest by `similarity` (one score per
    demonstration; None when nothing is similarity-aware) mixed with a random draw."""
    pool = [i for i, d in enumerate(demos) if d["document_id"] not in excluded_documents]
    n_similar = round(min(limit, len(pool)) * similar_fraction) if similarity is not None else 0
    nearest = sorted(pool, key=lambda i: (-float(similarity[i]), demos[i]["id"]))[:n_similar] if n_similar else []
    taken = set(nearest)
    rest = [i for i in pool if i not in taken]
    randoms = rng.sample(rest, k=min(limit - len(nearest), len(rest)))
    return [demos[i] for i in interleave(nearest, randoms, similar_fraction)]


def choose(
    candidates: list[dict], blocks: dict[str, tuple[str, int]], base_tokens: int, budget: int, fill: str = "skip"
) -> list[dict]:
    """Candidates in order whose blocks fit the budget on top of `base_tokens`; at the first one
    that does not fit, `fill` "skip" tries the next, "stop" (the method) ends the block.

    `blocks` maps demo id -> (rendered block, its token count), computed once per shard.
    """
    chosen, used = [], base_tokens
    for demo in candidates:
        cost = blocks[demo["id"]][1]
        if used + cost > budget:
            if fill == "stop":
                break
            continue
        chosen.append(demo)
        used += cost
    return chosen
