"""Selection on real embeddings: min score, near-duplicates (best-scored kept), topics."""

import pyarrow as pa

from synthq.tasks.core.config import CurateConfig
from synthq.tasks.core.records import CRITERIA, CURATED
from synthq.tasks.curate.select import select


def _row(i: int, query: str, total: int) -> dict:
    scores = {f"score_{c}": int(k < total) for k, c in enumerate(CRITERIA)}
    return {
        "id": f"q{i}", "document_id": f"d{i}", "document_url": f"https://x.example/{i}", "demonstration_ids": [],
        "thought": "", "scene": "", "query_compositions": {"ability": "", "knowledge": "", "extra_information": "", "output": ""},
        "query": query, "constraints": [], "model": "m", "prompt_version": "p@1", **scores, "score_total": total,
        "score_model": "m", "score_prompt_version": "s@1", "topic": -1,
        "moderation": "", "moderation_categories": [],
    }


QUERIES = [
    ("How do I keep my sourdough starter alive while on vacation for two weeks?", 5),
    ("How can I keep my sourdough starter alive while I am on vacation for two weeks?", 6),
    ("Write a SQL query that ranks employees by salary within each department using window functions.", 4),
    ("Explain how a black hole's event horizon relates to its mass.", 3),
    ("What is the escape velocity at the event horizon of a black hole and why?", 2),
    ("Plan a monthly budget for a 4200 dollar income using the 50/30/20 rule.", 1),
]


def _table() -> pa.Table:
    return pa.Table.from_pylist([_row(i, q, s) for i, (q, s) in enumerate(QUERIES)], schema=CURATED)


def test_near_duplicates_keep_the_best_scored():
    res = select(_table(), CurateConfig(dedup_threshold=0.9), "bundled", 0)
    kept = res.kept.column("id").to_pylist()
    assert "q1" in kept and "q0" not in kept
    dup = [r for r in res.rejected.to_pylist() if r["reason"] == "near_duplicate"]
    assert [r["record_id"] for r in dup] == ["q0"] and "q1" in dup[0]["detail"]
    assert res.kept.num_rows + res.rejected.num_rows == len(QUERIES)


def test_min_score_and_topic_selection():
    res = select(_table(), CurateConfig(min_score=2, dedup_threshold=0.9, target_size=3), "bundled", 0)
    reasons = [r["reason"] for r in res.rejected.to_pylist()]
    assert reasons.count("low_score") == 1
    assert res.kept.num_rows == 3
    assert len(set(res.kept.column("topic").to_pylist())) == 3
    assert res.kept.num_rows + res.rejected.num_rows == len(QUERIES)
    # the two black-hole queries share a topic: only the better one stays
    kept = set(res.kept.column("id").to_pylist())
    assert not {"q3", "q4"} <= kept


def _sharded(lake_dir: str, tbl: pa.Table, cfg, shard_size: int):
    """Selection the way the flow runs it: scored shards screened one by one, one decision over
    them all, then the curated rows written shard by shard."""
    from synthq.tasks.core.config import FactoryConfig
    from synthq.tasks.core.lake import Lake, StageResult
    from synthq.tasks.core.records import REJECTED, rejection, table
    from synthq.tasks.curate.select import STAGE_SPEC, run_selection, selection_specs
    from synthq.tasks.shards.stage import run_shard

    lake, factory = Lake(lake_dir), FactoryConfig(lake=lake_dir, curate=cfg)
    for k, start in enumerate(range(0, tbl.num_rows, shard_size)):
        bad = table([rejection("curate", "llm_truncated", "d", f"x{k}", {})], REJECTED)
        lake.write_shard("scored", f"{k:05d}", StageResult(tbl.slice(start, shard_size), bad), input_id=str(k), config="c")
    fp, stats = run_selection(lake, factory, remote=False)
    for spec in selection_specs(lake, fp):
        run_shard(STAGE_SPEC, spec, factory, None)
    return lake, fp, stats


