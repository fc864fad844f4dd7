"""The whole factory with attribute.retrieval=search: seeds grounded in pages a search engine on
loopback returned, fetched by the crawler, through synthesis, curation and publishing. The model
is a local stub endpoint (instant, schema-valid answers): what is tested is the search path;
the stages on the real model are tested by tests/flows/test_factory.py."""

import json

import pyarrow.parquet as pq
import pytest

from synthq.tasks.core.config import load_config
from synthq.tasks.core.lake import Lake
from tests.llm.faults import Faulty
from tests.attribute.search_site import SearchSite

pytestmark = pytest.mark.slow


def test_search_grounded_demonstrations_reach_a_release(prefect_server, ray_local, sample_subset, lake_dir):
    from synthq.flows.factory import factory_flow

    pages, seeds = sample_subset
    site = SearchSite(["/articles/login.html", "/articles/blackholes.html", "/articles/regression.html"])
    with Faulty(rate=0.0) as stub:
        cfg = load_config(None, {
            **stub.engine_settings(),
            "lake": lake_dir, "shard_size": 3, "ingest.sources": str(pages), "attribute.seeds": str(seeds),
            "attribute.retrieval": "search", "attribute.search.url": site.url, "attribute.search.hits": 2,
            "ingest.crawl.allow_private": True, "ingest.crawl.per_host_delay_s": 0,
            "attribute.document_tokens": 512, "synthesize.document_tokens": 512, "synthesize.prompt_tokens": 2000,
            "respond.enabled": False,
            # this search engine answers every query with the same page, and the stub's text is not about
            # it: no cosine floor, no model-free checks (both tested on their own), so its rows reach the release
            "attribute.min_retrieval_score": -1.0, "curate.checks.enabled": False,
        })
        try:
            info = factory_flow(cfg)
        finally:
            site.close()
    lake = Lake(lake_dir)
    demos = lake.read("demonstrations").to_pylist()
    assert demos and {d["retrieval"] for d in demos} == {"search"}
    assert {d["retrieval_provider"] for d in demos} == {f"searxng:{site.url.split('//')[1]}"}
    assert len(site.queries) == 5  # one search per good seed (the two bad lines are rejected before)
    docs = {d["id"]: d for d in lake.read("documents").to_pylist()}
    assert {d["retrieval_query"] for d in demos} <= set(site.queries)  # the keywords were the search queries
    for demo in demos:  # grounded in a fetched page, which joined the documents with the query that found it first
        doc = docs[demo["document_id"]]
        assert doc["source"] == "search" and doc["search_query"] in {d["retrieval_query"] for d in demos}
        assert doc["url"] == f"{site.url}/articles/blackholes.html" and -1 <= demo["retrieval_score"] <= 1
    search_docs = [d for d in docs.values() if d["source"] == "search"]
    assert len(search_docs) == 1  # fetched by each shard that searched, kept once (ingest's dedup ran)
    # the sample's mirror page is a duplicate; so is the page when a second shard fetched it before
    # the first had written it (a shard that starts later finds it among the documents and does not add it again)
    dropped = [json.loads(r["record"]) for r in lake.read("documents", rejected=True).to_pylist() if r["reason"] == "duplicate"]
    assert sum(r["source"] != "search" for r in dropped) == 1
    assert all(r["url"] == f"{site.url}/articles/blackholes.html" for r in dropped if r["source"] == "search")
    assert lake.report("demonstrations")["reasons"].get("bad_seed") == 2
    release = pq.read_table(f"{info['path']}/data").to_pylist()
    used = {i for row in release for i in row["demonstration_ids"]}
    assert release and used & {d["id"] for d in demos}  # search-grounded demonstrations made released rows
    print({k: lake.report(k)["kept"] for k in ("documents", "demonstrations", "instructions", "curated")})
