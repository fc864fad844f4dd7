"""synthq installed next to a project that has its own `flows` and `tasks` packages (a Prefect
project, a Celery one): both work in one environment, because synthq's folders flows/ and
tasks/ install as synthq.flows and synthq.tasks.

The fresh environment is a real, non-editable install of synthq's wheel. Installing vLLM and
torch again would take long, so it borrows this environment's site-packages for the
dependencies, as a plain path in a .pth file: the .pth files in there (this environment's
editable synthq among them) are not run, so nothing of the checkout leaks into it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = [p for p in sys.path if Path(p).name in ("site-packages", "dist-packages")]  # synthq's dependencies
USER_PROJECT = {  # a user's project, as `prefect init` and Celery lay them out
    "pyproject.toml": """
        [build-system]
        requires = ["setuptools>=68"]
        build-backend = "setuptools.build_meta"

        [project]
        name = "bakery-pipeline"
        version = "1.0.0"

        [tool.setuptools]
        packages = ["flows", "tasks"]
        """,
    "flows/__init__.py": 'OWNER = "bakery"\n',
    "flows/nightly.py": 'from tasks import bake\n\nif __name__ == "__main__":\n    print(bake("rye"))\n',
    "tasks/__init__.py": 'OWNER = "bakery"\n\n\ndef bake(loaf):\n    return f"baked {loaf}"\n',
}
# run in the fresh environment: where every module comes from, in this process and in a Ray worker
PROBE = """
import json, sys
import flows, flows.nightly, tasks
import synthq.flows.cli, synthq.tasks.core.config, synthq.tasks.sample
import ray

def where():
    return {"flows": flows.__file__, "tasks": tasks.__file__, "owner": [flows.OWNER, tasks.OWNER],
            "synthq.flows.cli": synthq.flows.cli.__file__, "synthq.tasks.core.config": synthq.tasks.core.config.__file__,
            "pages": len(list(synthq.tasks.sample.PAGES.glob("*.html"))), "lake": synthq.tasks.core.config.FactoryConfig().lake}

seen = {"driver": where()}
if "--ray" in sys.argv:
    ray.init(address="local", num_cpus=1, include_dashboard=False, log_to_driver=False, configure_logging=False)
    seen["ray worker"] = ray.get(ray.remote(where).remote())
print(json.dumps(seen))
"""


def _env() -> dict[str, str]:
    """The environment a user's shell gives: nothing that points Python at this checkout."""
    drop = {"PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "PYTHONSAFEPATH", "RAY_ADDRESS"}
    return {k: v for k, v in os.environ.items() if k not in drop}


def _run(*cmd: str | Path, cwd: Path) -> str:
    done = subprocess.run([str(c) for c in cmd], cwd=cwd, env=_env(), capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, f"{cmd}:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done.stdout


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """A fresh venv with synthq's wheel and the user's project installed; (python, site-packages, project)."""
    tmp = tmp_path_factory.mktemp("install")
    _run(sys.executable, "-m", "venv", "--without-pip", tmp / "venv", cwd=tmp)
    python = tmp / "venv" / "bin" / "python"
    site = Path(_run(python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])", cwd=tmp).strip())
    (site / "synthq-dependencies.pth").write_text("".join(p + "\n" for p in SHARED))
    # build from a copy, so the checkout gets no build/ or egg-info
    src = tmp / "synthq-src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    for name in ("flows", "tasks"):
        shutil.copytree(ROOT / name, src / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    project = tmp / "bakery-pipeline"
    for rel, text in USER_PROJECT.items():
        (project / rel).parent.mkdir(parents=True, exist_ok=True)
        (project / rel).write_text(textwrap.dedent(text).lstrip())
    pip = (python, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", "--no-index")
    _run(*pip, src, cwd=tmp)
    _run(*pip, project, cwd=tmp)
    return python, site, project


def test_the_wheel_holds_one_name_and_every_file_of_the_tree(installed):
    python, site, _ = installed
    record = (site / "synthq-0.1.0.dist-info" / "RECORD").read_text().splitlines()
    files = {line.rsplit(",", 2)[0] for line in record}
    tops = {f.split("/")[0] for f in files if not f.startswith("..")}
    assert tops == {"synthq", "synthq-0.1.0.dist-info"}, tops
    expected = {f"synthq/{p.relative_to(ROOT).as_posix()}" for top in ("flows", "tasks") for p in (ROOT / top).rglob("*")
                if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc"}
    missing = sorted(expected - files)
    assert not missing, ("not in the wheel: list the package in [tool.setuptools] packages, or its files in "
                         "package-data, in pyproject.toml:\n" + "\n".join(missing))
    # the user's packages and synthq's lie side by side in site-packages, none over another
    assert (site / "flows" / "nightly.py").is_file() and (site / "tasks" / "__init__.py").is_file()


def _check(seen: dict, site: Path) -> None:
    for who, where in seen.items():
        assert where["owner"] == ["bakery", "bakery"], who
        assert Path(where["synthq.flows.cli"]) == site / "synthq" / "flows" / "cli.py", who
        assert Path(where["synthq.tasks.core.config"]) == site / "synthq" / "tasks" / "core" / "config.py", who
        assert where["pages"] > 0 and where["lake"] == "./lake", who


def test_the_users_flows_and_tasks_and_synthq_run_in_one_environment(installed):
    python, site, project = installed
    for cwd in (project.parent, project):  # anywhere, and in the project's folder (first on sys.path)
        _check(json.loads(_run(python, "-c", PROBE, cwd=cwd).splitlines()[-1]), site)
    assert _run(python, "-m", "flows.nightly", cwd=project).strip() == "baked rye"
    synthq = python.parent / "synthq"
    assert synthq.read_text().startswith(f"#!{python}")
    for cmd in ((synthq, "config"), (python, "-m", "synthq.flows.cli", "config")):
        out = _run(*cmd, "--set", "shard_size=7", cwd=project)
        assert "lake: ./lake" in out and "shard_size: 7" in out, out


@pytest.mark.slow  # a local Ray takes 10-20 s to start on a busy 2-core machine
def test_a_ray_worker_imports_the_same_modules(installed):
    python, site, project = installed
    seen = json.loads(_run(python, "-c", PROBE, "--ray", cwd=project).splitlines()[-1])
    assert set(seen) == {"driver", "ray worker"}
    _check(seen, site)
