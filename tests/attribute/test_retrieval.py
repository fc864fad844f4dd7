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
