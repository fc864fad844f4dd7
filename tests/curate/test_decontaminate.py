"""Decontamination against registered benchmark prompts, and k-center selection, on real embeddings."""

import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from synthq.tasks.core.config import CurateConfig
from synthq.tasks.core.errors import InputError
from synthq.tasks.core.records import CURATED
from synthq.tasks.curate.decontaminate import load_benchmark
from synthq.tasks.curate.select import select
from synthq.tasks.curate.target import k_center
from tests.curate.test_select import QUERIES, _row, _table

MT_BENCH = [
    "Compose an engaging travel blog post about a recent trip to Hawaii, highlighting cultural experiences and must-see attractions.",
    "Draft a professional email seeking your supervisor's feedback on the Quarterly Financial Report you prepared.",
]
ARENA = ["Write a Python function that checks whether a string is a palindrome, ignoring case and punctuation."]


@pytest.fixture
def bench_files(tmp_path):
    mt = tmp_path / "mt_bench.jsonl"
    mt.write_text("\n".join(json.dumps({"prompt": p, "category": "writing"}) for p in MT_BENCH))
    arena = tmp_path / "arena_hard.parquet"
    pq.write_table(pa.table({"prompt": ARENA}), arena)
    return [str(mt), str(arena)]


def test_ngram_and_paraphrase_hits_are_counted_per_benchmark(bench_files):
    rows = [
        _row(0, "Please help: compose an engaging travel blog post about a recent trip to Hawaii, highlighting cultural experiences and must-see attractions.", 6),
        _row(1, "Write a Python function to check if a string is a palindrome, ignoring case and punctuation marks.", 5),
        _row(2, "Explain how a black hole's event horizon relates to its mass.", 4),
    ]
    cfg = CurateConfig(benchmarks=bench_files, contamination_similarity=0.85)
    res = select(pa.Table.from_pylist(rows, schema=CURATED), cfg, "bundled", 0)
    verdicts = {r["record_id"]: r for r in res.rejected.to_pylist()}
    assert verdicts["q0"]["reason"] == "contaminated_ngram" and "mt_bench" in verdicts["q0"]["detail"]
    assert verdicts["q1"]["reason"] == "contaminated_similar" and "arena_hard" in verdicts["q1"]["detail"]
    assert res.kept.column("id").to_pylist() == ["q2"]
    assert res.stats["contamination_hits"] == {"mt_bench": 1, "arena_hard": 1}


def test_bad_benchmark_files_say_what_is_wrong(tmp_path):
    f = tmp_path / "ifeval.jsonl"
    f.write_text(json.dumps({"instruction": "x"}) + "\n")
    with pytest.raises(InputError, match=r"no 'prompt' column \(its columns: instruction\): set curate.benchmark_fields.prompt"):
        load_benchmark(str(f), "prompt")
    assert load_benchmark(str(f), "instruction") == ["x"]
    assert load_benchmark(str(f)) == ["x"]  # detected
    with pytest.raises(InputError, match="does not exist"):
        load_benchmark(str(tmp_path / "none.jsonl"), "prompt")
    txt = tmp_path / "x.txt"
    txt.write_text("prompt\nhello\n")
    with pytest.raises(InputError, match="must be JSON lines.*Parquet or CSV"):
        load_benchmark(str(txt), "prompt")


def test_k_center_takes_one_from_each_cluster():
    rng = np.random.default_rng(0)
    centers = np.eye(8, dtype=np.float32)[:3]
    vecs = np.concatenate([c + 0.05 * rng.standard_normal((10, 8)).astype(np.float32) for c in centers])
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    picked = k_center(vecs, 3)
    assert picked[0] == 0 and sorted(p // 10 for p in picked) == [0, 1, 2]


def test_k_center_picks_what_one_pass_per_pick_picks():
    """Past its pool, k-center picks between passes: the picks are the plain greedy's."""
    from synthq.tasks.curate.target import KCENTER_POOL

    rng = np.random.default_rng(1)
    vecs = rng.standard_normal((3 * KCENTER_POOL, 32)).astype(np.float16)
    vecs /= np.linalg.norm(vecs.astype(np.float32), axis=1, keepdims=True).astype(np.float16)
    rows = np.arange(0, len(vecs), 2)[::-1].copy()  # a subset, in another order
    sub = vecs[rows].astype(np.float32)
    plain, dist = [0], 1.0 - sub @ sub[0]
    while len(plain) < 400:
        plain.append(int(np.argmax(dist)))
        dist = np.minimum(dist, 1.0 - sub @ sub[plain[-1]])
    assert k_center(vecs, 400, rows) == sorted(plain)


def test_k_center_selection_in_curation():
    res = select(_table(), CurateConfig(dedup_threshold=0.9, target_size=3, selection="k_center"), "bundled", 0)
    kept = res.kept.column("id").to_pylist()
    assert len(kept) == 3 and "q1" in kept  # the best-scored query seeds the selection
    reasons = [r["reason"] for r in res.rejected.to_pylist()]
    assert reasons.count("not_selected") == 2 and reasons.count("near_duplicate") == 1
    assert res.kept.num_rows + res.rejected.num_rows == len(QUERIES)
