"""Parsing and validation of engine results (a scripted engine stands in: this is about parsing)."""

import json

from synthq.tasks.attribute.outputs import SeedAnalysis
from synthq.tasks.llm.engine import Request, Result, complete, parse_result, rejected_output, schema_for


class Scripted:
    model_name = "scripted"

    def __init__(self, texts):
        self.texts = texts

    def generate(self, requests):
        return [Result(r.id, t, "stop") for r, t in zip(requests, self.texts)]


def test_each_failure_has_its_reason():
    ok = parse_result(Result("1", '{"intent": "bake", "keywords": ["bread"]}', "stop"), SeedAnalysis)
    assert ok.value.keywords == ["bread"] and ok.error is None
    cases = {
        "llm_truncated": Result("2", '{"intent": "ba', "length"),
        "llm_invalid_json": Result("3", "not json", "stop"),
        "llm_schema_mismatch": Result("4", '{"intent": "x", "keywords": []}', "stop"),
        "llm_error": Result("5", "", None, error="boom"),
    }
    for reason, res in cases.items():
        parsed = parse_result(res, SeedAnalysis)
        assert parsed.value is None and parsed.reason == reason and parsed.error


def test_missing_result_is_an_error_not_a_gap():
    reqs = [Request(str(i), [], schema_for(SeedAnalysis)) for i in range(3)]
    out = complete(Scripted(['{"intent": "a", "keywords": ["k"]}']), reqs, SeedAnalysis)
    assert [o.reason for o in out] == [None, "llm_error", "llm_error"]
    row = rejected_output("attribute", out[1], "1", {"id": "1"})
    assert row["reason"] == "llm_error" and "raw_output" in row["record"]


def test_schema_caps_strings_and_lists():
    schema = schema_for(SeedAnalysis)
    assert schema["properties"]["keywords"]["maxItems"] == 5
    assert schema["properties"]["intent"]["maxLength"] == 240


def test_request_seed_is_stable_per_id():
    a, b = Request("x", [], {}, seed=1), Request("x", [], {}, seed=1)
    assert a.sampling_seed() == b.sampling_seed() != Request("y", [], {}, seed=1).sampling_seed()


def test_repeated_keywords_are_collapsed():
    parsed = parse_result(Result("k", '{"intent": "x", "keywords": ["Git", "rebase", "git", "rebase"]}', "stop"), SeedAnalysis)
    assert parsed.value.keywords == ["Git", "rebase"]


def test_a_query_must_be_written_in_words():
    from synthq.tasks.synthesize.outputs import Synthesis

    comp = {"ability": "a", "knowledge": "k", "extra_information": "e", "output": "o"}
    scene = "A teacher preparing a reading class wants simpler versions of hard texts for her pupils."
    base = {"thought": "t", "scene": scene, "query_compositions": comp}
    bad = parse_result(Result("q", json.dumps({**base, "query": "furetroraionbefilimentaion"}), "stop"), Synthesis)
    assert bad.reason == "llm_schema_mismatch" and "fewer than 5" in bad.error
    good = parse_result(Result("q", json.dumps({**base, "query": "Rewrite this paragraph for a ten year old reader."}), "stop"), Synthesis)
    assert good.value is not None


class Rounds:
    """Answers the n-th call with the n-th list of texts; records what it was asked."""

    model_name = "rounds"

    def __init__(self, *rounds):
        self.rounds, self.asked = list(rounds), []

    def generate(self, requests):
        self.asked.append(requests)
        texts = self.rounds.pop(0)
        return [Result(r.id, t, "stop", 7, 3) for r, t in zip(requests, texts)]


def _reqs(n):
    return [Request(str(i), [{"role": "user", "content": f"seed {i}"}], schema_for(SeedAnalysis), 300) for i in range(n)]


def test_one_repair_attempt_then_quarantine_with_both_raw_texts():
    good = '{"intent": "bake", "keywords": ["bread"]}'
    engine = Rounds([good, "not json", '{"intent": "x", "keywords": []}'], [good, "still not json"])
    out = complete(engine, _reqs(3), SeedAnalysis)
    assert [len(call) for call in engine.asked] == [3, 2]  # only the two failures are retried
    repair = engine.asked[1][0]
    assert repair.id == "1:repair" and "not JSON" in repair.messages[-1]["content"] and repair.max_tokens == 236
    assert out[0].value and out[0].attempts == 1
    assert out[1].value and out[1].attempts == 2 and out[1].id == "1" and out[1].usage == {"prompt_tokens": 14, "cached_tokens": 0, "output_tokens": 6}
    assert out[2].value is None and out[2].attempts == 2 and out[2].reason == "llm_invalid_json"
    assert "after one repair attempt" in out[2].error and "keywords" in out[2].error
    assert "--- repair attempt ---" in out[2].raw and "still not json" in out[2].raw
    row = json.loads(rejected_output("attribute", out[2], "2", {"id": "2"})["record"])
    assert row["request_id"] == "2" and row["attempts"] == 2 and "still not json" in row["raw_output"]


def test_no_repair_when_nothing_failed_or_when_asked_not_to():
    engine = Rounds(["not json"])
    assert complete(engine, _reqs(1), SeedAnalysis, repair=False)[0].attempts == 1
    assert len(engine.asked) == 1


def test_stage_context_counts_calls_repairs_and_tokens_for_the_manifest(tmp_path):
    from synthq.tasks.core.config import FactoryConfig
    from synthq.tasks.shards.context import StageContext
    from synthq.tasks.core.lake import Lake

    good = '{"intent": "bake", "keywords": ["bread"]}'
    ctx = StageContext(cfg=FactoryConfig(lake=str(tmp_path)), lake=Lake(str(tmp_path)), engine=Rounds([good, "not json"], [good]))
    ctx.complete(_reqs(2), SeedAnalysis)
    # three generations of 7 prompt and 3 output tokens each: two first attempts, one repair
    assert ctx.llm == {"calls": 2, "repaired": 1, "repair_failed": 0, "prompt_tokens": 21, "cached_tokens": 0, "output_tokens": 9}
