"""The respond stage for one shard of curated queries: expert identity, sampled answers,
model-free checks, judgement.

Nothing is lost: a sample that fails a check or whose judgement fails its schema lands in
`responses/rejected/` with its raw text and reason; a query with no valid answer in a variant
lands there too (`no_valid_answer`), with the reasons of its samples, so every curated query
is either answered or rejected with a reason. An expert identity that fails its schema (after
one repair) is kept there as well (record id `<query>:expert:0`), and the query is answered
without one.
"""

from __future__ import annotations

import hashlib
from collections import Counter

import pyarrow as pa

from synthq.tasks.shards.context import StageContext
from synthq.tasks.core.constraints import verified
from synthq.tasks.core.lake import Lake, StageResult
from synthq.tasks.core.records import REJECTED, RESPONSES, rejection, table
from synthq.tasks.shards.stage import ShardSpec, Stage
from synthq.tasks.llm.engine import rejected_output
from synthq.tasks.respond.answer import ANSWER, EXPERT, Sample, experts, response_row, sample_answers
from synthq.tasks.respond.judge import JUDGE, judge_name, judge_version, llm_judge, reward_scores, scores_from_judgement

STAGE = "respond"


def _sample_rejection(s: Sample) -> dict:
    record = {"query_id": s.row["id"], "query": s.row["query"], "variant": s.variant, "sample": s.index,
              "expert": s.expert, "raw_output": s.raw}
    return rejection(STAGE, s.checked.reason or "answer_invalid", s.checked.detail, s.id, record)


def _judge(candidates: list[dict], ctx: StageContext, rejected: list[dict]) -> list[dict]:
    """Scores joined to the candidates; a failed judgement quarantines its answer."""
    name, version = judge_name(ctx), judge_version(ctx)
    if ctx.cfg.respond.judge == "reward_model":
        return [{**c, **s, "judge": name, "judge_prompt_version": version} for c, s in zip(candidates, reward_scores(candidates, ctx))]
    kept = []
    for cand, out in zip(candidates, llm_judge(candidates, ctx)):
        if out.value is None:
            r = rejected_output(STAGE, out, cand["id"], cand)
            rejected.append({**r, "detail": f"judge: {r['detail']}"})
        else:
            kept.append({**cand, **scores_from_judgement(out.value), "judge": name, "judge_prompt_version": version})
    return kept


def _unanswered(rows: list[dict], kept: list[dict], rejected: list[dict], variants: tuple[str, ...]) -> list[dict]:
    """One rejection per query and variant that kept no answer, naming its samples' reasons."""
    answered = {(r["query_id"], r["variant"]) for r in kept}
    why: dict[tuple[str, str], Counter] = {}
    for r in rejected:
        qid, variant, _ = r["record_id"].rsplit(":", 2)
        why.setdefault((qid, variant), Counter())[r["reason"]] += 1
    out = []
    for row in rows:
        for variant in variants:
            if (row["id"], variant) not in answered:
                reasons = ", ".join(f"{k}: {v}" for k, v in sorted(why.get((row["id"], variant), Counter()).items()))
                out.append(rejection(STAGE, "no_valid_answer", f"{variant}: no answer passed ({reasons})", row["id"], row))
    return out


def _unverified(rows: list[dict], kept: list[dict]) -> list[dict]:
    """One rejection per query with constraints and variant whose kept answers all fail one or
    more of them (`no_verified_answer`), naming how many answers failed each. The answers stay
    in the dataset (a pair's rejected side may be one of them); `sft` takes none of them."""
    by_key: dict[tuple[str, str], list[dict]] = {}
    for answer in kept:
        if answer["constraints"]:
            by_key.setdefault((answer["query_id"], answer["variant"]), []).append(answer)
    queries = {r["id"]: r for r in rows}
    out = []
    for (qid, variant), answers in sorted(by_key.items()):
        if any(map(verified, answers)):
            continue
        kinds = [c["kind"] for c in answers[0]["constraints"]]
        failed = Counter(kind for a in answers for kind, ok in zip(kinds, a["constraints_followed"]) if not ok)
        detail = f"{variant}: none of {len(answers)} answers follows every constraint (" + ", ".join(
            f"{kind} failed by {n}" for kind, n in sorted(failed.items())) + ")"
        out.append(rejection(STAGE, "no_verified_answer", detail, qid, queries[qid]))
    return out


def process(queries: pa.Table, ctx: StageContext) -> StageResult:
    """Curated queries -> judged answers (one row per kept sample)."""
    rows, rejected, identities = queries.to_pylist(), [], []
    for row, out in zip(rows, experts(rows, ctx)):
        if out is not None and out.value is None:  # answered all the same, as a plain assistant
            r = rejected_output(STAGE, out, f"{row['id']}:expert:0", {"query_id": row["id"], "query": row["query"]})
            rejected.append({**r, "detail": f"expert identity: {r['detail']}; answered without one"})
        identities.append(out.value.expert if out is not None and out.value is not None else "")
    samples = sample_answers(rows, identities, ctx)
    sample_rejections = [_sample_rejection(s) for s in samples if s.checked.reason]
    candidates = [response_row(s, ctx) for s in samples if not s.checked.reason]
    kept = _judge(candidates, ctx, sample_rejections)
    rejected += sample_rejections + _unanswered(rows, kept, sample_rejections, ctx.cfg.respond.variants()) + _unverified(rows, kept)
    stats = {"queries": len(rows), "samples": len(samples), "answers_kept": len(kept),
             "answers_verified": sum(bool(a["constraints"]) and verified(a) for a in kept),
             "without_expert": sum(not e for e in identities) if ctx.cfg.respond.expert else 0}
    return StageResult(table(kept, RESPONSES), table(rejected, REJECTED), stats)


def prepare(ctx: StageContext) -> None:
    if ctx.cfg.respond.judge == "reward_model" and "reward" not in ctx.extras:
        from synthq.tasks.llm.ray_engine import reward_actor

        ctx.extras["reward"] = reward_actor(ctx.cfg.respond)


def query_specs(lake: Lake, shard_size: int) -> list[ShardSpec]:
    """Consecutive curated shards grouped into shards of up to `shard_size` queries (a larger
    curated shard stays whole), read by the shard task itself: the driver holds no query. A
    shard's input id hashes its curated shards' checksums, so a rerun after an unchanged
    curation skips every shard."""
    groups: list[list[dict]] = [[]]
    for m in lake.manifests("curated"):
        if m["kept"] and groups[-1] and sum(g["kept"] for g in groups[-1]) + m["kept"] > shard_size:
            groups.append([])
        if m["kept"]:
            groups[-1].append(m)
    return [ShardSpec(f"{i:05d}", hashlib.sha256(",".join(m["checksum"] for m in group).encode()).hexdigest()[:16],
                      upstream="curated", parts=tuple(m["shard"] for m in group))
            for i, group in enumerate(g for g in groups if g)]


# Pairing options do not enter: changing the pair rule must not answer every query again.
CONFIG_FIELDS = tuple(f"respond.{k}" for k in (
    "expert", "samples", "rationale", "judge", "reward_model", "reward_trust_remote_code", "reward_max_length",
    "temperature", "max_answer_tokens", "expert_max_tokens", "judge_max_tokens",
)) + ("engine",)
STAGE_SPEC = Stage("responses", CONFIG_FIELDS, process, prepare, uses_engine=True, cpus=0.5, prompts=(EXPERT, ANSWER, JUDGE))
