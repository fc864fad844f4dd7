"""attribute.retrieval=search against a search engine on loopback: SearXNG's JSON API and a
generic HTTP template, hits fetched by the real crawler (robots.txt, address guard) and cleaned
by ingest's extraction and filters; outages fail the shard instead of rejecting seeds."""

import json
import logging

import pyarrow as pa
import pytest

from synthq.tasks.attribute.grounding import find_documents, prepare
from synthq.tasks.attribute.outputs import SeedAnalysis
from synthq.tasks.core.config import FactoryConfig
from synthq.tasks.ingest.web import fetch_documents
from synthq.tasks.shards.context import StageContext
from synthq.tasks.core.errors import ServiceError
from synthq.tasks.core.lake import Lake
from tests.attribute.search_site import KEY, SearchSite


@pytest.fixture
def engine_site():
    site = SearchSite(["/articles/login.html", "/private/espresso.html", "/articles/regression.html", "/articles/sourdough.html"])
    yield site
    site.close()


def _cfg(lake_dir: str, search: dict, allow_private: bool = True) -> FactoryConfig:
    return FactoryConfig(lake=lake_dir, attribute={"retrieval": "search", "search": {"hits": 3, "retries": 1, "timeout_s": 5, **search}},
                         ingest={"crawl": {"allow_private": allow_private, "per_host_delay_s": 0, "retries": 0, "timeout_s": 5}})


def _find(cfg: FactoryConfig, keywords=("linear regression", "least squares"), seed="seed-1"):
    ctx = StageContext(cfg=cfg, lake=Lake(cfg.lake), extras={"index_ids": pa.array([], pa.string()), "fetch_documents": fetch_documents})
    prepare(ctx)  # the corpus ids: none indexed here, and the pages searches wrote
    pair = ({"id": seed, "prompt": "How do I fit a line to my data?"}, SeedAnalysis(intent="fit a line", keywords=list(keywords)))
    return ctx, find_documents(ctx, [pair], ["fit a line " + " ".join(keywords)])


def test_searxng_hits_are_crawled_filtered_and_the_first_survivor_grounds(engine_site, lake_dir):
    ctx, found = _find(_cfg(lake_dir, {"url": engine_site.url}))
    assert engine_site.queries == ["linear regression least squares"]  # the keywords are the query
    (doc_id, cos), info = found.hits[0], found.info["seed-1"]
    doc = found.documents[doc_id]
    assert doc["url"] == f"{engine_site.url}/articles/regression.html"  # 3rd hit: the first two fail
    assert info["retrieval"] == "search" and info["retrieval_provider"] == f"searxng:{engine_site.url.split('//')[1]}"
    assert info["retrieval_rank_score"] == pytest.approx(1 / 3) and 0.2 < cos <= 1.0  # the dense cosine, computed here
    assert "/articles/sourdough.html" not in engine_site.site.paths()  # only the top `hits` are fetched
    assert "/private/espresso.html" not in engine_site.site.paths()  # robots.txt said no

    lake = Lake(lake_dir)
    docs, rejected = lake.read("documents").to_pylist(), lake.read("documents", rejected=True).to_pylist()
    assert [(d["source"], d["search_query"], d["id"]) for d in docs] == [("search", "linear regression least squares", doc_id)]
    assert sorted(r["reason"] for r in rejected) == ["robots_disallowed", "too_short"]
    assert all(json.loads(r["record"])["search_query"] == "linear regression least squares" for r in rejected)


def test_a_page_the_corpus_has_grounds_without_joining_it_again(engine_site, lake_dir):
    cfg = _cfg(lake_dir, {"url": engine_site.url})
    _, first = _find(cfg)
    (doc_id, _), = first.hits
    _, again = _find(cfg, seed="seed-2")  # another shard, later: the page is in the documents now
    assert [h[0] for h in again.hits] == [doc_id] and again.documents[doc_id]["text"] == first.documents[doc_id]["text"]
    lake = Lake(lake_dir)
    assert [d["id"] for d in lake.read("documents").to_pylist()] == [doc_id]  # read from the lake, not added twice
    assert len(lake.shards("documents")) == 2  # the second shard holds only its pages' rejections


def test_no_usable_hit_rejects_the_seed_with_the_reasons(engine_site, lake_dir):
    engine_site.hits = ["/articles/login.html", "/private/espresso.html"]
    _, found = _find(_cfg(lake_dir, {"url": engine_site.url}))
    assert not found.kept
    (row,) = found.rejected
    assert row["reason"] == "no_grounding_document" and row["record_id"] == "seed-1"
    assert "returned 2 hit(s), none usable (robots_disallowed: 1, too_short: 1)" in row["detail"]


def test_the_address_guard_holds_unless_the_user_allows_private_addresses(engine_site, lake_dir):
    _, found = _find(_cfg(lake_dir, {"url": engine_site.url}, allow_private=False))
    assert not found.kept and "private_address: 3" in found.rejected[0]["detail"]


def test_http_template_provider_with_a_key_from_the_environment_never_logged(engine_site, lake_dir, monkeypatch, caplog):
    monkeypatch.setenv("TEST_SEARCH_KEY", KEY)
    search = {"provider": "http", "template": engine_site.url + "/api/v1?query={query}&key={api_key}", "results_path": "data.items",
              "url_field": "link", "title_field": "name", "api_key_env": "TEST_SEARCH_KEY", "api_key_header": "X-Api-Key"}
    caplog.set_level(logging.DEBUG)
    ctx, found = _find(_cfg(lake_dir, search))
    assert engine_site.keys == [KEY] and engine_site.queries == ["linear regression least squares"]
    assert found.info["seed-1"]["retrieval_provider"].startswith("http:127.0.0.1:")
    engine_site.failing = True
    with pytest.raises(ServiceError, match=r"failed after 2 attempts \(HTTP 503\)") as failed:
        _find(_cfg(lake_dir, search))
    stored = Lake(lake_dir).read("documents").to_pylist() + Lake(lake_dir).read("documents", rejected=True).to_pylist()
    for text in (str(failed.value), caplog.text, json.dumps(found.info, default=str), json.dumps(stored, default=str)):
        assert KEY not in text
    assert "key=***" in str(failed.value)


def test_an_outage_is_a_service_error_not_a_bad_seed(engine_site, lake_dir):
    engine_site.failing = True
    with pytest.raises(ServiceError, match="HTTP 503"):
        _find(_cfg(lake_dir, {"url": engine_site.url, "retries": 2}))
    assert len(engine_site.queries) == 3  # retried twice
    site_down = _cfg(lake_dir, {"url": "http://127.0.0.1:9", "retries": 0})  # nothing listens on the discard port
    with pytest.raises(ServiceError, match="ConnectError"):
        _find(site_down)
