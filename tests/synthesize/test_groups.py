"""Grouping documents by embedding: balanced groups of similar documents, seeded."""

import numpy as np

from synthq.tasks.synthesize.groups import group_documents


def _topics(n_topics: int, per_topic: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Unit vectors around `n_topics` random directions, shuffled; and each one's topic."""
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(n_topics, 32))
    topic = np.repeat(np.arange(n_topics), per_topic)
    vecs = centers[topic] + 0.15 * rng.normal(size=(len(topic), 32))
    order = rng.permutation(len(topic))
    vecs = vecs[order] / np.linalg.norm(vecs[order], axis=1, keepdims=True)
    return vecs.astype(np.float32), topic[order]


def test_groups_follow_topics_and_cover_every_document_once():
    vecs, topic = _topics(4, 8)
    groups = group_documents(vecs, 8, seed=0)
    assert sorted(i for g in groups for i in g) == list(range(32))
    assert sorted(len(g) for g in groups) == [8, 8, 8, 8]
    assert all(len({topic[i] for i in g}) == 1 for g in groups)


def test_groups_never_exceed_the_size_and_are_seeded():
    vecs, _ = _topics(3, 11, seed=1)
    groups = group_documents(vecs, 5, seed=0)
    assert max(len(g) for g in groups) <= 5 and len(groups) == 7  # ceil(33 / 5)
    assert groups == group_documents(vecs, 5, seed=0)
    assert all(g == sorted(g) for g in groups) and [g[0] for g in groups] == sorted(g[0] for g in groups)


def test_small_shards_and_group_size_one():
    vecs, _ = _topics(2, 2)
    assert group_documents(vecs, 8, seed=0) == [[0, 1, 2, 3]]
    assert group_documents(vecs, 1, seed=0) == [[0], [1], [2], [3]]
    assert group_documents(vecs[:0], 8, seed=0) == []
