"""Dedup with FAISS: IVF recall against exact search, greedy semantics, the release index."""

import json

import numpy as np
import pyarrow as pa
import pytest

from synthq.tasks.core.errors import LakeError
from synthq.tasks.core.lake import Lake
from synthq.tasks.core.neardup import IndexSpec, rows_by_cluster, scratch_array, within
from synthq.tasks.core.release_index import ReleaseIndex

DIM = 64
EXACT = IndexSpec(threshold=10**9, nprobe=1)


def mapped(index) -> bool:
    """Whether FAISS searches the index where it lies in its file (memory-mapped) instead of a copy."""
    import faiss

    if isinstance(index, faiss.IndexIVF):
        lists = faiss.downcast_InvertedLists(index.invlists)
        return isinstance(lists, faiss.OnDiskInvertedLists) and lists.read_only
    return not index.codes.is_owned


def clustered(n: int, dup_share: float = 0.1, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Topic-clustered unit vectors; returns them and the rows planted as near-copies of others."""
    rng = np.random.default_rng(seed)
    centers = rng.standard_normal((max(4, n // 100), DIM)).astype(np.float32)
    centers /= np.linalg.norm(centers, axis=1, keepdims=True)
    noise = rng.standard_normal((n, DIM)).astype(np.float32)
    noise /= np.linalg.norm(noise, axis=1, keepdims=True)
    vecs = 0.6 * centers[rng.integers(0, len(centers), n)] + 0.8 * noise
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    copies = rng.choice(n // 2, size=int(n * dup_share), replace=False) + n // 2
    sources = rng.integers(0, n // 2, len(copies))
    jitter = rng.standard_normal((len(copies), DIM)).astype(np.float32)
    vecs[copies] = vecs[sources] + 0.15 * jitter / np.linalg.norm(jitter, axis=1, keepdims=True)
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    return np.ascontiguousarray(vecs, dtype=np.float32), copies


def test_greedy_keeps_the_best_ranked_member():
    a = np.eye(DIM, dtype=np.float32)[0]
    b = a + 0.05 * np.eye(DIM, dtype=np.float32)[1]
    c = np.eye(DIM, dtype=np.float32)[2]
    vecs = np.stack([a, c, b / np.linalg.norm(b)])
    kept, dropped = within(vecs, 0.9, EXACT)
    assert kept.tolist() == [0, 1]
    assert [(d, t) for d, t, _ in dropped] == [(2, 0)] and dropped[0][2] > 0.99


def test_a_dropped_row_does_not_drop_others():
    # 1 ~ 0 and 2 ~ 1, but 2 is not within the threshold of 0: 1 goes, 2 stays
    x = np.eye(DIM, dtype=np.float32)
    v = [x[0], np.cos(0.35) * x[0] + np.sin(0.35) * x[1], np.cos(0.7) * x[0] + np.sin(0.7) * x[1]]
    kept, dropped = within(np.stack(v).astype(np.float32), 0.9, EXACT)
    assert kept.tolist() == [0, 2] and [d for d, _, _ in dropped] == [1]


def test_ivf_finds_what_exact_search_finds():
    vecs, copies = clustered(20_000)
    kept_exact, dropped_exact = within(vecs, 0.9, EXACT)
    kept_ivf, dropped_ivf = within(vecs, 0.9, IndexSpec(threshold=1_000, nprobe=16))
    exact, ivf = {d for d, _, _ in dropped_exact}, {d for d, _, _ in dropped_ivf}
    assert len(exact) >= 0.9 * len(copies)  # the planted copies are found
    recall = len(exact & ivf) / len(exact)
    print(f"IVF recall of dropped rows vs exact: {recall:.4f} ({len(ivf)} vs {len(exact)})")
    assert recall >= 0.98
    assert min(s for _, _, s in dropped_ivf) >= 0.9  # nothing outside the threshold is dropped


def test_float16_vectors_drop_what_float32_drops():
    """Curation holds its vectors as float16; compared in float32 blocks, the verdicts are the
    same as on float32 vectors, exact and clustered."""
    vecs, copies = clustered(20_000)
    half = vecs.astype(np.float16)
    kept, dropped = within(vecs, 0.9, EXACT)
    kept16, dropped16 = within(half, 0.9, EXACT)
    assert kept16.tolist() == kept.tolist() and [(d, t) for d, t, _ in dropped16] == [(d, t) for d, t, _ in dropped]
    assert max(abs(a[2] - b[2]) for a, b in zip(dropped, dropped16)) < 1e-3
    _, ivf16 = within(half, 0.9, IndexSpec(threshold=1_000, nprobe=16))
    exact = {d for d, _, _ in dropped}
    assert len(exact & {d for d, _, _ in ivf16}) >= 0.98 * len(exact)


def test_rows_are_grouped_by_cluster_as_a_stable_sort_groups_them():
    """The counting sort, chunk by chunk, gives what one stable argsort of every probe gives."""
    rng = np.random.default_rng(0)
    for n, k, nlist, chunk in [(1_000, 4, 37, 100), (5_000, 16, 200, 65_536), (777, 1, 5, 50), (10, 3, 100, 3)]:
        probes = rng.integers(0, nlist, (n, k)).astype(np.int32)
        flat = probes.ravel()
        expected = np.split(np.argsort(flat, kind="stable") // k, np.cumsum(np.bincount(flat, minlength=nlist))[:-1])
        rows, bounds = rows_by_cluster(probes, nlist, chunk)
        assert rows.dtype == np.int32
        got = np.split(rows, bounds)
        assert len(got) == nlist and all(np.array_equal(a, b) for a, b in zip(expected, got)), (n, k, nlist, chunk)


def test_a_scratch_array_lives_in_a_nameless_file_of_the_node_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("SYNTHQ_CACHE", str(tmp_path))
    vecs = scratch_array((1000, 384))
    vecs[np.array([7, 3])] = 0.5
    assert vecs.dtype == np.float16 and float(vecs[[3, 7]].sum()) == 384.0 and float(vecs[0].sum()) == 0.0
    with open("/proc/self/maps") as f:  # file-backed pages, which the kernel may evict: not the process's own memory
        mapped = [line for line in f if str(tmp_path / "scratch") in line]
    assert mapped and all(line.rstrip().endswith("(deleted)") for line in mapped)
    assert list((tmp_path / "scratch").iterdir()) == []  # a killed process leaves nothing behind
    assert scratch_array((0, 384)).shape == (0, 384)


def test_release_index_grows_persists_and_switches_to_ivf(tmp_path):
    import faiss

    lake = Lake(str(tmp_path / "lake"))
    spec = IndexSpec(threshold=3_000, nprobe=16)
    vecs, _ = clustered(5_000, dup_share=0.0, seed=1)
    index = ReleaseIndex(lake, "ds", spec, "emb")
    index.add(1, [f"a{i}" for i in range(2_000)], vecs[:2_000])
    assert index.meta["kind"] == "flat" and index.meta["count"] == 2_000
    index.add(1, ["again"], vecs[:1])  # a version is indexed once
    assert index.meta["count"] == 2_000
    index.add(2, [f"b{i}" for i in range(3_000)], vecs[2_000:])  # absorbs the smaller segment of v1
    assert index.meta["kind"] == "ivf" and index.versions == [1, 2]
    assert [(s.versions, s.count, s.kind) for s in index.segments] == [([1, 2], 5_000, "ivf")]
    ivf = faiss.downcast_index(faiss.read_index(str(tmp_path / "lake/releases/ds/_index" / index.segments[0].file)))
    assert isinstance(ivf, faiss.IndexIVFScalarQuantizer) and ivf.sq.qtype == faiss.ScalarQuantizer.QT_fp16  # half of float32

    reopened = ReleaseIndex(lake, "ds", spec, "emb")
    assert reopened.meta["count"] == 5_000
    assert reopened.released(["a0", "a1999", "b2999", "again", "c0"]).tolist() == [True, True, True, False, False]
    probe = vecs[[10, 4_000]] + 0.01
    probe /= np.linalg.norm(probe, axis=1, keepdims=True)
    found = {(m.position, m.release_id, m.version) for m in reopened.nearest(probe, 0.9)}
    assert found == {(0, "a10", 1), (1, "b2000", 2)}
    assert all(mapped(i) for i in reopened._indexes)  # searched where it lies: no copy in the process
    # a small version makes a segment of its own: the big one is neither read nor rewritten
    big = tmp_path / "lake/releases/ds/_index" / reopened.segments[0].file
    stamp = big.stat().st_mtime_ns
    reopened.add(3, ["c0"], probe[:1])
    reopened.add(4, [], probe[:0])  # no new rows: no segment
    assert [(s.versions, s.count) for s in reopened.segments] == [([1, 2], 5_000), ([3], 1)] and big.stat().st_mtime_ns == stamp
    again = ReleaseIndex(lake, "ds", spec, "emb")
    assert again.released(["c0"]).tolist() == [True] and again.versions == [1, 2, 3, 4]
    found = {(m.position, m.release_id, m.version) for m in again.nearest(probe, 0.9)}  # best over both segments
    assert found == {(0, "c0", 3), (1, "b2000", 2)}
    files = sorted(p.name for p in (tmp_path / "lake/releases/ds/_index").glob("*.faiss"))
    assert files == sorted(s.file for s in again.segments)  # merged segments' files are gone


def test_release_index_segments_stay_few_and_search_as_one(tmp_path):
    """Binary-counter merging: after many small versions, about log2 of the rows in segments,
    and a search finds what one index of every row finds."""
    lake = Lake(str(tmp_path / "lake"))
    vecs, _ = clustered(2_000, dup_share=0.0, seed=2)
    index = ReleaseIndex(lake, "ds", EXACT, "emb")
    for v in range(1, 21):  # 20 versions of 100 rows
        rows = slice((v - 1) * 100, v * 100)
        index.add(v, [f"v{v}-{i}" for i in range(100)], vecs[rows])
    counts = [s.count for s in index.segments]
    assert sum(counts) == 2_000 and len(counts) <= 5 and counts == sorted(counts, reverse=True)
    probe = vecs[::97] + 0.005
    probe /= np.linalg.norm(probe, axis=1, keepdims=True)
    found = {m.position: m.release_id for m in ReleaseIndex(lake, "ds", EXACT, "emb").nearest(probe, 0.9)}
    expected = {k: f"v{r // 100 + 1}-{r % 100}" for k, r in enumerate(range(0, 2_000, 97))}
    assert found == expected


def test_release_index_refuses_another_embedder_and_heals_a_torn_write(tmp_path):
    lake = Lake(str(tmp_path / "lake"))
    vecs, _ = clustered(300, dup_share=0.0)
    ReleaseIndex(lake, "ds", EXACT, "emb").add(1, [f"a{i}" for i in range(300)], vecs)
    with pytest.raises(LakeError, match="embedder 'emb'"):
        ReleaseIndex(lake, "ds", EXACT, "other").nearest(vecs[:1], 0.9)
    # a segment's file holding other rows than index.json says (a torn write): the next open rebuilds it
    import faiss

    torn = faiss.IndexFlatIP(DIM)
    torn.add(np.concatenate([vecs, vecs]))
    segment = ReleaseIndex(lake, "ds", EXACT, "emb").segments[0].file
    lake.write_bytes(lake.path("releases", "ds", "_index", segment), faiss.serialize_index(torn).tobytes())
    index = ReleaseIndex(lake, "ds", EXACT, "emb")
    assert [m.release_id for m in index.nearest(vecs[5:6], 0.99)] == ["a5"]
    lake.write_bytes(lake.path("releases", "ds", "_index", "segment-v9-v9.faiss"), b"left by a crash")
    index.add(2, ["b0"], vecs[:1])
    again = ReleaseIndex(lake, "ds", EXACT, "emb")
    assert again.released(["a0", "a299", "b0"]).all() and [s.count for s in again.segments] == [300, 1]
    assert all(mapped(i) for i in (again._load() or again._indexes))
    assert not lake.fs.exists(lake.path("releases", "ds", "_index", "segment-v9-v9.faiss"))


def test_a_release_index_of_the_earlier_layout_is_read_and_grown(tmp_path):
    """One index.faiss of every version (what publish wrote before segments) reads as one segment."""
    import faiss

    lake = Lake(str(tmp_path / "lake"))
    vecs, _ = clustered(400, dup_share=0.0, seed=4)
    folder = tmp_path / "lake/releases/ds/_index"
    folder.mkdir(parents=True)
    np.save(folder / "vectors-v1.npy", vecs[:300])
    lake.write_table(lake.path("releases", "ds", "_index", "ids-v1.parquet"), pa.table({"id": [f"a{i}" for i in range(300)]}))
    flat = faiss.IndexFlatIP(DIM)
    flat.add(vecs[:300])
    faiss.write_index(flat, str(folder / "index.faiss"))
    meta = {"versions": [1], "count": 300, "kind": "flat", "trained_on": 0, "embedder": "emb", "dim": DIM}
    (folder / "index.json").write_text(json.dumps(meta))
    index = ReleaseIndex(lake, "ds", EXACT, "emb")
    assert [m.release_id for m in index.nearest(vecs[7:8], 0.99)] == ["a7"]
    index.add(2, [f"b{i}" for i in range(100)], vecs[300:])
    again = ReleaseIndex(lake, "ds", EXACT, "emb")
    assert [(s.versions, s.count) for s in again.segments] == [([1], 300), ([2], 100)]
    assert [m.release_id for m in again.nearest(vecs[[7, 350]], 0.99)] == ["a7", "b50"]
