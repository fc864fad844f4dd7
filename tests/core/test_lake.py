import pyarrow as pa
import pytest

from synthq.tasks.core.errors import LakeError
from synthq.tasks.core.lake import Lake, StageResult
from synthq.tasks.core.records import REJECTED, rejection, table


def _result(n: int, bad: int = 0) -> StageResult:
    rej = [rejection("s", "r", "d", str(i), {}) for i in range(bad)]
    return StageResult(pa.table({"id": [str(i) for i in range(n)]}), table(rej, REJECTED))


def test_shard_roundtrip_manifest_and_skip(lake_dir):
    lake = Lake(lake_dir)
    row = lake.write_shard("ds", "00000", _result(3, bad=2), input_id="in1", config="c1")
    assert row["kept"] == 3 and row["reasons"] == {"r": 2}
    assert lake.is_finished("ds", "00000", input_id="in1", config="c1")
    assert not lake.is_finished("ds", "00000", input_id="in1", config="c2")
    assert not lake.is_finished("ds", "00000", input_id="in2", config="c1")
    assert lake.read("ds").num_rows == 3
    assert lake.read("ds", rejected=True).num_rows == 2
    assert lake.report("ds") == {"dataset": "ds", "shards": 1, "kept": 3, "rejected": 2, "reasons": {"r": 2}}
    leftovers = [p for p in lake.fs.find(lake.root) if ".tmp-" in p]
    assert leftovers == []


def test_prune_removes_stale_shards(lake_dir):
    lake = Lake(lake_dir)
    for shard in ("00000", "00001"):
        lake.write_shard("ds", shard, _result(1), input_id="i", config="c")
    assert lake.prune("ds", keep={"00000"}) == ["00001"]
    assert lake.shards("ds") == ["00000"]
    assert not lake.exists("ds", "part-00001.parquet")


def test_missing_dataset_says_which_stage(lake_dir):
    with pytest.raises(LakeError, match="no 'documents' dataset"):
        Lake(lake_dir).read("documents")


def test_a_shard_interrupted_mid_rewrite_is_unfinished_not_half_written(lake_dir, monkeypatch):
    lake = Lake(lake_dir)
    lake.write_shard("ds", "00000", _result(3), input_id="i", config="old")
    lake.write_shard("ds", "00001", _result(1), input_id="i", config="old")
    real = lake.write_bytes

    def killed_before_manifest(path, data):
        if "_manifest" in path:
            raise KeyboardInterrupt("cancelled")  # what a cancel or kill does mid-shard
        real(path, data)

    monkeypatch.setattr(lake, "write_bytes", killed_before_manifest)
    with pytest.raises(KeyboardInterrupt):
        lake.write_shard("ds", "00000", _result(5), input_id="i", config="new")
    monkeypatch.undo()
    # the new rows are on disk but not visible: without its manifest the shard is unfinished
    assert lake.shards("ds") == ["00001"] and lake.read("ds").num_rows == 1
    assert not lake.is_finished("ds", "00000", input_id="i", config="old")
    lake.write_shard("ds", "00000", _result(5), input_id="i", config="new")  # the rerun redoes it
    assert lake.read("ds").num_rows == 6


def test_a_batch_stays_open_across_runs_until_closed(tmp_path):
    """A run killed mid-ingest leaves its batch open: the rerun's shards get the same age, so
    which copy of a duplicate is kept does not depend on where the first run stopped."""
    lake = Lake(str(tmp_path / "lake"))
    assert lake.batch_time("documents") is None
    first = lake.open_batch("documents")
    assert lake.open_batch("documents") == first == lake.batch_time("documents")  # resumed: same batch
    lake.close_batch("documents")
    assert lake.batch_time("documents") is None and lake.open_batch("documents") >= first


def test_failed_shards_are_marked_until_they_finish(tmp_path):
    lake = Lake(str(tmp_path / "lake"))
    lake.mark_failed("instructions", "00001", "ServiceError: the LLM service failed 3 of 3 requests")
    assert [f["shard"] for f in lake.failures("instructions")] == ["00001"]
    lake.write_shard("instructions", "00001", StageResult(REJECTED.empty_table(), REJECTED.empty_table()), input_id="x", config="y")
    assert lake.failures("instructions") == []
    lake.mark_failed("instructions", "00002", "boom")
    lake.prune("instructions", keep={"00001"})  # no longer part of the input: forgotten
    assert lake.failures("instructions") == []


def test_read_rows_reads_only_the_named_rows_shard_by_shard(lake_dir):
    lake = Lake(lake_dir)
    for shard, ids in (("00000", ["a", "b"]), ("00001", ["c", "d"]), ("00002", ["e"])):
        kept = pa.table({"id": ids, "text": [f"text of {i}" for i in ids], "n": list(range(len(ids)))})
        lake.write_shard("docs", shard, StageResult(kept, table([], REJECTED)), input_id=shard, config="c")
    rows = lake.read_rows("docs", {"d", "a", "gone"}, ["text"])
    assert sorted(zip(rows.column("id").to_pylist(), rows.column("text").to_pylist())) == [("a", "text of a"), ("d", "text of d")]
    assert rows.column_names == ["id", "text"]  # only the columns asked for, the key first
    assert lake.read_rows("docs", set(), ["text"]).num_rows == 0
    assert lake.read_rows("docs", {"gone"}, ["id", "text"]).num_rows == 0


def test_prune_folder_keeps_the_named_and_the_writes_in_progress(lake_dir):
    lake = Lake(lake_dir)
    for name in ("a.npz", "b.npz", ".tmp-1"):
        lake.write_bytes(lake.path("indexes", "x", name), b"1")
    lake.write_bytes(lake.path("indexes", "x", "old", "v.parquet"), b"1")
    lake.prune_folder("indexes/x", {"a.npz"})
    assert sorted(p.rsplit("/", 1)[-1] for p in lake.fs.ls(lake.path("indexes", "x"), detail=False)) == [".tmp-1", "a.npz"]
    lake.prune_folder("indexes/none", set())  # a folder not there yet: nothing to do
