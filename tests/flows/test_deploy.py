"""prefect.yaml against the code, and `synthq trigger`'s checks before it reaches the server."""

import pytest
import yaml
from prefect import Flow
from prefect.flows import load_flow_from_entrypoint
from typer.testing import CliRunner

from synthq.flows.cli import app
from synthq.flows.deploy import DEPLOYMENT, FLOWS, POOL, ROOT, run_parameters, trigger
from synthq.tasks.core.config import nested
from synthq.tasks.core.errors import ConfigError


def test_every_deployment_names_a_flow_of_the_code(monkeypatch):
    # as a worker loads it: the entrypoint is a file of the clone, its working directory
    monkeypatch.chdir(ROOT)
    spec = yaml.safe_load((ROOT / "prefect.yaml").read_text())
    seen = set()
    for d in spec["deployments"]:
        flow = load_flow_from_entrypoint(d["entrypoint"], use_placeholder_flow=False)
        assert isinstance(flow, Flow), d["entrypoint"]
        assert d["name"] == DEPLOYMENT and d["work_pool"]["name"] == POOL
        assert d["concurrency_limit"] == {"limit": 1, "collision_strategy": "ENQUEUE"}
        # the UI's form: one typed parameter whose fields carry their help text (and evaluate's release)
        schema = flow.parameters.model_dump()
        assert list(schema["properties"]) == (["config", "release"] if flow.name == "evaluate" else ["config"])
        seen.add(flow.name)
    assert seen == set(FLOWS)


def test_trigger_refuses_bad_input_before_the_server():
    with pytest.raises(ConfigError, match="Unknown flow 'nope'"):
        trigger("nope", {})
    with pytest.raises(ConfigError, match="min_score"):
        trigger("factory", {"curate.min_score": 9})
    res = CliRunner().invoke(app, ["trigger", "factory", "--param", "no_equals_sign"])
    assert res.exit_code == 2 and "section.key=value" in res.output


def test_overrides_become_the_config_parameter():
    assert nested({"lake": "s3://b/l", "curate.min_score": 4, "curate.target_size": 10}) == {
        "lake": "s3://b/l", "curate": {"min_score": 4, "target_size": 10}
    }


def test_run_parameters_carry_validated_values():
    params = run_parameters({"ingest.sources": "/data/pages", "curate.min_score": "4"})
    assert params == {"config": {"ingest": {"sources": ["/data/pages"]}, "curate": {"min_score": 4}}}
    params = run_parameters({"release": "synthq-instructions/v3", "evaluate.limit": "16"})
    assert params == {"config": {"evaluate": {"limit": 16}}, "release": "synthq-instructions/v3"}
