"""Curated queries written for the respond tests, and a scripted engine for its unit tests."""

from __future__ import annotations

import json

import pyarrow as pa

from synthq.tasks.core.records import CURATED, table
from synthq.tasks.llm.engine import Result

QUERIES = [
    "My sourdough starter smells like acetone after five days of feeding once a day. What should I change?",
    "Write a Python function that removes duplicates from a list while keeping the original order.",
    "Explain when a team of four developers should prefer git rebase over git merge, with one example each.",
    "Plan a monthly budget for a student earning 1,200 dollars using the 50/30/20 rule, in a table.",
]


def curated(queries: list[str] = QUERIES) -> pa.Table:
    rows = [
        {
            "id": f"q{i:02d}", "document_id": f"d{i}", "document_url": f"https://example.org/{i}", "demonstration_ids": ["demo-1"],
            "thought": "", "scene": "", "query_compositions": {"ability": "", "knowledge": "", "extra_information": "", "output": ""},
            "query": q, "model": "SmolLM2-135M-Instruct", "prompt_version": "synthesize@test",
            **{f"score_{c}": 1 for c in ("specificity", "domain_knowledge", "complexity", "problem_solving", "creativity", "technical_accuracy", "real_world_application")},
            "score_total": 7, "score_model": "m", "score_prompt_version": "score@test", "topic": -1, "moderation": "", "moderation_categories": [],
        }
        for i, q in enumerate(queries)
    ]
    return table(rows, CURATED)


def judgement(score: int) -> str:
    aspect = {"reason": "fine", "score": score}
    return json.dumps({a: aspect for a in ("instruction_following", "helpfulness", "truthfulness", "honesty")})


class Scripted:
    """Answers by the kind of request (its id's prefix); records every request it was sent."""

    model_name = "scripted"

    def __init__(self, answers: dict[str, list[tuple[str, str]]], expert: str = '{"expert": "You are a baker with twenty years of sourdough."}',
                 judge=lambda text: judgement(min(10, 1 + len(text) % 10))):
        self.answers, self.expert, self.judge, self.requests = answers, expert, judge, []

    def generate(self, requests):
        self.requests += requests
        out = []
        for r in requests:
            kind, qid = r.id.split(":", 1)[0], r.id.rsplit(":", 1)[-1]
            if kind == "expert":
                out.append(Result(r.id, self.expert, "stop", 50, 10))
            elif kind == "answer":
                draws = self.answers.get(qid, [("A fine answer.", "stop")] * r.n)
                samples = [Result(f"{r.id}#{k}" if k else r.id, t, f, output_tokens=5) for k, (t, f) in enumerate(draws[: r.n])]
                samples[0].prompt_tokens = 40
                out.append(Result(**{**samples[0].__dict__, "more": samples[1:]}))
            else:  # judge: the answer is the last fenced block
                answer = r.messages[-1]["content"].split("<answer>")[-1].split("</answer>")[0].strip()
                out.append(Result(r.id, self.judge(answer), "stop", 80, 30))
        return out
