"""An endpoint outage through the real flows (Prefect, Ray, the lake): service failures leave
shards unfinished instead of quarantining rows, nothing half-made is published unless asked,
and a rerun sends exactly the requests that had no answer."""

import json

import pytest

from synthq.flows.publish import publish_flow
from synthq.flows.respond import respond_flow
from synthq.flows.runtime import StageFailed
from synthq.tasks.core.config import load_config
from synthq.tasks.core.lake import Lake, StageResult
from synthq.tasks.core.records import REJECTED
from synthq.tasks.llm.models import resolve_model
from synthq.tasks.publish.catalog import local_catalog, releases
from tests.llm.faults import Faulty
from tests.respond.helpers import curated


def _key(body: dict) -> str:
    return json.dumps([body["messages"], body.get("n", 1)], sort_keys=True)


def test_outage_then_rerun_regenerates_exactly_the_failed_requests(prefect_server, ray_local, lake_dir, monkeypatch):
    monkeypatch.setattr("synthq.tasks.llm.resilience.random.uniform", lambda a, b: 0.0)
    lake = Lake(lake_dir)
    lake.write_shard("curated", "00000", StageResult(curated(), REJECTED.empty_table()), input_id="x", config="x")
    with Faulty(rate=0.3, faults=("500", "503", "drop", "not_json", "no_choices", "truncated"), seed=3) as srv:
        cfg = load_config(None, {
            "lake": lake_dir, "shard_size": 1, "engine.kind": "openai", "engine.base_url": srv.url, "engine.model": "m",
            "engine.tokenizer": resolve_model("bundled"), "engine.max_retries": 0,
        })
        try:
            respond_flow(cfg)
        except StageFailed:  # every shard failed: the stage says so and stops
            pass
        failed = lake.failures("responses")
        assert failed and all("ServiceError" in f["error"] for f in failed)
        rejected = lake.read("responses", rejected=True).to_pylist() if lake.shards("responses") else []
        assert not [r for r in rejected if r["reason"].startswith("llm_error")]  # an outage is never a content rejection
        sent_first = [_key(b) for b in srv.bodies]
        answered_first = {_key(b) for b in srv.answered}
        failed_first = [k for k in sent_first if k not in answered_first]

        with pytest.raises(StageFailed, match="Not publishing a partial release"):
            publish_flow(cfg)
        if lake.shards("responses"):  # asked for: a partial release names what it lacks
            partial = load_config(None, {**cfg.model_dump(), "publish": {"allow_partial": True}})
            info = publish_flow(partial)
            assert "Partial release" in open(f"{info['path']}/README.md").read()
            with local_catalog(lake) as path:
                assert releases(path)[-1]["missing_shards"] == ",".join(f"responses/{f['shard']}" for f in failed)

        srv.rate, before = 0.0, len(srv.bodies)
        respond_flow(cfg)
        resent = [_key(b) for b in srv.bodies[before:]]
    print(f"first run: {len(sent_first)} requests sent, {len(answered_first)} answered, {len(set(failed_first))} met a fault (after the shard task's own retry); "
          f"rerun: {len(resent)} sent, of them {len(set(resent) & set(failed_first))} the failed ones and "
          f"{len(set(resent) - set(failed_first))} never sent before (downstream of a failed call)")
    assert not set(resent) & answered_first  # nothing that came back is asked again (the cache has it)
    assert set(failed_first) <= set(resent)  # every request that met a fault is sent again
    assert not lake.failures("responses")
    info = publish_flow(cfg)
    assert info["subsets"]["sft"] == curated().num_rows
