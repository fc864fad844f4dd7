"""Rows set aside for redone synthesis shards: read back by document, none for a shard without documents."""

import pyarrow as pa

from synthq.tasks.core.lake import Lake
from synthq.tasks.core.records import REJECTED, rejection, table
from synthq.tasks.synthesize import carry

def test_carried_rows_by_document_and_none_for_an_empty_shard(lake_dir):
    lake = Lake(lake_dir)

    lake.write_table(carry._path(lake, "kept"), pa.table({"id": ["i1", "i2"], "document_id": ["d1", "d2"]}))
    lake.write_table(carry._path(lake, "rejected"), table([rejection("synthesize", "llm_truncated", "cut at max tokens", "d3", {})], REJECTED))
    kept, rejected = carry.carried(lake, ["d2", "d3", "d9"])
    assert [r["id"] for r in kept] == ["i2"] and [r["record_id"] for r in rejected] == ["d3"]
    # a documents shard emptied by dedup: nothing to look up, and no error (an empty id list
    # used to fail the shard with "Array type doesn't match type of values set: string vs null")
    assert carry.carried(lake, []) == ([], [])
    carry.clear(lake)
    assert carry.carried(lake, ["d1"]) == ([], [])
