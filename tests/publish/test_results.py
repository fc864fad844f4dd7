"""Benchmark results attached to releases, and the scaling view over them."""

import json

import pytest
from typer.testing import CliRunner

from synthq.flows.cli import app
from synthq.tasks.core.errors import InputError, LakeError
from synthq.tasks.core.lake import Lake
from synthq.tasks.publish import catalog
from synthq.tasks.publish.release import publish
from synthq.tasks.publish.results import parse_results
from synthq.tasks.publish.scaling import plot, trend
from tests.publish.test_release import STAGES, _data

LM_EVAL = {
    "results": {
        "ifeval": {
            "alias": "ifeval",
            "prompt_level_strict_acc,none": 0.512,
            "prompt_level_strict_acc_stderr,none": 0.021,
            "inst_level_loose_acc,none": 0.634,
            "inst_level_loose_acc_stderr,none": "N/A",
        },
        "gsm8k": {"alias": "gsm8k", "exact_match,strict-match": 0.41, "exact_match_stderr,strict-match": 0.013},
    },
    "config": {"model": "hf", "model_args": "pretrained=/ckpt/llama-8b-sft-v2"},
}
ALPACA_CSV = (
    ",win_rate,standard_error,n_wins,n_total,avg_length,length_controlled_winrate,lc_standard_error\n"
    "llama-8b-sft-v2,18.52,1.21,148,805,1630,22.37,0.71\n"
)


def test_lm_eval_json(tmp_path):
    f = tmp_path / "results.json"
    f.write_text(json.dumps(LM_EVAL))
    rows = {(r["benchmark"], r["metric"]): r for r in parse_results(f)}
    assert set(rows) == {("ifeval", "prompt_level_strict_acc"), ("ifeval", "inst_level_loose_acc"), ("gsm8k", "exact_match,strict-match")}
    assert rows[("ifeval", "prompt_level_strict_acc")]["value"] == 0.512
    assert rows[("gsm8k", "exact_match,strict-match")]["model"] == "pretrained=/ckpt/llama-8b-sft-v2"


def test_alpaca_eval_leaderboard_csv(tmp_path):
    f = tmp_path / "leaderboard.csv"
    f.write_text(ALPACA_CSV)
    rows = parse_results(f)
    assert {(r["metric"], r["value"], r["model"]) for r in rows} == {
        ("length_controlled_winrate", 22.37, "llama-8b-sft-v2"),
        ("win_rate", 18.52, "llama-8b-sft-v2"),
    }
    assert {r["benchmark"] for r in rows} == {"alpaca_eval"}


def test_plain_csv_and_json(tmp_path):
    c = tmp_path / "r.csv"
    c.write_text("benchmark,metric,value,model\narena_hard,score,31.5,m1\nmt_bench,score,7.1,m1\n")
    assert [r["value"] for r in parse_results(c)] == [31.5, 7.1]
    j = tmp_path / "r.json"
    j.write_text(json.dumps([{"benchmark": "mt_bench", "metric": "score", "value": "7.4"}]))
    assert parse_results(j) == [{"benchmark": "mt_bench", "metric": "score", "value": 7.4, "model": ""}]


@pytest.mark.parametrize(
    "name, content, message",
    [
        ("r.txt", "ifeval 0.5", "must be .json or .csv"),
        ("r.csv", "a,b\n1,2\n", "has columns"),
        ("r.json", "{not json", "not valid JSON"),
        ("r.json", '{"scores": 1}', "unknown shape"),
        ("r.json", '[{"benchmark": "x", "metric": "y", "value": "high"}]', "is not a number"),
        ("r.json", '[{"benchmark": "x"}]', "needs benchmark, metric and value"),
    ],
)
def test_bad_result_files_say_what_is_wrong(tmp_path, name, content, message):
    f = tmp_path / name
    f.write_text(content)
    with pytest.raises(InputError, match=message):
        parse_results(f)


def test_release_refs(lake_dir):
    lake = Lake(lake_dir)
    publish(lake, "ds", _data(2), STAGES, {}, "x")
    publish(lake, "ds", _data(3), STAGES, {}, "x")
    with catalog.local_catalog(lake) as path:
        assert catalog.resolve_release(path, "ds") == ("ds", 2)
        assert catalog.resolve_release(path, "ds/v1") == ("ds", 1)
        with pytest.raises(LakeError, match="has v1, v2"):
            catalog.resolve_release(path, "ds/v9")
        with pytest.raises(LakeError, match="known: ds"):
            catalog.resolve_release(path, "other")


def test_trend_is_gain_per_tenfold():
    pts = [{"rows": 10**k, "value": 20 + 2.5 * k, "version": k} for k in (3, 4, 5)]
    intercept, gain = trend(pts)
    assert gain == pytest.approx(2.5) and intercept == pytest.approx(20)
    assert trend(pts[:1]) is None


def test_cli_results_then_scaling_plot(lake_dir, tmp_path):
    lake = Lake(lake_dir)
    for n in (4, 8, 16):
        publish(lake, "ds", _data(n), STAGES, {}, "x")
    runner = CliRunner()
    for version, (strict, win) in enumerate([(0.40, 10.0), (0.45, 14.0), (0.52, 17.5)], start=1):
        lm = tmp_path / f"lm{version}.json"
        lm.write_text(json.dumps({"results": {"ifeval": {"prompt_level_strict_acc,none": strict}}}))
        ae = tmp_path / f"ae{version}.csv"
        ae.write_text(f",win_rate,length_controlled_winrate\nm,{win - 2},{win}\n")
        for f in (lm, ae):
            res = runner.invoke(app, ["results", "add", f"ds/v{version}", str(f), "--lake", lake_dir])
            assert res.exit_code == 0, res.output
    out = tmp_path / "plot" / "scaling.png"
    res = runner.invoke(app, ["scaling", "--lake", lake_dir, "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert "ifeval" in res.output and "alpaca_eval" in res.output and "ds/v3" in res.output
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and out.stat().st_size > 10_000
    bad = runner.invoke(app, ["results", "add", "ds/v7", str(tmp_path / "lm1.json"), "--lake", lake_dir])
    assert bad.exit_code == 2 and "does not exist" in bad.output


def test_plot_with_a_single_point(tmp_path):
    out = plot([{"benchmark": "b", "metric": "m", "value": 1.0, "rows": 10, "version": 1}], tmp_path / "one.png")
    assert out.exists()
