"""Demonstration choice within a token budget, counted with the bundled model's tokenizer."""

import random

from tasks.core.config import FactoryConfig
from tasks.core.context import StageContext
from tasks.core.lake import Lake
from tasks.synthesize.demos import choose
from tasks.synthesize.process import build_requests


def _demo(i: int, words: int) -> dict:
    return {
        "id": f"d{i}",
        "seed_prompt": f"Request number {i} about topic {i}.",
        "document_text": " ".join(f"word{j}" for j in range(words)),
        "scene": f"A user {i} who needs help.",
        "query_compositions": {"ability": "a", "knowledge": "k", "extra_information": "e", "output": "o"},
    }


def test_choose_stops_at_budget_and_is_seeded():
    demos = [{"id": f"d{i}"} for i in range(20)]
    blocks = {d["id"]: ("x", 100) for d in demos}
    picked = choose(demos, blocks, base_tokens=500, budget=1000, limit=10, rng=random.Random(1))
    assert len(picked) == 5
    again = choose(demos, blocks, base_tokens=500, budget=1000, limit=10, rng=random.Random(1))
    assert [d["id"] for d in picked] == [d["id"] for d in again]
    assert choose(demos, blocks, 500, 10_000, 3, random.Random(1)).__len__() == 3


def test_prompts_stay_within_budget_in_real_tokens(lake_dir):
    cfg = FactoryConfig(lake=lake_dir, synthesize={"prompt_tokens": 1200, "document_tokens": 300, "demonstration_document_tokens": 120})
    ctx = StageContext(cfg=cfg, lake=Lake(lake_dir))
    demos = [_demo(i, 400) for i in range(12)]
    docs = [{"id": f"doc{i}", "title": f"T{i}", "text": "lorem ipsum " * 2000} for i in range(3)]
    requests, demo_ids = build_requests(docs, demos, ctx)
    for req, ids in zip(requests, demo_ids):
        assert 1 <= len(ids) < 12
        assert ctx.tokens.count_messages(req.messages) <= 1200
        assert "…" in req.messages[1]["content"]  # the document was cut by tokens
    assert len({tuple(i) for i in demo_ids}) > 1  # each document draws its own demonstrations
