"""The respond stage on a scripted engine: every query answered or rejected with a reason,
samples in one request, expert identity as system message, pairs and their rules."""

import json

import pytest

from synthq.tasks.core.config import load_config
from synthq.tasks.shards.context import StageContext
from synthq.tasks.core.lake import Lake
from synthq.tasks.respond import pairs, process
from tests.respond.helpers import QUERIES, Scripted, curated, judgement


def _ctx(lake_dir, engine, **overrides):
    return StageContext(cfg=load_config(None, {"lake": lake_dir, **overrides}), lake=Lake(lake_dir), engine=engine)


def test_every_query_is_answered_or_rejected_with_a_reason(lake_dir):
    engine = Scripted({
        "q00": [("Feed it twice a day with equal flour and water.", "stop"), ("Feed it more often, at 25 C.", "stop")],
        "q01": [("", "stop"), ("def dedup(xs): return list(dict.fromkeys(xs))", "length")],
        "q02": [("I'm sorry, but I can't help with that.", "stop"), ("Rebase private branches; merge shared ones.", "stop")],
    })
    result = process.process(curated(), _ctx(lake_dir, engine, **{"respond.samples": 2}))
    answers = result.kept.to_pylist()
    rejected = {r["record_id"]: r for r in result.rejected.to_pylist()}
    assert {a["id"] for a in answers} == {"q00:direct:0", "q00:direct:1", "q02:direct:1", "q03:direct:0", "q03:direct:1"}
    assert rejected["q01:direct:0"]["reason"] == "answer_empty"
    assert rejected["q01:direct:1"]["reason"] == "answer_truncated"
    assert json.loads(rejected["q01:direct:1"]["record"])["raw_output"].startswith("def dedup")  # raw text kept
    assert rejected["q02:direct:0"]["reason"] == "answer_refusal"
    assert rejected["q01"]["reason"] == "no_valid_answer" and "answer_empty: 1, answer_truncated: 1" in rejected["q01"]["detail"]
    # one request per query for both samples, the expert identity as its system message
    answer_reqs = [r for r in engine.requests if r.id.startswith("answer:")]
    assert len(answer_reqs) == 4 and {r.n for r in answer_reqs} == {2} and {r.schema for r in answer_reqs} == {None}
    assert answer_reqs[0].messages[0]["content"].startswith("You are a baker")
    assert "<request>" in answer_reqs[0].messages[1]["content"]  # the query reaches the model fenced
    first = answers[0]
    assert first["expert"].startswith("You are a baker") and first["judge"] == "llm:SmolLM2-135M-Instruct"
    assert first["score"] == sum(first[f"score_{a}"] for a in ("instruction_following", "helpfulness", "truthfulness", "honesty")) / 4
    assert first["temperature"] == pytest.approx(0.8) and first["max_tokens"] == 512 and first["seed"] == answer_reqs[0].sampling_seed()
    assert first["query_id"] == "q00" and first["document_url"] == "https://example.org/0" and first["query_score"] == 7


def test_failed_expert_and_failed_judge_are_quarantined(lake_dir):
    engine = Scripted({}, expert='{"expert": "Shan. Really? Wow! Geez, I am so glad that it works!"}')
    result = process.process(curated()[:1], _ctx(lake_dir, engine))
    reasons = {r["record_id"]: (r["reason"], r["detail"]) for r in result.rejected.to_pylist()}
    assert reasons["q00:expert:0"][0] == "llm_schema_mismatch" and "second person" in reasons["q00:expert:0"][1]
    assert reasons["q00:expert:0"][1].endswith("answered without one")
    assert result.kept.num_rows == 2 and set(result.kept.column("expert").to_pylist()) == {""}  # answered all the same
    assert result.stats["without_expert"] == 1
    engine = Scripted({}, judge=lambda text: "not json")
    result = process.process(curated()[:1], _ctx(lake_dir, engine, **{"respond.expert": False}))
    reasons = {r["record_id"]: (r["reason"], r["detail"]) for r in result.rejected.to_pylist()}
    assert reasons["q00:direct:0"][0] == "llm_invalid_json" and reasons["q00:direct:0"][1].startswith("judge:")
    assert reasons["q00"][0] == "no_valid_answer" and result.kept.num_rows == 0
    assert not [r for r in engine.requests if r.id.startswith("expert:")]  # expert off: no identity call
    answer = next(r for r in engine.requests if r.id.startswith("answer:"))
    assert answer.messages[0]["content"].startswith("You are a knowledgeable")


