"""Choosing demonstrations for a document: a seeded random draw, added while the prompt fits.

As in the method: draw up to `max_demonstrations` at random and add them while the prompt
stays under `prompt_tokens` (counted with the model's tokenizer, chat template included).
"""

from __future__ import annotations

import random

from tasks.core.prompts import Prompt


def render_demonstration(prompt: Prompt, demo: dict, tokens, doc_tokens: int) -> str:
    comp = demo["query_compositions"]
    return prompt.render(
        "demonstration",
        document=tokens.cut(demo["document_text"], doc_tokens),
        scene=demo["scene"],
        query=demo["seed_prompt"],
        **comp,
    )


def choose(
    demos: list[dict],
    blocks: dict[str, tuple[str, int]],
    base_tokens: int,
    budget: int,
    limit: int,
    rng: random.Random,
) -> list[dict]:
    """Demos in draw order whose blocks fit the budget on top of `base_tokens`.

    `blocks` maps demo id -> (rendered block, its token count), computed once per shard.
    """
    order = rng.sample(demos, k=min(limit, len(demos)))
    chosen, used = [], base_tokens
    for demo in order:
        cost = blocks[demo["id"]][1]
        if used + cost > budget:
            continue
        chosen.append(demo)
        used += cost
    return chosen
