"""Expert identities and sampled answers for one shard of curated queries.

ExpertPrompting first asks for a second-person description of the ideal expert for each
query; the answering call then has that description as its system message. Every variant
(direct, rationale) of a query is one request with `n = respond.samples`, so its prompt is
prefilled once for all samples. Each sample goes through the model-free checks (checks.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from synthq.tasks.shards.context import StageContext
from synthq.tasks.core.constraints import check
from synthq.tasks.core.prompts import load_prompt
from synthq.tasks.llm.engine import Parsed, schema_for
from synthq.tasks.respond.checks import Checked, check_answer, response_text
from synthq.tasks.respond.outputs import Expert

PROMPTS = Path(__file__).parent / "prompts"
EXPERT, ANSWER = PROMPTS / "expert.yaml", PROMPTS / "answer.yaml"


@dataclass
class Sample:
    """One sampled answer of a query and variant, checked; `checked.reason` is set when dropped."""

    id: str
    row: dict  # the curated query
    variant: str
    index: int
    expert: str
    checked: Checked
    raw: str
    seed: int
    output_tokens: int


def answer_id(query_id: str, variant: str, index: int) -> str:
    return f"{query_id}:{variant}:{index}"


def experts(rows: list[dict], ctx: StageContext) -> list[Parsed | None]:
    """The expert identity of each query (None for every query when respond.expert is off)."""
    if not ctx.cfg.respond.expert:
        return [None] * len(rows)
    prompt, cfg = load_prompt(EXPERT), ctx.cfg.respond
    reqs = [
        ctx.request(f"expert:{prompt.version}:{r['id']}", prompt.messages(query=r["query"]), schema_for(Expert), cfg.expert_max_tokens, 0.3)
        for r in rows
    ]
    return ctx.complete(reqs, Expert)


def sample_answers(rows: list[dict], identities: list[str], ctx: StageContext) -> list[Sample]:
    """Every sample of every variant of every query, in order, each checked."""
    prompt, cfg = load_prompt(ANSWER), ctx.cfg.respond
    jobs = [(row, expert, variant) for row, expert in zip(rows, identities) for variant in cfg.variants()]
    reqs = [
        ctx.request(
            f"answer:{variant}:{prompt.version}:{row['id']}",
            prompt.messages(query=row["query"], expert=expert, rationale=variant == "rationale"),
            None, cfg.max_answer_tokens, cfg.temperature, n=cfg.samples,
        )
        for row, expert, variant in jobs
    ]
    out = []
    for (row, expert, variant), req, result in zip(jobs, reqs, ctx.generate(reqs)):
        draws = result.samples()
        for k in range(cfg.samples):
            draw = draws[k] if k < len(draws) else None
            if draw is None:
                checked = Checked(reason="answer_missing", detail=f"the engine returned {len(draws)} of {cfg.samples} samples")
            elif draw.error:  # the server refused the request itself (ctx.generate raised for the service's failures)
                checked = Checked(reason="llm_request_rejected", detail=draw.error)
            else:
                checked = check_answer(draw.text, draw.finish_reason, variant == "rationale", cfg.max_answer_tokens)
            tokens = draw.output_tokens if draw else 0
            out.append(Sample(answer_id(row["id"], variant, k), row, variant, k, expert, checked, draw.text if draw else "", req.sampling_seed(), tokens))
    return out


def response_row(s: Sample, ctx: StageContext) -> dict:
    """The responses record of a kept sample, before judging."""
    row, cfg = s.row, ctx.cfg.respond
    return {
        "id": s.id,
        "query_id": row["id"],
        "query": row["query"],
        "document_id": row["document_id"],
        "document_url": row["document_url"],
        "demonstration_ids": row["demonstration_ids"],
        "query_model": row["model"],
        "query_prompt_version": row["prompt_version"],
        "query_score": row["score_total"],
        "constraints": row.get("constraints") or [],
        "variant": s.variant,
        "sample": s.index,
        "expert": s.expert,
        "constraints_followed": check(row.get("constraints") or [], s.checked.answer, row["query"]),
        "reasoning": s.checked.reasoning,
        "answer": s.checked.answer,
        "response": response_text(s.checked),
        "temperature": cfg.temperature,
        "max_tokens": cfg.max_answer_tokens,
        "seed": s.seed,
        "output_tokens": s.output_tokens,
        "model": ctx.model_name,
        "expert_prompt_version": load_prompt(EXPERT).version if cfg.expert else "",
        "answer_prompt_version": load_prompt(ANSWER).version,
    }
