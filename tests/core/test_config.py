import pytest

from synthq.tasks.core.config import EngineConfig, FactoryConfig, load_config, parse_override
from synthq.tasks.core.errors import ConfigError


def test_yaml_then_overrides(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("lake: /data/lake\ncurate:\n  dedup_threshold: 0.8\n")
    cfg = load_config(path, {"curate.target_size": 10, "engine.model": "/models/x"})
    assert cfg.lake == "/data/lake"
    assert cfg.curate.dedup_threshold == 0.8
    assert cfg.curate.target_size == 10
    assert cfg.engine.model == "/models/x"


def test_override_values_are_parsed_as_yaml():
    assert parse_override("curate.target_size=12") == ("curate.target_size", 12)
    assert parse_override("ray_address=null") == ("ray_address", None)
    with pytest.raises(ConfigError, match="section.key=value"):
        parse_override("no-equals-sign")


def test_unknown_key_is_named(tmp_path):
    with pytest.raises(ConfigError, match="curate.dedup_treshold"):
        load_config(None, {"curate.dedup_treshold": 0.5})


def test_missing_file_and_bad_yaml(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("a: [1, 2\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(bad)


def test_prompt_budget_must_fit_context():
    with pytest.raises(ConfigError, match="exceeds engine.max_model_len"):
        load_config(None, {"synthesize.prompt_tokens": 4000})


def test_digest_tracks_only_named_sections():
    a, b = FactoryConfig(), FactoryConfig(curate={"min_score": 3})
    assert a.digest("ingest") == b.digest("ingest")
    assert a.digest("curate") != b.digest("curate")


def test_selection_options_do_not_invalidate_scores():
    from synthq.tasks.curate.score import STAGE_SPEC as SCORE
    from synthq.tasks.curate.select import STAGE_SPEC as SELECT

    a, b = FactoryConfig(), FactoryConfig(curate={"benchmarks": ["x.jsonl"], "target_size": 10})
    assert SCORE.digest(a) == SCORE.digest(b)
    assert SELECT.digest(a) != SELECT.digest(b)
    assert SCORE.digest(a) != SCORE.digest(FactoryConfig(curate={"max_output_tokens": 300}))


def test_how_requests_reach_the_engine_is_not_part_of_a_shards_digest():
    """Another server, more retries or a longer timeout after an outage leave finished shards
    finished; another model or sampling setting redoes them. A lake written with the default
    settings keeps the digests it had before transport fields were set apart."""
    import hashlib
    import json

    from synthq.tasks.synthesize.process import STAGE_SPEC

    a = FactoryConfig(engine={"kind": "openai", "base_url": "http://a:8000/v1", "model": "m"})
    moved = FactoryConfig(engine={"kind": "openai", "base_url": "http://b:9000/v1", "model": "m", "max_retries": 12,
                                  "request_timeout_s": 900, "max_concurrency": 8, "breaker_failures": 40,
                                  "breaker_cooldown_s": 60, "api_key_env": "OTHER_KEY", "replicas": 2})
    assert a.digest("engine") == moved.digest("engine") and STAGE_SPEC.digest(a) == STAGE_SPEC.digest(moved)
    for change in ({"model": "other"}, {"frequency_penalty": 0.0}, {"seed": 1}, {"max_model_len": 8192}, {"kind": "vllm"}):
        other = FactoryConfig(engine={"kind": "openai", "base_url": "http://a:8000/v1", "model": "m", **change})
        assert STAGE_SPEC.digest(other) != STAGE_SPEC.digest(a), change
    plain = FactoryConfig()
    before = hashlib.sha256(json.dumps({"engine": plain.engine.model_dump()}, sort_keys=True).encode()).hexdigest()[:12]
    assert plain.digest("engine") == before
    assert set(EngineConfig.TRANSPORT) <= set(EngineConfig.model_fields)


def test_cli_config_prints_yaml_and_names_bad_keys():
    import yaml
    from typer.testing import CliRunner

    from synthq.flows.cli import app

    ok = CliRunner().invoke(app, ["config", "--set", "curate.target_size=50"])
    assert ok.exit_code == 0 and yaml.safe_load(ok.output)["curate"]["target_size"] == 50
    bad = CliRunner().invoke(app, ["config", "--set", "curate.nope=1"])
    assert bad.exit_code == 2 and "curate.nope" in bad.output
