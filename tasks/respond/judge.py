"""Scoring answers: the engine's model with a rubric, or a reward model.

The LLM judge rates each answer on four aspects (1-10, a short reason before each score);
the overall score is their mean. A reward model (any Hugging Face sequence-classification
model) scores the conversation (user query, assistant answer) in batches, in its own Ray
actor; it runs on a GPU when the cluster has one.
"""

from __future__ import annotations

import json
from pathlib import Path

from synthq.tasks.shards.context import StageContext
from synthq.tasks.core.prompts import load_prompt
from synthq.tasks.core.records import ASPECTS
from synthq.tasks.llm.engine import Parsed, schema_for
from synthq.tasks.respond.outputs import Judgement, overall

JUDGE = Path(__file__).parent / "prompts" / "judge.yaml"


def judge_name(ctx: StageContext) -> str:
    cfg = ctx.cfg.respond
    if cfg.judge == "reward_model":
        return f"reward_model:{Path(cfg.reward_model or '').name}"
    return f"llm:{ctx.model_name}"


def scores_from_judgement(value) -> dict:
    """Columns of a valid LLM judgement: the overall score, each aspect, and the reasons."""
    return {
        "score": overall(value),
        **{f"score_{a}": getattr(value, a).score for a in ASPECTS},
        "judge_reasons": json.dumps({a: getattr(value, a).reason for a in ASPECTS}, ensure_ascii=False),
    }


def llm_judge(responses: list[dict], ctx: StageContext) -> list[Parsed]:
    prompt, cfg = load_prompt(JUDGE), ctx.cfg.respond
    reqs = [
        ctx.request(f"judge:{prompt.version}:{r['id']}", prompt.messages(query=r["query"], answer=r["response"]),
                    schema_for(Judgement), cfg.judge_max_tokens, 0.0)
        for r in responses
    ]
    return ctx.complete(reqs, Judgement)


def reward_scores(responses: list[dict], ctx: StageContext) -> list[dict]:
    """Columns of reward-model scores (no aspects, no reasons)."""
    conversations = [[{"role": "user", "content": r["query"]}, {"role": "assistant", "content": r["response"]}] for r in responses]
    values = ctx.extras["reward"].score(conversations) if conversations else []
    return [{"score": float(v), **{f"score_{a}": None for a in ASPECTS}, "judge_reasons": ""} for v in values]


def judge_version(ctx: StageContext) -> str:
    return load_prompt(JUDGE).version if ctx.cfg.respond.judge == "llm" else ""
