"""The layers point one way: flows -> stages -> shards -> llm -> core (installed as synthq.flows
and synthq.tasks.*). A stage never imports another stage, core imports nothing above it, and
nothing in tasks/ imports Prefect. Every import counts, the ones inside functions too (a lazy
import hides a cycle, it does not remove it)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TASKS = ROOT / "tasks"
STAGES = ("ingest", "attribute", "synthesize", "curate", "respond", "publish", "evaluate")
BELOW = {  # package -> the packages of tasks/ it may import besides itself
    "core": set(),
    "llm": {"core"},
    "shards": {"core", "llm"},
    "sample": set(),
    **{stage: {"core", "llm", "shards", "sample"} for stage in STAGES},
}


def _imports(path: Path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append(node.module)
    return found


def test_every_package_of_tasks_has_a_layer():
    packages = {p.name for p in TASKS.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    assert packages <= set(BELOW), f"no layer for {packages - set(BELOW)}: add it to BELOW"


@pytest.mark.parametrize("package", sorted(BELOW))
def test_imports_point_down(package):
    wrong = []
    for path in sorted((TASKS / package).rglob("*.py")):
        for module in _imports(path):
            parts = module.split(".")
            if parts[0] == "prefect" or parts[:2] == ["synthq", "flows"]:
                wrong.append(f"{path.relative_to(TASKS)} imports {module}")
            elif parts[:2] == ["synthq", "tasks"] and len(parts) > 2:
                target = parts[2]
                if target != package and target not in BELOW[package]:
                    wrong.append(f"{path.relative_to(TASKS)} imports {module}")
    assert not wrong, "\n".join(wrong)


def test_code_imports_the_installed_names():
    """flows/ and tasks/ install as synthq.flows and synthq.tasks. A bare `tasks.x` import
    still works from a checkout's folder (it is on sys.path in tests), but not once installed,
    and it would load a second copy of the module beside synthq.tasks.x."""
    wrong = []
    for folder in ("flows", "tasks", "tests", "bench"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            wrong += [f"{path.relative_to(ROOT)} imports {m}" for m in _imports(path) if m.split(".")[0] in ("flows", "tasks")]
    assert not wrong, "import synthq.flows... and synthq.tasks...:\n" + "\n".join(wrong)
