"""Corpus retrieval modes on real FAISS, real bm25s and the bundled embedder: recall@1 on the
retrieval set decides the default mode; fusion, persistence in the lake and empty matches."""

import pytest

from synthq.tasks.attribute import lexical
from synthq.tasks.attribute.grounding import corpus_documents, fuse, prepare
from synthq.tasks.attribute.retrieve import load_index
from synthq.tasks.core.config import AttributeConfig, FactoryConfig
from synthq.tasks.shards.context import StageContext
from synthq.tasks.core.lake import Lake
from tests.attribute.retrieval_set import DOCUMENTS, QUERIES, evaluate
from tests.core.test_neardup import mapped


@pytest.fixture(scope="module")
def recall_lake(tmp_path_factory):
    lake_dir = str(tmp_path_factory.mktemp("retrieval") / "lake")
    return lake_dir, evaluate(lake_dir)


def test_recall_at_1_per_mode_and_the_default_is_the_best(recall_lake):
    _, recall = recall_lake
    print(f"recall@1 on {len(DOCUMENTS)} documents, {len(QUERIES)} queries: {recall}")
    assert len(DOCUMENTS) >= 30 + len(QUERIES) // 4 and len(QUERIES) >= 30
    assert all(value >= 0.9 for value in recall.values()), recall
    default = AttributeConfig().retrieval
    assert recall[default] == max(recall.values()), f"the default {default} is not the best mode: {recall}"


def test_rrf_sums_reciprocal_ranks_and_breaks_ties_by_dense_rank():
    fused = fuse([(7, 0.9), (3, 0.8)], [(3, 12.0), (5, 9.0)], k=60)
    assert fused[0] == (3, pytest.approx(1 / 62 + 1 / 61))  # in both lists beats the top of one
    assert [row for row, _ in fused[1:]] == [7, 5]  # 1/61 each: dense's first wins the tie
    assert fused[1][1] == pytest.approx(1 / 61)


def _ctx(lake_dir: str, mode: str) -> StageContext:
    lake = Lake(lake_dir)
    index, ids = load_index(lake)
    ctx = StageContext(cfg=FactoryConfig(lake=lake_dir, attribute={"retrieval": mode}), lake=lake, extras={"index": index, "index_ids": ids})
    prepare(ctx)
    return ctx


def test_every_mode_records_the_dense_cosine_and_its_own_score(recall_lake):
    lake_dir, _ = recall_lake
    assert lexical.load(Lake(lake_dir))[1] == [k for k, _, _ in DOCUMENTS]  # kept in the lake beside the dense index
    query = "Explain why Rome collapsed in the west. Odoacer, 476, barbarian migrations"
    seen = {}
    for mode in ("dense", "bm25", "hybrid"):
        found = corpus_documents(_ctx(lake_dir, mode), [({"id": "s"}, None)], [query], mode)
        (doc_id, cos), info = found.hits[0], found.info["s"]
        assert doc_id == "roman" and info["retrieval"] == mode and info["retrieval_query"] == query
        seen[mode] = (cos, info["retrieval_rank_score"], info["retrieval_provider"])
    assert seen["dense"][0] == pytest.approx(seen["bm25"][0], abs=1e-5) == pytest.approx(seen["hybrid"][0], abs=1e-5)
    assert seen["dense"][1] == pytest.approx(seen["dense"][0])  # dense ranks by the cosine itself
    assert seen["bm25"][1] > 1.0 and seen["hybrid"][1] == pytest.approx(2 / 61)  # first in both lists
    assert [p for _, _, p in seen.values()] == ["faiss", "bm25s", "faiss+bm25s"]


def test_bm25_query_without_a_corpus_word_is_rejected_with_a_reason(recall_lake):
    lake_dir, _ = recall_lake
    found = corpus_documents(_ctx(lake_dir, "bm25"), [({"id": "s", "prompt": "?"}, None)], ["zxqv wplk"], "bm25")
    assert not found.kept and found.rejected[0]["reason"] == "no_grounding_document"
    assert "no word of the query appears in the corpus" in found.rejected[0]["detail"]


