"""Corpus-wide dedup of documents on a real local Ray over a real lake: MinHash signatures,
the signature sidecar in the lake, exact and near duplicates, keepers, and the rewrite."""

from __future__ import annotations

import hashlib
import re

import numpy as np
import pytest
from datasketch import MinHash

from synthq.tasks.core.config import DedupConfig
from synthq.tasks.core.lake import Lake, StageResult
from synthq.tasks.core.records import DOCUMENTS, REJECTED, table
from synthq.tasks.ingest.dedup import DATASET, apply_drops, find_duplicates
from synthq.tasks.ingest.minhash import SIDECAR, candidate_probability, lsh_params, normalize, shingle_hashes, sidecar_signatures, sidecar_table, signatures

VOCAB = [f"{a}{b}{c}" for a in ("ka", "lo", "mi", "nu", "pe", "ro", "si", "tu", "va", "ze") for b in "aeiou" for c in ("n", "r", "s", "t", "l", "m", "k", "d", "p", "x")]


def make_text(rng: np.random.Generator, words: int = 300) -> str:
    return " ".join(rng.choice(VOCAB, words))


def mutate(text: str, changes: int, rng: np.random.Generator) -> str:
    """The text with `changes` words, spread over it, replaced by other words."""
    words = text.split()
    for pos in np.linspace(10, len(words) - 10, changes).astype(int):
        words[pos] = "changed" + str(rng.integers(1_000_000))
    return " ".join(words)


def text_id(text: str) -> str:
    return hashlib.sha256(re.sub(r"\s+", " ", text.lower()).strip().encode()).hexdigest()[:16]


def write_docs(lake: Lake, shard: str, texts: list[str], ingested_at: float | None = 1.0, cfg=DedupConfig(), sidecar=True):
    rows = [
        {"id": text_id(t), "url": f"https://example.org/{shard}/{i}", "title": "", "text": t, "language": "en",
         "language_score": 1.0, "date": "", "source": "test", "source_offset": i, "fetch_time": None, "n_words": len(t.split())}
        for i, t in enumerate(texts)
    ]
    sidecars = {SIDECAR: sidecar_table([r["id"] for r in rows], signatures(texts, cfg), cfg)} if sidecar else {}
    stats = {} if ingested_at is None else {"ingested_at": ingested_at}
    result = StageResult(table(rows, DOCUMENTS), table([], REJECTED), stats, sidecars=sidecars)
    lake.write_shard(DATASET, shard, result, input_id=f"in-{shard}", config="cfg")


def estimate(a: str, b: str, cfg=DedupConfig()) -> float:
    sigs = signatures([a, b], cfg)
    return float((sigs[0] == sigs[1]).mean())


@pytest.fixture
def lake(tmp_path) -> Lake:
    return Lake(str(tmp_path / "lake"))


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(7)


# -- signatures and the sidecar ----------------------------------------------------------
def test_signatures_equal_datasketch_minhash_over_the_same_shingles(rng):
    texts = [make_text(rng), "Short text!", "", "one two three four five six"]
    sigs = signatures(texts, DedupConfig())
    assert sigs.shape == (4, 128) and sigs.dtype == np.uint32
    for text, sig in zip(texts, sigs):
        reference = MinHash(num_perm=128, hashfunc=int)
        reference.update_batch(shingle_hashes(text, 5).tolist())
        assert (reference.hashvalues == sig).all()


def test_normalization_ignores_case_punctuation_and_spacing(rng):
    text = make_text(rng)
    noisy = text.replace(" ", ",  ", 20).upper() + "!"
    assert normalize("Hello,   World! ¿Qué tal?") == ["hello", "world", "qué", "tal"]
    assert (signatures([text], DedupConfig()) == signatures([noisy], DedupConfig())).all()


def test_sidecar_is_written_read_aligned_and_pruned(lake, rng):
    texts = [make_text(rng) for _ in range(3)]
    write_docs(lake, "00000", texts)
    write_docs(lake, "00001", texts[:1])
    side = lake.read_sidecar(DATASET, SIDECAR, "00000")
    assert side.column("id").to_pylist() == lake.read_shard(DATASET, "00000").column("id").to_pylist()
    assert (sidecar_signatures(side) == signatures(texts, DedupConfig())).all()
    assert lake.prune(DATASET, {"00000"}) == ["00001"]
    assert not lake.exists(DATASET, f"_{SIDECAR}", "part-00001.parquet")
    assert lake.exists(DATASET, f"_{SIDECAR}", "part-00000.parquet")


