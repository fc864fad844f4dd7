"""Preference pairs from judged answers: per query and variant, the best-scored answer is
chosen and the lowest-scored (or one drawn at random among the lower ones) rejected.

A query whose answers are too close to call is not paired, and is counted: `single_answer`
(only one answer passed), `tie` (all scored the same) or `margin_below_min` (the best beats
the others by less than respond.min_margin).

A query with verifiable constraints is paired by verification: chosen follows every
constraint (the best-scored such answer), rejected fails one or more (the lowest-scored, or
one at random with random_lower); it is not paired when no answer follows them all
(`no_verified_answer`) or every one does (`all_verified`).
"""

from __future__ import annotations

import hashlib
import random
from itertools import groupby

import pyarrow as pa

from synthq.tasks.shards.context import StageContext
from synthq.tasks.core.constraints import verified
from synthq.tasks.core.lake import StageResult
from synthq.tasks.core.records import PAIRS, REJECTED, prompt_messages, rejection, table
from synthq.tasks.shards.stage import Stage

STAGE = "respond"
LINEAGE = ("query_id", "query", "document_id", "document_url", "demonstration_ids", "query_model", "query_prompt_version", "query_score")


def ranked(answers: list[dict]) -> list[dict]:
    """Best first; equal scores keep sample order, so the choice is stable."""
    return sorted(answers, key=lambda a: (-a["score"], a["sample"]))


def _pick_rejected(best: dict, lower: list[dict], rule: str, min_margin: float, seed: int) -> dict | None:
    far = [a for a in lower if best["score"] - a["score"] >= min_margin]
    if not far:
        return None
    if rule == "lowest":
        return far[-1]
    rng = random.Random(hashlib.sha256(f"{seed}:{best['id']}".encode()).digest())
    return rng.choice(far)


def _by_verification(answers: list[dict], rule: str, seed: int) -> tuple[dict | None, dict | None, str, str]:
    """(chosen, rejected, reason, detail) for a query with constraints: chosen is the best-scored
    answer that follows every constraint, rejected one that fails one or more (picked by `rule`
    among them: the judge's score breaks ties), whatever the margin."""
    passing = ranked([a for a in answers if verified(a)])
    failing = ranked([a for a in answers if not verified(a)])
    if not passing:
        return None, None, "no_verified_answer", f"none of {len(answers)} answers follows every constraint"
    if not failing:
        return None, None, "all_verified", f"all {len(answers)} answers follow every constraint: verification does not separate them"
    return passing[0], _pick_rejected(passing[0], failing, rule, float("-inf"), seed), "", ""


def pair(answers: list[dict], rule: str, min_margin: float, seed: int) -> tuple[dict | None, str, str]:
    """(pair row or None, reason, detail) for the answers of one query and variant."""
    best, *lower = ranked(answers)
    if not lower:
        return None, "single_answer", "only one answer passed its checks and judge"
    if best.get("constraints"):
        best, rejected, reason, detail = _by_verification(answers, rule, seed)
        if best is None:
            return None, reason, detail
        rule = "verified"
    else:
        rejected = _pick_rejected(best, lower, rule, min_margin, seed)
    if rejected is None:
        spread = best["score"] - lower[-1]["score"]
        if spread == 0:
            return None, "tie", f"all {len(answers)} answers scored {best['score']:g}"
        return None, "margin_below_min", f"best {best['score']:g} beats the others by at most {spread:g} < respond.min_margin={min_margin:g}"
    row = {
        "id": f"{best['query_id']}:{best['variant']}",
        **{k: best[k] for k in LINEAGE},
        "constraints": best.get("constraints") or [],
        "variant": best["variant"],
        "prompt": prompt_messages(best),
        "chosen": [{"role": "assistant", "content": best["response"]}],
        "rejected": [{"role": "assistant", "content": rejected["response"]}],
        "score_chosen": best["score"],
        "score_rejected": rejected["score"],
        "chosen_id": best["id"],
        "rejected_id": rejected["id"],
        "chosen_model": best["model"],
        "rejected_model": rejected["model"],
        "judge": best["judge"],
        "rule": rule,
        "chosen_followed": best.get("constraints_followed") or [],
        "rejected_followed": rejected.get("constraints_followed") or [],
    }
    return row, "", ""


def process(responses: pa.Table, ctx: StageContext) -> StageResult:
    """Judged answers of one shard -> preference pairs (the shard holds whole queries)."""
    cfg = ctx.cfg.respond
    rows = sorted(responses.to_pylist(), key=lambda r: (r["query_id"], r["variant"]))
    kept, rejected = [], []
    for (qid, variant), group in groupby(rows, key=lambda r: (r["query_id"], r["variant"])):
        answers = list(group)
        row, reason, detail = pair(answers, cfg.pair_rule, cfg.min_margin, ctx.cfg.seed)
        if row:
            kept.append(row)
        else:
            scores = {a["id"]: a["score"] for a in answers}
            rejected.append(rejection(STAGE, reason, detail, f"{qid}:{variant}", {"query": answers[0]["query"], "scores": scores}))
    return StageResult(table(kept, PAIRS), table(rejected, REJECTED), {"pairs": len(kept)})


STAGE_SPEC = Stage("pairs", ("respond.pair_rule", "respond.min_margin", "seed"), process)
