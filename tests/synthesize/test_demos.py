"""Choosing a group's demonstrations: the nearest mixed with random ones, within a token budget."""

import random

import numpy as np

from synthq.tasks.synthesize.demos import choose, draw, interleave


def _demos(n: int) -> list[dict]:
    return [{"id": f"d{i}", "document_id": f"doc{i}"} for i in range(n)]


def test_choose_keeps_order_and_stops_at_budget():
    demos = _demos(20)
    blocks = {d["id"]: ("x", 100) for d in demos}
    picked = choose(demos, blocks, base_tokens=500, budget=1000)
    assert [d["id"] for d in picked] == ["d0", "d1", "d2", "d3", "d4"]
    blocks["d1"] = ("long", 450)
    assert [d["id"] for d in choose(demos, blocks, 500, 1000)] == ["d0", "d2", "d3", "d4", "d5"]  # skips what does not fit


def test_interleave_keeps_the_ratio_in_every_prefix():
    mixed = interleave(["S"] * 5, ["r"] * 5, 0.5)
    assert mixed == ["S", "r"] * 5
    mixed = interleave(["S"] * 3, ["r"] * 7, 0.3)
    assert all(abs(mixed[:k].count("S") - 0.3 * k) <= 1 for k in range(1, 11))
    assert interleave(["S"] * 2, ["r"], 0.5) == ["S", "r", "S"]  # leftovers go last


def test_draw_mixes_nearest_and_random_and_is_seeded():
    demos = _demos(30)
    similarity = np.linspace(1.0, 0.0, 30)  # d0 is the nearest, d29 the farthest
    picked = draw(demos, similarity, set(), 10, 0.5, random.Random(7))
    ids = [d["id"] for d in picked]
    assert len(ids) == 10 == len(set(ids))
    assert ids[0::2] == ["d0", "d1", "d2", "d3", "d4"]  # the five nearest, nearest first
    assert all(int(i[1:]) >= 5 for i in ids[1::2])  # the rest drawn from the others
    assert ids == [d["id"] for d in draw(demos, similarity, set(), 10, 0.5, random.Random(7))]
    assert ids != [d["id"] for d in draw(demos, similarity, set(), 10, 0.5, random.Random(8))]


def test_draw_leaves_out_demonstrations_of_the_groups_own_documents():
    demos = _demos(12)
    similarity = np.linspace(1.0, 0.0, 12)
    picked = draw(demos, similarity, {"doc0", "doc1"}, 10, 1.0, random.Random(0))
    assert [d["id"] for d in picked] == [f"d{i}" for i in range(2, 12)]


def test_draw_without_similarity_is_the_methods_random_draw():
    demos = _demos(30)
    picked = draw(demos, None, set(), 10, 0.5, random.Random(3))
    assert len(picked) == 10 and [d["id"] for d in picked] != [f"d{i}" for i in range(10)]
