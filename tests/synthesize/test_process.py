"""The synthesize stage on the real engine: a group shares its demonstration block, and the
engine's prefix cache serves that block for every member after the first."""

import json

import pyarrow as pa
import pytest
import trafilatura

from synthq.tasks.core.config import FactoryConfig
from synthq.tasks.shards.context import StageContext
from synthq.tasks.core.lake import Lake
from synthq.tasks.sample import PAGES, SEEDS
from synthq.tasks.synthesize.process import process

pytestmark = pytest.mark.slow

DOCUMENTS = ["02-python-comprehensions-generators.html", "03-rust-ownership-borrowing.html", "04-sql-window-functions.html", "30-regular-expressions-basics.html"]
GROUNDS = ["05-git-rebase-vs-merge.html", "01-sourdough-starter.html", "31-http-caching-headers.html", "08-budgeting-50-30-20.html"]


def _page(name: str) -> dict:
    text = trafilatura.extract((PAGES / name).read_text())
    return {"id": name[:2], "title": name[3:-5].replace("-", " "), "text": text, "url": f"https://sample/{name}"}


def _demonstrations() -> list[dict]:
    seeds = [json.loads(line) for line in SEEDS.read_text().splitlines()[:4]]
    return [
        {
            "id": f"demo{i}", "seed_id": s["id"], "seed_prompt": s["prompt"], "intent": "", "keywords": [],
            "document_id": page["id"], "document_url": page["url"], "document_text": page["text"], "retrieval_score": 0.5,
            "scene": "A developer stuck on a bug before a release, asking for a clear explanation.",
            "query_compositions": {"ability": "debugging", "knowledge": "programming", "extra_information": "the code", "output": "an explanation"},
            "model": "test", "prompt_version": "test",
        }
        for i, (s, page) in enumerate(zip(seeds, map(_page, GROUNDS)))
    ]


def test_a_group_shares_its_block_through_the_prefix_cache(engine, lake_dir):
    # what is tested is the prompts' prefill: outputs are cut short (a cut output is repaired once, then rejected)
    cfg = FactoryConfig(lake=lake_dir, synthesize={"group_size": 4, "document_tokens": 400, "prompt_tokens": 2400, "max_output_tokens": 96})
    ctx = StageContext(cfg=cfg, lake=Lake(lake_dir), engine=engine, extras={"demonstrations": _demonstrations()})
    docs = pa.Table.from_pylist([_page(n) for n in DOCUMENTS])
    result = process(docs, ctx)

    stats = result.stats
    print(json.dumps(stats))
    assert result.kept.num_rows + result.rejected.num_rows == 4
    assert stats["groups"] == 1 and stats["mean_demonstrations"] == 4 and stats["mean_shared_block_tokens"] > 500
    assert len({tuple(ids) for ids in result.kept.column("demonstration_ids").to_pylist()}) <= 1
    # the three members after the first found the system prompt and the block in the cache
    llm = ctx.llm  # what the shard's manifest records of its LLM calls
    assert llm["cached_tokens"] >= 3 * 0.8 * stats["mean_shared_block_tokens"]
    assert llm["output_tokens"] > 0 and llm["prompt_tokens"] > llm["cached_tokens"]