def test_shard_by_shard_selection_decides_as_one_table(lake_dir):
    """Over three scored shards, the same queries are kept and rejected for the same reasons as
    when the whole scored set is one table, and a rerun reuses the verdicts."""
    from synthq.tasks.core.config import FactoryConfig
    from synthq.tasks.curate.select import FOLDER, run_selection

    cfg = CurateConfig(min_score=2, dedup_threshold=0.9, target_size=3)
    whole = select(_table(), cfg, "bundled", 0)
    lake, fp, stats = _sharded(lake_dir, _table(), cfg, shard_size=2)
    kept = lake.read("curated")
    assert lake.shards("curated") == ["00000", "00001", "00002"]
    assert sorted(kept.column("id").to_pylist()) == sorted(whole.kept.column("id").to_pylist())
    assert dict(zip(kept.column("id").to_pylist(), kept.column("topic").to_pylist())) == dict(
        zip(whole.kept.column("id").to_pylist(), whole.kept.column("topic").to_pylist()))
    rejected = lake.read("curated", rejected=True).to_pylist()
    assert sorted((r["record_id"], r["reason"], r["detail"]) for r in rejected) == sorted(
        (r["record_id"], r["reason"], r["detail"]) for r in whole.rejected.to_pylist())
    assert stats.pop("duplicates_of_release") == 0 and stats == whole.stats  # the lake's release index is empty
    screened = sorted(lake.fs.ls(lake.path(FOLDER, "screened"), detail=False))
    assert len(screened) == 3
    lake.fs.rm(screened[0])
    assert run_selection(lake, FactoryConfig(lake=lake_dir, curate=cfg), remote=False)[0] == fp
    assert not lake.fs.exists(screened[0])  # same input: the verdicts are reused, nothing screened again
    other = cfg.model_copy(update={"target_size": 2})  # another target size: decided anew on the same embeddings
    fp2, stats2 = run_selection(lake, FactoryConfig(lake=lake_dir, curate=other), remote=False)
    assert fp2 != fp and stats2["kept"] == 2
    assert sorted(lake.fs.ls(lake.path(FOLDER, "screened"), detail=False)) == screened
    names = {p.rstrip("/").rsplit("/", 1)[-1] for p in lake.fs.ls(lake.path(FOLDER, "selection"), detail=False)}
    assert names == {fp2, "current.json"}  # the earlier verdicts are removed


def test_curation_report_from_the_lake(lake_dir):
    from synthq.tasks.curate.report import render_markdown, write_report

    lake, _, _ = _sharded(lake_dir, _table(), CurateConfig(dedup_threshold=0.9, target_size=3), shard_size=6)
    rep = write_report(lake)
    assert rep["scored"] == 7 and rep["kept"] == 3
    assert rep["rejected"]["llm_truncated"] == 1 and rep["rejected"]["near_duplicate"] == 1
    sizes = {int(k): v for k, v in rep["topic_size_histogram"].items()}
    assert sum(k * v for k, v in sizes.items()) == 5 and sum(sizes.values()) == 3  # 5 queries in 3 topics
    assert sum(rep["score_histogram"].values()) == 3
    assert "| near_duplicate | 1 |" in render_markdown(rep)
    assert lake.exists("curated", "report.md")
    assert "Topics: 3, holding 5 queries" in render_markdown(rep)
    many = render_markdown({**rep, "topic_size_histogram": {"1": 40_000, "4": 50_000, "7": 10_000}})
    assert "Topics: 100000, holding 310000 queries before the best of each was kept (min 1, median 4, max 7 per topic)." in many
    assert "| 4 | 50000 |" in many and len(many) < 2_000  # a row per size, not per topic
    from synthq.tasks.curate.report import _per_size

    assert _per_size({"0": 2, "1": 2, "2": 1}) == {"1": 1, "2": 2}  # a selection counted before: one size per topic


def test_dedup_against_earlier_releases(lake_dir):
    """A new near-twin of a released row is dropped; a released row is never displaced."""
    from synthq.tasks.core.lake import Lake
    from synthq.tasks.core.neardup import IndexSpec
    from synthq.tasks.core.release_index import ReleaseIndex
    from synthq.tasks.publish.release import index_releases, publish

    lake = Lake(lake_dir)
    cfg = CurateConfig(dedup_threshold=0.9)
    first = select(_table().slice(0, 1), cfg, "bundled", 0)  # the sourdough query q0, score 5
    publish(lake, "ds", first.kept, {}, {}, "x")
    index = ReleaseIndex(lake, "ds", IndexSpec(1000, 4), "bundled")
    assert index_releases(lake, "ds", index) == {"indexed": 1, "embedded": 1} and index.released(["q0", "q1"]).tolist() == [True, False]

    again = ReleaseIndex(lake, "ds", IndexSpec(1000, 4), "bundled")
    res = select(_table(), cfg, "bundled", 0, again)
    kept = res.kept.column("id").to_pylist()
    # q1 scores higher than q0 but q0 is released: q0 stays, q1 is the duplicate
    assert "q0" in kept and "q1" not in kept
    dup = {r["record_id"]: r for r in res.rejected.to_pylist()}
    assert dup["q1"]["reason"] == "near_duplicate" and "q0" in dup["q1"]["detail"]

    # a lake that no longer holds q0: its twin q1 is caught by the release index
    res = select(_table().slice(1), cfg, "bundled", 0, again)
    dup = {r["record_id"]: r for r in res.rejected.to_pylist()}
    assert dup["q1"]["reason"] == "duplicate_of_release" and "ds/v1 row q0" in dup["q1"]["detail"]
    assert res.stats["duplicates_of_release"] == 1
    assert res.kept.num_rows + res.rejected.num_rows == len(QUERIES) - 1