def test_rationale_both_gives_two_variants(lake_dir):
    engine = Scripted({"q00": [("Reasoning: it is hungry.\nAnswer: Feed it twice a day.", "stop"), ("Feed it.", "stop")]})
    result = process.process(curated()[:1], _ctx(lake_dir, engine, **{"respond.rationale": "both"}))
    kept = {r["id"]: r for r in result.kept.to_pylist()}
    assert kept["q00:rationale:0"]["reasoning"] == "it is hungry." and kept["q00:rationale:0"]["answer"] == "Feed it twice a day."
    assert "q00:direct:1" in kept and kept["q00:direct:0"]["reasoning"] == ""
    assert {r["record_id"]: r["reason"] for r in result.rejected.to_pylist()} == {"q00:rationale:1": "rationale_missing"}
    rationale_req = next(r for r in engine.requests if r.id.startswith("answer:rationale"))
    assert '"Answer:"' in rationale_req.messages[1]["content"]


def _answer(i: int, score: float, qid: str = "q") -> dict:
    return {"id": f"{qid}:direct:{i}", "query_id": qid, "query": "Q?", "variant": "direct", "sample": i, "score": score,
            "expert": "You are X.", "response": f"answer {i}", "model": "m", "judge": "llm:m",
            **{k: None for k in ("document_id", "document_url", "demonstration_ids", "query_model", "query_prompt_version", "query_score")}}


def test_pair_rules_and_reasons():
    row, _, _ = pairs.pair([_answer(0, 5.0), _answer(1, 8.0), _answer(2, 2.0)], "lowest", 0.5, 0)
    assert (row["chosen_id"], row["rejected_id"], row["score_chosen"], row["score_rejected"]) == ("q:direct:1", "q:direct:2", 8.0, 2.0)
    assert row["prompt"] == [{"role": "system", "content": "You are X."}, {"role": "user", "content": "Q?"}]
    assert row["chosen"] == [{"role": "assistant", "content": "answer 1"}] and row["rule"] == "lowest"
    picks = {pairs.pair([_answer(0, 9.0, q), *[_answer(i, 1.0 + i, q) for i in range(1, 6)]], "random_lower", 0.5, 0)[0]["rejected_id"].split(":")[-1]
             for q in [f"q{k}" for k in range(30)]}
    assert len(picks) > 1  # drawn, not always the lowest
    again = pairs.pair([_answer(0, 9.0, "q1"), *[_answer(i, 1.0 + i, "q1") for i in range(1, 6)]], "random_lower", 0.5, 0)[0]
    assert again == pairs.pair([_answer(0, 9.0, "q1"), *[_answer(i, 1.0 + i, "q1") for i in range(1, 6)]], "random_lower", 0.5, 0)[0]
    assert pairs.pair([_answer(0, 5.0)], "lowest", 0.5, 0)[1] == "single_answer"
    assert pairs.pair([_answer(0, 5.0), _answer(1, 5.0)], "lowest", 0.5, 0)[1] == "tie"
    assert pairs.pair([_answer(0, 5.0), _answer(1, 5.25)], "lowest", 0.5, 0)[1] == "margin_below_min"
    assert pairs.pair([_answer(0, 5.0), _answer(1, 5.25)], "lowest", 0.0, 0)[0] is not None


def test_judge_reasons_come_before_scores_in_the_schema():
    from synthq.tasks.llm.engine import schema_for
    from synthq.tasks.respond.outputs import Aspect, Judgement

    assert list(schema_for(Aspect)["properties"]) == ["reason", "score"]
    assert Judgement.model_validate_json(judgement(7)).helpfulness.score == 7


@pytest.mark.parametrize("text, ok", [
    ("You are a baker with twenty years of sourdough, who explains feeding schedules plainly.", True),
    ("Your Expertise: The Ultimate Guide to Building a 18-Week Plan", True),
    ("Shan. Really? Wow! Geez, I am so glad that it works for them!", False),
    ("You cycling, cycling, cycling, cycling, cycling, cycling, cycling, cycling, cycling", False),
])
def test_expert_identity_must_be_second_person_prose(text, ok):
    from pydantic import ValidationError

    from synthq.tasks.respond.outputs import Expert

    if ok:
        Expert(expert=text)
    else:
        with pytest.raises(ValidationError):
            Expert(expert=text)


