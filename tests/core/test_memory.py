"""A step's own peak memory, as shard manifests record it."""

import sys

import numpy as np
import pyarrow as pa
import pytest

from synthq.tasks.core.config import FactoryConfig
from synthq.tasks.core.lake import Lake, StageResult
from synthq.tasks.core.memory import measured, release_freed, rss_status
from synthq.tasks.core.report import shard_memory
from synthq.tasks.shards.stage import ShardSpec, Stage, run_shard

linux = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="VmHWM is Linux's")


@linux
def test_the_peak_is_the_blocks_own_not_the_processes_largest():
    big = np.ones(400 * 2**20 // 8)  # an earlier, larger peak of the same process
    del big
    with measured() as mem:
        block = np.ones(100 * 2**20 // 8)  # 100 MiB, touched
        del block
    assert 90 <= mem["peak_mib"] - mem["rss_start_mib"] <= 160
    assert mem["peak_mib"] < rss_status("VmRSS") / 2**20 + 200  # not the 400 MiB peak before it
    release_freed()  # harmless whatever the heap holds


def _grow(rows: pa.Table, ctx) -> StageResult:
    held = np.ones(rows.num_rows * 2**20 // 8)  # 1 MiB a row
    return StageResult(rows.append_column("sum", pa.array([float(held.sum())] * rows.num_rows)), pa.table({}), {"rows": rows.num_rows})


@linux
def test_a_shards_manifest_says_what_memory_the_shard_took(lake_dir):
    stage, cfg = Stage("grown", (), _grow), FactoryConfig(lake=lake_dir)
    for name, n in (("small", 8), ("large", 120)):
        run_shard(stage, ShardSpec(name, name, rows=pa.table({"id": [str(i) for i in range(n)]})), cfg, None)
    manifests = {m["shard"]: m for m in Lake(lake_dir).manifests("grown")}
    added = {k: m["stats"]["memory"]["peak_mib"] - m["stats"]["memory"]["rss_start_mib"] for k, m in manifests.items()}
    assert added["small"] < 60 and 110 <= added["large"] <= 200, added
    summary = shard_memory(list(manifests.values()))
    assert summary["shards"] == 2 and summary["added_mib_max"] == added["large"]
    assert summary["peak_mib_max"] >= summary["peak_mib_median"]
    assert shard_memory([{"stats": {}}]) is None  # shards written before manifests measured memory
