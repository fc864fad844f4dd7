"""Reruns regenerate exactly what changed, counted in requests that reached the endpoint.

What a nightly schedule wants, case by case (README, "Reruns"):
- another shard size: nothing is generated again;
- an edited prompt: that stage is regenerated;
- new documents: seeds are matched again and only those whose best page changed are grounded
  anew; only the new documents are synthesized, existing instructions stay;
- new seeds: only they are grounded; instructions stay unless `refresh`, which redoes those
  written from the older demonstrations.

The endpoint is a local stub (instant, schema-valid answers, every request counted): what is
tested is which requests a rerun makes, which the LLM cache and the manifests decide the same
way for every engine; the stages on the real model are tested by tests/flows/test_factory.py.
"""

import json
import shutil

import pytest

from synthq.tasks.core.config import load_config
from synthq.tasks.core.lake import Lake
from synthq.tasks.shards.stage import dataset_identity
from synthq.tasks.sample import PAGES, SEEDS
from synthq.tasks.synthesize.plan import PROMPT
from tests.llm.faults import Faulty

pytestmark = pytest.mark.slow

FIRST = ["01-sourdough-starter.html", "02-python-comprehensions-generators.html", "05-git-rebase-vs-merge.html",
         "16-exposure-triangle.html"]
LATER = ["08-budgeting-50-30-20.html", "30-regular-expressions-basics.html", "31-http-caching-headers.html"]


def _rows(lake: Lake, dataset: str) -> dict[str, dict]:
    return {r["id"]: r for r in lake.read(dataset).to_pylist()}


@pytest.fixture
def stub():
    with Faulty(rate=0.0) as server:
        yield server


def test_reruns_regenerate_exactly_what_changed(prefect_server, ray_local, tmp_path, stub):
    from synthq.flows.attribute import attribute_flow
    from synthq.flows.ingest import ingest_flow
    from synthq.flows.synthesize import synthesize_flow

    pages, seeds = tmp_path / "pages", tmp_path / "seeds.jsonl"
    pages.mkdir()
    for name in FIRST:
        shutil.copy(PAGES / name, pages / name)
    lines = SEEDS.read_text().splitlines()
    seeds.write_text("\n".join(lines[:3]) + "\n")
    base = {
        **stub.engine_settings(),
        "lake": str(tmp_path / "lake"), "shard_size": 2, "ingest.sources": str(pages), "attribute.seeds": str(seeds),
        "attribute.min_retrieval_score": 0.0, "attribute.document_tokens": 256, "attribute.max_output_tokens": 384,
        "synthesize.document_tokens": 256, "synthesize.prompt_tokens": 1200, "synthesize.group_size": 2,
        "synthesize.max_output_tokens": 512,
    }
    cfg = load_config(None, base)
    lake = Lake(cfg.lake)

    def run(cfg, stages=(ingest_flow, attribute_flow, synthesize_flow)) -> int:
        before = stub.served  # cache hits never reach it
        for flow in stages:
            flow(cfg)
        return stub.served - before

    run(cfg)
    demos, instr = _rows(lake, "demonstrations"), _rows(lake, "instructions")
    assert demos and instr
    grounded = {d["seed_id"]: d["document_id"] for d in demos.values()}

    # the endpoint moved and retries, timeout and concurrency were raised after an outage: every
    # finished shard is skipped (not redone from the LLM cache), and no request reaches either server
    finished = {ds: {m["shard"]: m["finished_at"] for m in lake.manifests(ds)} for ds in ("demonstrations", "instructions")}
    with Faulty(rate=0.0) as moved:
        calls = run(load_config(None, {**base, **moved.engine_settings(), "engine.max_retries": 9,
                                       "engine.request_timeout_s": 900, "engine.max_concurrency": 4}))
        assert calls == 0 and moved.served == 0
    assert {ds: {m["shard"]: m["finished_at"] for m in lake.manifests(ds)} for ds in finished} == finished

    # another shard size: nothing is generated again, also when the documents are re-ingested
    # in place and cut anew (each redone synthesis shard carries its documents' rows over)
    assert run(load_config(None, {**base, "shard_size": 3})) == 0
    assert run(load_config(None, {**base, "shard_size": 3, "ingest.append": False})) == 0
    assert _rows(lake, "instructions").keys() == instr.keys()
    carried = sum(m["stats"].get("carried", 0) for m in lake.manifests("instructions"))
    assert carried == len(lake.read("documents"))

    # new documents: only the seeds whose best page changed are grounded again, only the new
    # documents are synthesized, and existing instructions stay as they were
    known = len(lake.read("documents"))
    for name in LATER:
        shutil.copy(PAGES / name, pages / name)
    calls = run(cfg, (ingest_flow, attribute_flow))
    moved = {d["seed_id"] for d in _rows(lake, "demonstrations").values() if grounded.get(d["seed_id"]) != d["document_id"]}
    assert len(moved) <= calls <= 2 * len(moved)  # one grounding each (two with a repair), no keyword call
    new_docs = len(lake.read("documents")) - known
    calls = run(cfg, (synthesize_flow,))
    assert new_docs <= calls <= 2 * new_docs
    after = _rows(lake, "instructions")
    assert all(after[i]["query"] == row["query"] for i, row in instr.items() if i in after)

    # new seeds: only they are grounded; instructions stay...
    seeds.write_text("\n".join(lines[:4]) + "\n")
    calls = run(cfg, (attribute_flow,))
    assert 1 <= calls <= 2 * 2  # the new seed: keywords, then grounding (a repair each at most)
    assert run(cfg, (synthesize_flow,)) == 0
    # ...unless asked to redo those written from older demonstrations
    documents = len(lake.read("documents"))
    calls = run(load_config(None, {**base, "refresh": True}), (synthesize_flow,))
    assert 0 < calls <= 2 * documents
    current = {"demonstrations": dataset_identity(lake, "demonstrations")}
    assert all(m["reads"] == current and not m["stats"]["carried"] for m in lake.manifests("instructions"))

    # an edited prompt: its stage is regenerated (and the rows record the new version)
    text = PROMPT.read_text()
    try:
        PROMPT.write_text(text.replace("Study the examples:", "Read the examples closely:"))
        calls = run(cfg, (synthesize_flow,))
        from synthq.tasks.core.prompts import load_prompt

        version = load_prompt(PROMPT).version
    finally:
        PROMPT.write_text(text)
    assert documents <= calls <= 2 * documents
    assert {r["prompt_version"] for r in lake.read("instructions").to_pylist()} == {version}
    print(json.dumps({"documents": documents, "seeds": 4, "moved": len(moved)}))
