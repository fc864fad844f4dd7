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


@pytest.mark.slow
def test_factory_through_a_faulty_endpoint(prefect_server, ray_local, sample_subset, lake_dir):
    """30% of completions fail (every kind: 500, 503, 429 with Retry-After, dropped connections,
    stalls, truncated bodies, 200s that are not JSON or have no choices), every stage: the run
    completes and every document ends in an instruction or a content rejection, never an outage
    rejection. The endpoint answers itself (schema-valid objects): what is tested is the
    factory's handling of the faults; the openai engine against a real `vllm serve` is
    tests/llm/test_vllm_serve.py."""
    from synthq.flows.factory import factory_flow
    from synthq.tasks.core.report import fault_totals
    from tests.llm.faults import FAULTS

    pages, seeds = sample_subset
    with Faulty(rate=0.3, stall_s=5.0, seed=7, script=list(FAULTS)) as srv:
        cfg = load_config(None, {
            "lake": lake_dir, "shard_size": 3, "ingest.sources": str(pages), "attribute.seeds": str(seeds),
            **srv.engine_settings(), "engine.max_retries": 10, "engine.request_timeout_s": 300, "engine.max_concurrency": 8,
            # the stub's texts would fail the model-free checks and the retrieval floor: every stage gets full volume
            "attribute.min_retrieval_score": 0.0, "curate.checks.enabled": False,
        })
        info = factory_flow(cfg)
    lake = Lake(lake_dir)
    assert set(srv.injected) == set(FAULTS)
    docs, instr = lake.report("documents"), lake.report("instructions")
    assert instr["kept"] + instr["rejected"] == docs["kept"]  # every document: an instruction or a content rejection
    for ds in ("demonstrations", "instructions", "scored", "curated", "responses", "pairs"):
        assert not lake.failures(ds)
        assert not [r for r in lake.report(ds)["reasons"] if r == "llm_error"], ds
    totals = fault_totals([m for ds in ("demonstrations", "instructions", "scored", "responses") for m in lake.manifests(ds)])
    print("faults per kind (met/retried/failed):", totals, "injected:", dict(srv.injected))
    assert sum(n["retried"] for n in totals.values()) >= sum(srv.injected.values()) - sum(n["failed"] for n in totals.values())
    assert {"server_error", "rate_limited", "connection", "bad_response"} <= set(totals)
    assert info["rows"] > 0 and info["subsets"]["sft"] > 0
