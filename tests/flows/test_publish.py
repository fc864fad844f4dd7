"""The scaling view as Prefect artifacts: plot in the lake, table and trends in the UI."""

import asyncio

from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

from synthq.flows.publish import publish_flow, scaling_flow
from synthq.tasks.core.config import FactoryConfig
from synthq.tasks.core.lake import Lake
from synthq.tasks.publish import catalog
from synthq.tasks.publish.release import publish
from tests.publish.test_release import STAGES, _data


async def _latest(key: str):
    async with get_client() as client:
        found = await client.read_artifacts(artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[key])))
    return sorted(found, key=lambda a: a.created)[-1] if found else None


def test_scaling_flow_publishes_plot_and_table(prefect_server, lake_dir):
    cfg = FactoryConfig(lake=lake_dir, publish={"name": "ds"})
    lake = Lake(lake_dir)
    assert scaling_flow(cfg) is None  # no results yet: nothing to plot, no error
    for n, score in ((10, 0.31), (100, 0.36), (1000, 0.42)):
        info = publish(lake, "ds", _data(n), STAGES, {}, "x")
        with catalog.local_catalog(lake, write=True) as path:
            catalog.add_results(path, "ds", info["version"], [{"benchmark": "ifeval", "metric": "acc", "value": score, "model": "m"}], "t")
    target = scaling_flow(cfg)
    assert target.endswith("releases/scaling-ds.png")
    assert lake.fs.cat_file(target)[:4] == b"\x89PNG"
    table = asyncio.run(_latest("scaling-table"))
    assert table is not None and "ds/v3" in str(table.data)
    plot = asyncio.run(_latest("scaling-plot"))
    assert "+0.055 per 10x rows" in plot.data and target in plot.data


def test_publish_says_why_nothing_was_curated(prefect_server, lake_dir):
    """Every query dropped: the run fails naming the largest drops, not a missing later stage."""
    import pytest

    from synthq.flows.runtime import StageFailed
    from synthq.tasks.core.lake import StageResult
    from synthq.tasks.core.records import CURATED, REJECTED, rejection, table

    lake = Lake(lake_dir)
    dropped = [rejection("curate", "query_off_document", f"q{i}", "x", {}) for i in range(3)]
    lake.write_shard("scored", "00000", StageResult(table([], CURATED), table(dropped, REJECTED)), input_id="i", config="c")
    lake.write_shard("curated", "00000", StageResult(table([], CURATED), table([], REJECTED)), input_id="i", config="c")
    with pytest.raises(StageFailed, match=r"Nothing to publish.*scored: query_off_document 3"):
        publish_flow(FactoryConfig(lake=lake_dir))