def test_respond_shards_group_curated_shards_and_read_them_in_the_task(lake_dir):
    """Curated shards of 3, 0, 2 and 4 queries at shard size 5: two respond shards, the empty
    one left out; each shard task reads its own curated shards, and a rerun's specs are equal."""
    from synthq.tasks.core.lake import StageResult
    from synthq.tasks.core.records import REJECTED
    from synthq.tasks.shards.stage import run_shard

    lake, rows = Lake(lake_dir), curated(QUERIES * 3)
    for shard, (start, n) in enumerate([(0, 3), (3, 0), (3, 2), (5, 4)]):
        lake.write_shard("curated", f"{shard:05d}", StageResult(rows.slice(start, n), REJECTED.empty_table()), input_id="x", config="x")
    specs = process.query_specs(lake, 5)
    assert [(s.shard, s.parts, s.rows) for s in specs] == [("00000", ("00000", "00002"), None), ("00001", ("00003",), None)]
    assert [s.input_id for s in process.query_specs(lake, 5)] == [s.input_id for s in specs]
    cfg = load_config(None, {"lake": lake_dir, "respond.samples": 2, "respond.min_margin": 0})
    scripted = Scripted({})
    for spec in specs:
        run_shard(process.STAGE_SPEC, spec, cfg, scripted)
    answered = lake.read("responses").column("query_id").to_pylist() + [
        r["record_id"] for r in lake.read("responses", rejected=True).to_pylist()]
    assert sorted(set(answered)) == sorted(rows.slice(0, 9).column("id").to_pylist())


def test_the_respond_report_samples_the_first_pairs_shard_by_shard(lake_dir):
    from synthq.tasks.core import records
    from synthq.tasks.core.lake import StageResult
    from synthq.tasks.respond.report import respond_markdown
    from tests.publish.explorer_lake import build_lake

    lake = build_lake(lake_dir)
    pair = lake.read_shard("pairs", "00000").to_pylist()[0]
    second = StageResult(records.table([{**pair, "query": "A second shard's query?"}], records.PAIRS), records.table([], records.REJECTED))
    lake.write_shard("pairs", "00001", second, input_id="test", config="test")
    text = respond_markdown(lake, n=2)
    assert pair["query"] in text and "A second shard's query?" in text
    assert "A second shard's query?" not in respond_markdown(lake, n=1)


def test_answers_are_verified_against_their_querys_constraints(lake_dir):
    from synthq.tasks.core.constraints import as_record
    from synthq.tasks.core.records import CURATED, table
    from synthq.tasks.publish.subsets import sft_rows

    rows = curated().to_pylist()[:2]
    rows[0]["constraints"] = [as_record({"kind": "punctuation:no_comma", "args": {}}),
                              as_record({"kind": "keywords:existence", "args": {"keywords": ["flour"]}})]
    rows[1]["constraints"] = [as_record({"kind": "punctuation:no_comma", "args": {}})]
    engine = Scripted({  # the judge prefers longer answers: verification must overrule it
        "q00": [("Feed it twice a day with flour and water.", "stop"), ("Feed it, with rye flour, warm water and patience, twice a day.", "stop"),
                ("Feed it twice a day, at 25 C.", "stop")],
        "q01": [("Use a set, then sort it.", "stop"), ("Use a set, a dict, or sorted.", "stop")],
    })
    result = process.process(table(rows, CURATED), _ctx(lake_dir, engine, **{"respond.samples": 3}))
    answers = {a["id"]: a for a in result.kept.to_pylist()}
    assert answers["q00:direct:0"]["constraints_followed"] == [True, True]
    assert answers["q00:direct:1"]["constraints_followed"] == [False, True]
    assert answers["q00:direct:2"]["constraints_followed"] == [False, False]
    assert [k["kind"] for k in answers["q00:direct:0"]["constraints"]] == ["punctuation:no_comma", "keywords:existence"]
    unverified = [r for r in result.rejected.to_pylist() if r["reason"] == "no_verified_answer"]
    assert [r["record_id"] for r in unverified] == ["q01"] and unverified[0]["detail"].startswith("direct: ")
    assert "punctuation:no_comma failed by 2" in unverified[0]["detail"]
    assert result.stats["answers_verified"] == 1
    # sft: the best answer that follows every constraint, not the judge's favourite; none for q01
    sft = sft_rows(list(answers.values()))
    assert [(r["prompt_id"], r["answer_id"]) for r in sft] == [("q00", "q00:direct:0")]
    # a pair by verification: chosen follows them all, rejected fails one or more, whatever the scores
    q00 = [a for a in answers.values() if a["query_id"] == "q00"]
    row, _, _ = pairs.pair(q00, "lowest", 0.5, 0)
    assert row["rule"] == "verified" and row["chosen_id"] == "q00:direct:0" and row["rejected_followed"] in ([False, True], [False, False])
    assert row["chosen_followed"] == [True, True]
    q01 = [a for a in answers.values() if a["query_id"] == "q01"]
    assert pairs.pair(q01, "lowest", 0.5, 0)[1] == "no_verified_answer"
    all_pass = [{**a, "constraints_followed": [True, True]} for a in q00]
    assert pairs.pair(all_pass, "lowest", 0.5, 0)[1] == "all_verified"
