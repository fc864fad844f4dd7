"""A small lake for the explorer's tests, written with the lake API and the record schemas
(no LLM): two documents, two seeds grounded in them, two instructions, a release, and
rejections from ingest and curation."""

from __future__ import annotations

import datetime as dt

import pyarrow as pa

from synthq.tasks.core import records
from synthq.tasks.core.lake import Lake, StageResult
from synthq.tasks.publish.release import publish
from tests.curate.test_select import _row

NOW = dt.datetime(2026, 11, 30, 12, 0, tzinfo=dt.timezone.utc)
EMPTY = {"ability": "", "knowledge": "", "extra_information": "", "output": ""}


def _document(i: int, title: str, text: str) -> dict:
    return {"id": f"doc{i}", "url": f"https://bakery.example/{i}", "title": title, "text": text, "language": "en",
            "language_score": 0.99, "date": "", "source": "sample", "source_offset": i, "fetch_time": NOW,
            "n_words": len(text.split())}


def _demo(i: int, seed: str, doc: int) -> dict:
    return {"id": f"demo{i}", "seed_id": f"seed{i}", "seed_prompt": seed, "intent": f"intent of seed {i}",
            "keywords": ["sourdough", "starter"], "document_id": f"doc{doc}", "document_url": f"https://bakery.example/{doc}",
            "document_text": "cut text", "retrieval_score": 0.8, "scene": f"A home baker (scene {i}).",
            "query_compositions": EMPTY, "model": "m", "prompt_version": "g@1"}


def _write(lake: Lake, dataset: str, rows: list[dict], schema: pa.Schema, rejected: list[dict] = ()) -> None:
    result = StageResult(records.table(rows, schema), records.table(list(rejected), records.REJECTED))
    lake.write_shard(dataset, "00000", result, input_id="test", config="test")


def build_lake(root: str) -> Lake:
    lake = Lake(root)
    _write(lake, "documents", [
        _document(0, "Keeping a sourdough starter alive", "Feed the starter flour and water every day; a cold fridge slows it down for a week."),
        _document(1, "Rye bread hydration", "Rye flour absorbs more water than wheat; aim for 80 percent hydration."),
    ], records.DOCUMENTS, [records.rejection("ingest", "too_short", "12 words, below quality.min_words=50", "doc9", {"text": "Buy now"})])
    _write(lake, "demonstrations", [
        _demo(0, "How do I revive a sleepy sourdough starter?", 0),
        _demo(1, "What hydration suits a rye loaf?", 1),
    ], records.DEMONSTRATIONS)
    queries = ["Plan a feeding schedule for my sourdough starter while I travel for ten days.",
               "Design a rye loaf recipe at 80 percent hydration for a small oven."]
    rows = []
    for i, q in enumerate(queries):
        row = {**_row(i, q, 5 - i), "document_id": f"doc{i}", "document_url": f"https://bakery.example/{i}",
               "demonstration_ids": ["demo0", "demo1"] if i == 0 else ["demo1"]}
        rows.append(row)
    _write(lake, "instructions", [{k: r[k] for k in records.INSTRUCTIONS.names} for r in rows], records.INSTRUCTIONS)
    _write(lake, "curated", rows, records.CURATED, [
        records.rejection("curate", "near_duplicate", "cosine 0.97 with q0 (curate.dedup_threshold=0.9)", "q7", {"query": "Feed my starter?"}),
        records.rejection("curate", "low_score", "score 1 below curate.min_score=3", "q8", {"query": "Say hi"}),
    ])
    answers = [_answer(rows[0], k, text, score) for k, (text, score) in
               enumerate([("Feed it once before you leave, then refrigerate.", 8.5), ("Leave it out.", 3.0)])]
    _write(lake, "responses", answers, records.RESPONSES)
    _write(lake, "pairs", [_pair(rows[0], *answers)], records.PAIRS)
    publish(lake, "bakery", records.table(rows, records.CURATED), {}, {}, "digest")
    return lake


def _lineage(row: dict) -> dict:
    return {"query_id": row["id"], "query": row["query"], "document_id": row["document_id"],
            "document_url": row["document_url"], "demonstration_ids": row["demonstration_ids"],
            "query_model": "m", "query_prompt_version": "p@1", "query_score": row["score_total"]}


def _answer(row: dict, sample: int, text: str, score: float) -> dict:
    return {"id": f"{row['id']}-direct-{sample}", **_lineage(row), "variant": "direct", "sample": sample,
            "expert": "", "reasoning": "", "answer": text, "response": text, "temperature": 0.7, "max_tokens": 256,
            "seed": 1, "output_tokens": 12, "model": "m", "expert_prompt_version": "", "answer_prompt_version": "a@1",
            "judge": "llm:m", "judge_prompt_version": "j@1", "score": score,
            **{f"score_{a}": int(score) for a in records.ASPECTS}, "judge_reasons": "{}"}


def _pair(row: dict, chosen: dict, rejected: dict) -> dict:
    return {"id": f"{row['id']}-direct", **_lineage(row), "variant": "direct",
            "prompt": [{"role": "user", "content": row["query"]}],
            "chosen": [{"role": "assistant", "content": chosen["answer"]}],
            "rejected": [{"role": "assistant", "content": rejected["answer"]}],
            "score_chosen": chosen["score"], "score_rejected": rejected["score"], "chosen_id": chosen["id"],
            "rejected_id": rejected["id"], "chosen_model": "m", "rejected_model": "m", "judge": "llm:m", "rule": "lowest"}