def test_lsh_params_fit_the_signature():
    bands, rows = lsh_params(0.8, 128)
    assert bands * rows <= 128 and bands > 1


def test_lsh_params_favour_recall_around_the_threshold():
    assert lsh_params(0.8, 128) == (14, 9)
    assert round(candidate_probability(0.8, 14, 9), 2) == 0.87  # pairs at exactly the threshold
    assert round(candidate_probability(0.85, 14, 9), 2) == 0.97
    assert round(candidate_probability(0.8, 9, 13), 2) == 0.40  # what equal weights would pick
    assert candidate_probability(0.5, 14, 9) < 0.03  # clearly different pages rarely meet
    for threshold, num_perm in ((0.7, 128), (0.85, 128), (0.9, 256), (0.5, 64)):
        bands, rows = lsh_params(threshold, num_perm)
        assert bands * rows <= num_perm
        assert candidate_probability(min(1.0, threshold + 0.05), bands, rows) > 0.95  # found
        assert candidate_probability(threshold - 0.3, bands, rows) < 0.2  # rarely compared


# -- finding duplicates ------------------------------------------------------------------
def test_exact_duplicates_across_shards(lake, rng, ray_local):
    t1, t2, t3 = (make_text(rng) for _ in range(3))
    write_docs(lake, "00000", [t1, t2])
    write_docs(lake, "00001", [t3, t1.upper()])  # same normalized text, so the same id
    drops = find_duplicates(lake, DedupConfig())
    assert drops == {"00001": {1: ("duplicate", drops["00001"][1][1], text_id(t1))}}
    assert "https://example.org/00000/0" in drops["00001"][1][1]


def test_near_duplicate_dropped_and_distinct_document_kept(lake, rng, ray_local):
    original, other = make_text(rng), make_text(rng)
    write_docs(lake, "00000", [original])
    write_docs(lake, "00001", [mutate(original, 3, rng), other])
    drops = find_duplicates(lake, DedupConfig())
    assert list(drops) == ["00001"] and list(drops["00001"]) == [0]
    reason, detail, kept = drops["00001"][0]
    assert (reason, kept) == ("near_duplicate", text_id(original))
    assert re.match(r"estimated Jaccard 0\.[89]\d with an earlier document", detail)
    assert text_id(original) in detail and "https://example.org/00000/0" in detail


def test_threshold_is_honoured(lake, rng, ray_local):
    original = make_text(rng)
    copy = mutate(original, 10, rng)
    est = estimate(original, copy)
    assert 0.62 < est < 0.76  # about 10 of 300 words changed
    write_docs(lake, "00000", [original, copy])
    assert find_duplicates(lake, DedupConfig(threshold=0.8)) == {}
    assert list(find_duplicates(lake, DedupConfig(threshold=0.55))["00000"]) == [1]


def test_earlier_ingest_wins_even_when_its_shard_name_sorts_later(lake, rng, ray_local):
    original = make_text(rng)
    write_docs(lake, "zz-first", [original], ingested_at=100.0)
    write_docs(lake, "aa-second", [mutate(original, 2, rng), original], ingested_at=200.0)
    drops = find_duplicates(lake, DedupConfig(partitions=1))
    assert list(drops) == ["aa-second"]
    assert {row: (reason, kept) for row, (reason, _, kept) in drops["aa-second"].items()} == {
        0: ("near_duplicate", text_id(original)), 1: ("duplicate", text_id(original))}
    write_docs(lake, "mm-unknown-time", [original], ingested_at=None)  # no ingested_at: earliest
    assert set(find_duplicates(lake, DedupConfig())) == {"aa-second", "zz-first"}


def test_chain_of_three_near_copies_keeps_the_first(lake, rng, ray_local):
    first = make_text(rng)
    second = mutate(first, 4, rng)
    words = second.split()
    for pos in (35, 95, 155, 215):
        words[pos] = "again" + str(pos)
    third = " ".join(words)
    write_docs(lake, "00000", [first])
    write_docs(lake, "00001", [second])
    write_docs(lake, "00002", [third])
    drops = find_duplicates(lake, DedupConfig())
    assert {s: {r: v[2] for r, v in rows.items()} for s, rows in drops.items()} == {
        "00001": {0: text_id(first)}, "00002": {0: text_id(first)}}