def test_an_ivf_index_finds_what_the_flat_one_finds_and_reports_its_recall(tmp_path):
    """Past its threshold the index is IVF (8-bit vectors in lists): the retrieval set's queries
    find the same documents through it, and the build measures its recall@1 against exact search."""
    import json

    from synthq.tasks.attribute.retrieve import INDEX_DIR
    from synthq.tasks.core.attribute_config import IndexConfig

    lake_dir = str(tmp_path / "lake")
    recall = evaluate(lake_dir, modes=("dense",), index=IndexConfig(ivf_above=len(DOCUMENTS) - 1, nlist=4, nprobe=4))
    lake = Lake(lake_dir)
    info = json.loads(lake.fs.cat_file(lake.path(INDEX_DIR, "index.json")))
    index, _ = load_index(lake)
    assert info["kind"] == "ivf" and info["nlist"] == 4 and index.nprobe == 4 and mapped(index), info
    assert info["recall_sample"] == len(DOCUMENTS) and info["recall_at_1"] >= 0.95, info  # every list searched
    assert recall["dense"] >= 0.95, recall


def test_the_index_of_a_remote_lake_is_searched_from_one_copy_per_node(recall_lake, tmp_path, monkeypatch):
    """Every seed shard loads the index: from the local lake it is memory-mapped where it lies;
    from another filesystem it is copied once into the node's cache and mapped from there (the
    shards of a node share the pages), and a rebuilt index replaces the copy."""
    import numpy as np

    from synthq.tasks.attribute.retrieve import INDEX_DIR
    from synthq.tasks.core.embeddings import embed

    monkeypatch.setenv("SYNTHQ_CACHE", str(tmp_path / "cache"))
    local = Lake(recall_lake[0])
    remote = Lake(f"memory://remote-{tmp_path.name}")
    for name in ("index.faiss", "ids.parquet", "index.json"):
        remote.write_bytes(remote.path(INDEX_DIR, name), local.fs.cat_file(local.path(INDEX_DIR, name)))
    (here, here_ids), (there, there_ids) = load_index(local), load_index(remote)
    assert mapped(here) and mapped(there) and here_ids.to_pylist() == there_ids.to_pylist() == [k for k, _, _ in DOCUMENTS]
    qvecs = embed([text for _, text in QUERIES[:8]], "bundled")
    assert np.array_equal(here.search(qvecs, 3)[1], there.search(qvecs, 3)[1])
    copies = lambda: sorted(p.name for p in (tmp_path / "cache" / "indexes").iterdir())  # noqa: E731
    first = copies()
    load_index(remote)
    assert len(first) == 1 and copies() == first  # the second shard maps the same copy
    remote.write_bytes(remote.path(INDEX_DIR, "index.faiss"), local.fs.cat_file(local.path(INDEX_DIR, "index.faiss")))
    again, _ = load_index(remote)
    assert len(copies()) == 1 and copies() != first and np.array_equal(again.search(qvecs, 3)[1], here.search(qvecs, 3)[1])


def test_recall_at_1_counts_what_a_narrow_ivf_search_misses():
    """recall_at_1 against exact search: 1.0 for the flat index, less when an IVF index searches
    one of many lists of scattered vectors (their nearest neighbours often sit in another list)."""
    import faiss
    import numpy as np

    from synthq.tasks.attribute.retrieve import recall_at_1
    from synthq.tasks.core.neardup import trained_ivf

    vecs = np.random.default_rng(1).normal(size=(2000, 32)).astype(np.float32)
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    parts = {"a": vecs[:1200], "b": vecs[1200:]}  # two shards, read one at a time

    class Shards:  # what recall_at_1 reads the vectors from: a lake of two vector files
        def __init__(self):
            import io

            from synthq.tasks.core.lake import Lake

            self.lake = Lake(f"memory://recall-{id(self)}")
            for name, part in parts.items():
                buf = io.BytesIO()
                np.savez(buf, vectors=part, ids=np.array([f"{name}{i}" for i in range(len(part))]))
                self.lake.write_bytes(self.lake.path(f"{name}.npz"), buf.getvalue())
            self.paths = [self.lake.path(f"{name}.npz") for name in parts]

    shards, rows = Shards(), np.arange(0, 2000, 10)
    flat = faiss.IndexFlatIP(32)
    flat.add(vecs)
    assert recall_at_1(shards.lake, shards.paths, flat, rows) == (1.0, len(rows))
    narrow = trained_ivf(32, 64, vecs, nprobe=1)
    narrow.add(vecs)
    found, n = recall_at_1(shards.lake, shards.paths, narrow, rows)
    assert n == len(rows) and found < 0.8, found