def test_unsafe_queries_are_dropped_with_their_categories():
    rows = [_row(i, q, s) for i, (q, s) in enumerate(QUERIES)]
    rows[2].update(moderation="unsafe", moderation_categories=["privacy"])
    res = select(pa.Table.from_pylist(rows, schema=CURATED), CurateConfig(dedup_threshold=0.9), "bundled", 0)
    unsafe = [r for r in res.rejected.to_pylist() if r["reason"] == "unsafe"]
    assert [(r["record_id"], r["detail"]) for r in unsafe] == [("q2", "moderation: privacy")]


def test_the_decision_holds_float16_and_reads_older_float32_files(lake_dir):
    """Screened vectors are written as float16 (half the lake and the decision's memory) and
    read one part at a time; a file an earlier version wrote in float32 is read as float16
    and decided the same."""
    import numpy as np

    from synthq.tasks.core.lake import Lake
    from synthq.tasks.curate.select import Screened, decide, screen

    lake, cfg = Lake(lake_dir), CurateConfig(dedup_threshold=0.9, target_size=3)
    fresh = screen(_table(), cfg, "bundled")
    assert fresh.vectors.dtype == np.float16
    expected = fresh.vectors.copy()
    old = Screened(fresh.ids, fresh.scores, fresh.vectors.astype(np.float32), dict(fresh.verdicts))
    for name, part in (("new", fresh), ("old", old)):
        lake.write_bytes(lake.path("screened", f"{name}.npz"), part.to_bytes())
    read = Screened.read(lake, lake.path("screened", "old.npz"))
    assert read.load is not None and read.ids.tolist() == fresh.ids.tolist()
    decided = [decide([part], cfg, 0).everything() for part in (read, Screened.read(lake, lake.path("screened", "new.npz")), fresh)]
    assert decided[0] == decided[1] == decided[2] and decided[0][0]  # some verdicts, the same from each file
    assert read.load is None and len(read.vectors) == 0  # handed over to the decision
    again = Screened.read(lake, lake.path("screened", "old.npz")).take_vectors()
    assert again.dtype == np.float16 and np.array_equal(again, expected)
    picked = decide([Screened.read(lake, lake.path("screened", "new.npz"))], cfg.model_copy(update={"selection": "k_center"}), 0)
    assert picked.stats["kept"] == 3


def test_many_topics_are_drawn_in_two_levels_as_tight_as_flat_k_means():
    """Past TWO_LEVEL_TOPICS, topics come from √k coarse clusters split by size: every label in
    0..k-1, and topics about as tight as flat k-means draws them (flat costs k² to train)."""
    import numpy as np

    from synthq.tasks.curate.target import _shares, topics

    rng = np.random.default_rng(3)  # unit vectors around 150 directions, shaped like sentence embeddings
    centers = rng.standard_normal((150, 384), dtype=np.float32)
    vecs = 0.5 * centers[rng.integers(0, 150, 6_000)] / np.linalg.norm(centers, axis=1).mean() + rng.standard_normal((6_000, 384), dtype=np.float32) / 384**0.5
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    k = 400
    flat, two = topics(vecs, k, 0, two_level=False), topics(vecs, k, 0, two_level=True)
    assert two.min() >= 0 and two.max() < k and len(np.unique(two)) > 0.9 * k

    def tightness(labels):  # mean cosine of a vector to its topic's mean direction
        sums = np.zeros((k, vecs.shape[1]))
        np.add.at(sums, labels, vecs)
        sums /= np.linalg.norm(sums, axis=1, keepdims=True) + 1e-12
        return float(np.mean(np.sum(vecs * sums[labels], axis=1)))

    assert tightness(two) >= 0.97 * tightness(flat)
    rows = np.arange(0, 6_000, 2)  # the rows given are the ones labelled
    assert len(topics(vecs, k, 0, rows, two_level=True)) == len(rows)
    shares = _shares(np.array([500, 3, 0, 1, 96]), 50)
    assert shares.sum() == 50 and shares.tolist()[1:4] == [1, 0, 1] and (shares <= [500, 3, 0, 1, 96]).all()
