"""Splitting batches across an engine pool: groups stay whole, results come back in order.

The pool runs on real Ray with small stand-in actors (two vLLM engines do not fit this
machine); the real engine path with one replica is tested in test_vllm_engine.py."""

import pytest

from synthq.tasks.core.config import EngineConfig
from synthq.tasks.llm.dispatch import runs, split
from synthq.tasks.llm.engine import Request, Result
from synthq.tasks.llm.ray_engine import RayEngine, actor_name, pool_size


def _requests(groups: list[int]) -> list[Request]:
    """One request per entry; equal entries in a row form a group, 0 means no group."""
    return [Request(f"r{i}", [{"role": "user", "content": f"q{i}"}], {}, group=f"g{g}" if g else "") for i, g in enumerate(groups)]


def test_runs_follow_groups():
    reqs = _requests([1, 1, 1, 0, 0, 2, 2, 3])
    assert [list(r) for r in runs(reqs)] == [[0, 1, 2], [3], [4], [5, 6], [7]]


def test_split_keeps_groups_whole_balanced_and_in_order():
    reqs = _requests([g for g in range(1, 13) for _ in range(8)])  # 12 groups of 8
    parts = split(reqs, 3)
    assert [len(p) for p in parts] == [32, 32, 32]
    assert sum(parts, []) == list(range(96))
    owner = {i: n for n, part in enumerate(parts) for i in part}
    assert all(len({owner[i] for i in r}) == 1 for r in runs(reqs))  # no group is cut
    uneven = split(_requests([1] * 7 + [2] * 2 + [0] * 3), 2)
    assert sum(map(len, uneven)) == 12 and max(map(len, uneven)) <= 9
    assert split(_requests([1, 1]), 4) == [[], [], [0, 1], []]
    assert split(_requests([0, 0, 0]), 1) == [[0, 1, 2]]


def test_pool_size():
    assert pool_size(EngineConfig(), cluster_gpus=0) == 1
    assert pool_size(EngineConfig(), cluster_gpus=8) == 8
    assert pool_size(EngineConfig(tensor_parallel_size=2), cluster_gpus=8) == 4
    assert pool_size(EngineConfig(replicas=3), cluster_gpus=8) == 3
    cfg = EngineConfig()
    assert actor_name(cfg, 1) == actor_name(cfg) + "-1"


class Recorder:
    """Stands in for an engine actor: answers with the request id and remembers its batches."""

    def __init__(self):
        self.batches = []

    def generate(self, requests):
        self.batches.append([r.id for r in requests])
        return [Result(r.id, r.id, "stop") for r in requests]

    def seen(self):
        return self.batches

    def ready(self):
        return "recorder"


@pytest.fixture
def recorders(ray_local):
    import ray

    actors = [ray.remote(Recorder).options(num_cpus=0).remote() for _ in range(3)]
    yield actors
    for a in actors:
        ray.kill(a)


def test_pool_dispatches_whole_groups_and_gathers_in_order(recorders):
    import ray

    engine = RayEngine(recorders, "m")
    reqs = _requests([g for g in range(1, 7) for _ in range(5)])  # 6 groups of 5
    out = engine.generate(reqs)
    assert [r.id for r in out] == [r.id for r in reqs] and [r.text for r in out] == [r.id for r in reqs]
    seen = ray.get([a.seen.remote() for a in recorders])
    assert [len(b[0]) for b in seen] == [10, 10, 10]  # one part per replica, two groups each
    by_group = {}
    for n, batches in enumerate(seen):
        for rid in batches[0]:
            by_group.setdefault(reqs[int(rid[1:])].group, set()).add(n)
    assert all(len(replicas) == 1 for replicas in by_group.values())
    assert engine.generate([]) == []
    small = engine.generate(_requests([0]))  # a lone request goes to the next replica in turn
    assert small[0].id == "r0" and engine.wait_ready() == "recorder"