def test_apply_drops_moves_rows_to_rejected_and_a_second_pass_finds_nothing(lake, rng, ray_local):
    original, other = make_text(rng), make_text(rng)
    write_docs(lake, "00000", [original, other], ingested_at=5.0)
    write_docs(lake, "00001", [other, mutate(original, 2, rng), make_text(rng)], ingested_at=6.0)
    cfg = DedupConfig()
    assert apply_drops(lake, find_duplicates(lake, cfg)) == 2
    kept = lake.read_shard(DATASET, "00001")
    assert kept.num_rows == 1
    side = lake.read_sidecar(DATASET, SIDECAR, "00001")
    assert side.column("id").to_pylist() == kept.column("id").to_pylist()
    rejected = lake.read_shard(DATASET, "00001", rejected=True).to_pylist()
    assert sorted((r["stage"], r["reason"]) for r in rejected) == [("ingest", "duplicate"), ("ingest", "near_duplicate")]
    manifest = lake.manifest(DATASET, "00001")
    assert manifest["stats"] == {"ingested_at": 6.0} and manifest["input"] == "in-00001" and manifest["config"] == "cfg"
    assert manifest["reasons"] == {"duplicate": 1, "near_duplicate": 1}
    assert find_duplicates(lake, cfg) == {}


def test_near_off_drops_exact_duplicates_only(lake, rng, ray_local):
    original = make_text(rng)
    write_docs(lake, "00000", [original, mutate(original, 1, rng), original])
    drops = find_duplicates(lake, DedupConfig(near=False))
    assert {r: v[0] for r, v in drops["00000"].items()} == {2: "duplicate"}


def test_shards_without_sidecar_are_signed_from_their_text(lake, rng, ray_local):
    original = make_text(rng)
    write_docs(lake, "00000", [original], sidecar=False)
    write_docs(lake, "00001", [mutate(original, 2, rng)], sidecar=False)
    assert list(find_duplicates(lake, DedupConfig())["00001"]) == [0]


def test_sidecar_of_another_shingle_size_is_recomputed(lake, rng, ray_local):
    """Signatures of 1-word shingles would make these two texts (same words, another order)
    identical; stored with shingle_words=1, they must not be used by a 5-word dedup."""
    words = make_text(rng).split()
    first, second = " ".join(words), " ".join(reversed(words))
    one_word = DedupConfig(shingle_words=1)
    write_docs(lake, "00000", [first], cfg=one_word)
    write_docs(lake, "00001", [second], cfg=one_word)
    side = lake.read_sidecar(DATASET, SIDECAR, "00001")
    assert side.schema.metadata[b"shingle_words"] == b"1"
    assert list(find_duplicates(lake, one_word)["00001"]) == [0]
    assert not find_duplicates(lake, DedupConfig()).get("00001")


def test_recall_on_a_corpus_with_planted_near_duplicates(lake, rng, ray_local, monkeypatch):
    monkeypatch.setattr("synthq.tasks.ingest.dedup.MAP_DOCS", (1000, 1000))  # three map tasks
    distinct = [make_text(rng, int(rng.integers(200, 400))) for _ in range(2700)]
    sources = rng.choice(len(distinct), 300, replace=False)
    planted = [mutate(distinct[s], int(rng.integers(1, 5)), rng) for s in sources]
    texts = distinct + planted
    order = rng.permutation(len(texts))  # planted copies land anywhere, also before their source
    for shard in range(6):
        write_docs(lake, f"{shard:05d}", [texts[i] for i in order[shard * 500 : (shard + 1) * 500]])
    position = {int(doc): (f"{k // 500:05d}", k % 500) for k, doc in enumerate(order)}
    drops = find_duplicates(lake, DedupConfig())
    dropped = {(s, r) for s, rows in drops.items() for r in rows}
    found = sum(
        1 for p, s in enumerate(sources)
        if len({position[int(s)], position[len(distinct) + p]} & dropped) == 1
    )
    assert found / len(sources) >= 0.95, found
    others = set(range(len(distinct))) - {int(s) for s in sources}
    assert not {position[i] for i in others} & dropped
