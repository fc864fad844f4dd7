"""The training subsets of a release, from the respond stage's datasets.

- `sft`: per query (and variant), the best-scored answer (of a query with constraints: the best
  that follows them all) as chat `messages`, and the same as
  `prompt` + `completion` messages (TRL's SFTTrainer reads a `prompt` column as
  prompt-completion data, so it must be the message list, not the query text);
- `preferences`: TRL's conversational preference format (`prompt` messages, `chosen` and
  `rejected` assistant messages, with both scores);
- `verifiable` (with synthesize.constraints on): each query that carries constraints, as a
  `prompt` and its `constraints`, for reinforcement learning with the reward function
  `synthq.tasks.core.constraints.constraint_reward` (TRL's GRPOTrainer);
- with respond.rationale=both, the rationale variant gets `sft_rationale` and
  `preferences_rationale`, so the two can be trained and compared side by side.

Only queries of the release's curated set enter; a curated query that has neither an answer
nor a rejection means the respond stage ran on another curation, and publishing stops.
"""

from __future__ import annotations

from collections.abc import Iterator

import pyarrow as pa
import pyarrow.compute as pc

from synthq.tasks.core.constraints import verified
from synthq.tasks.core.errors import LakeError
from synthq.tasks.core.idset import IdSet
from synthq.tasks.core.lake import Lake
from synthq.tasks.core.records import PAIRS, SFT, VERIFIABLE, prompt_messages, table

LINEAGE = [f.name for f in SFT if f.name not in ("messages", "prompt", "completion", "prompt_id", "query", "variant", "answer_id", "score", "judge")]


def sft_rows(answers: list[dict]) -> list[dict]:
    """The best-scored answer of each query and variant (equal scores: the first sample); for a
    query with constraints, the best of those that follow them all (none: the query has no row)."""
    best: dict[tuple[str, str], dict] = {}
    for a in filter(verified, answers):
        key = (a["query_id"], a["variant"])
        if key not in best or (-a["score"], a["sample"]) < (-best[key]["score"], best[key]["sample"]):
            best[key] = a
    return [_sft_row(a) for _, a in sorted(best.items())]


def _sft_row(a: dict) -> dict:
    completion = [{"role": "assistant", "content": a["response"]}]
    return {
        "messages": prompt_messages(a) + completion, "prompt": prompt_messages(a), "completion": completion,
        "prompt_id": a["query_id"], "query": a["query"], "variant": a["variant"],
        "answer_id": a["id"], "score": a["score"], "judge": a["judge"], **{k: a[k] for k in LINEAGE},
    }


def curated_ids(lake: Lake) -> IdSet:
    """The ids of the curated queries, read shard by shard (the id column only)."""
    return IdSet(lake.read_shard("curated", s, columns=["id"]).column("id") for s in lake.shards("curated"))


def _answered_or_rejected(lake: Lake) -> IdSet:
    def parts():
        for s in lake.shards("responses"):
            yield lake.read_shard("responses", s, columns=["query_id"]).column("query_id")
            records = lake.read_shard("responses", s, rejected=True, columns=["record_id"]).column("record_id")
            yield [r.split(":", 1)[0] for r in records.to_pylist()]

    return IdSet(parts())


def _of(lake: Lake, dataset: str, ids: IdSet, variant: str) -> Iterator[list[dict]]:
    """Each shard's rows of the variant for the queries `ids`, one shard at a time."""
    for s in lake.shards(dataset):
        rows = lake.read_shard(dataset, s)
        yield rows.filter(pc.and_(pa.array(ids.contains(rows.column("query_id"))), pc.equal(rows.column("variant"), variant))).to_pylist()


def _sft(lake: Lake, ids: IdSet, variant: str) -> Iterator[pa.Table]:
    """A responses shard holds every answer of its queries: its best answers are the best."""
    for answers in _of(lake, "responses", ids, variant):
        yield table(sft_rows(answers), SFT)


def _pairs(lake: Lake, ids: IdSet, variant: str) -> Iterator[pa.Table]:
    for pairs in _of(lake, "pairs", ids, variant):
        yield table(pairs, PAIRS)


def training_subsets(lake: Lake, ids: IdSet | set[str], variants: tuple[str, ...], partial: bool = False) -> dict[str, Iterator[pa.Table]]:
    """Subset name -> its rows, one responses (or pairs) shard at a time, for the curated
    queries `ids`; the first variant takes the plain names. `partial`: a partial release
    (failed shards, publish.allow_partial), whose missing answers its card names."""
    ids = ids if isinstance(ids, IdSet) else IdSet([sorted(ids)])
    if not lake.shards("responses"):
        raise LakeError("respond.enabled is on but the lake has no responses: run `synthq respond` first, "
                        "or publish queries only with --set respond.enabled=false.")
    missing = ids.minus(_answered_or_rejected(lake))
    if missing and not partial:
        raise LakeError(f"{len(missing)} curated queries have neither an answer nor a rejection (e.g. {missing[0]}): "
                        "curation changed since the respond stage ran; run `synthq respond` again.")
    out = {}
    for i, variant in enumerate(variants):
        suffix = "" if i == 0 else f"_{variant}"
        out[f"sft{suffix}"] = _sft(lake, ids, variant)
        out[f"preferences{suffix}"] = _pairs(lake, ids, variant)
    return out


def verifiable_rows(lake: Lake) -> Iterator[pa.Table]:
    """The curated queries that carry constraints, one curated shard at a time."""
    for s in lake.shards("curated"):
        rows = lake.read_shard("curated", s, columns=["id", "query", "constraints"]).to_pylist()
        yield table([{"prompt": [{"role": "user", "content": r["query"]}], "constraints": r["constraints"], "prompt_id": r["id"]}
                     for r in rows if r["constraints"]], VERIFIABLE)
