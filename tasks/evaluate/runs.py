"""What one evaluation runs, and the ledger rows it leaves.

A run is the base model scored as it is (the baseline), or a model trained on a share of a
release and scored. Each run is keyed by everything that produced it: the release's
fingerprint and the share (not for the baseline), the base model, the training settings, the
benchmarks (with the sha256 of their prompts) and the scoring settings. The same key again
finds its rows in the ledger and runs nothing; a model already trained under the key (its
folder's `_done`) is scored without training again.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

from synthq.tasks.core.evaluate_config import EvaluateConfig
from synthq.tasks.core.packaged import sha256_of
from synthq.tasks.core.prompt_files import file_name
from synthq.tasks.evaluate.benchmarks import Benchmark


@dataclass(frozen=True)
class Run:
    key: str
    fraction: float  # 0: the baseline (the base model itself)

    @property
    def baseline(self) -> bool:
        return self.fraction == 0


def base_model_id(folder: str) -> str:
    """The base model by its content (config and weight files' sizes), not by where it lies."""
    parts = [Path(folder, "config.json").read_text()]
    parts += [f"{p.name}:{p.stat().st_size}" for p in sorted(Path(folder).glob("*.safetensors"))]
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]


def scoring_settings(ev: EvaluateConfig) -> dict:
    return {"limit": ev.limit, "max_gen_toks": ev.max_gen_toks, "eval_batch_size": ev.eval_batch_size, "backend": ev.backend}


def training_settings(ev: EvaluateConfig) -> dict:
    return {**ev.train.model_dump(), "dpo": ev.dpo, "subset": ev.subset}


def plan(ev: EvaluateConfig, dataset: str, release_fingerprint: str, base_id: str, benchmarks: list[Benchmark]) -> list[Run]:
    """The baseline (when asked: once per dataset, base model and benchmark settings) and one run
    per share of the release, each with its key."""
    common = {"base": base_id, "benchmarks": [(b.name, b.data_sha256) for b in benchmarks], "scoring": scoring_settings(ev)}
    runs = [Run(_key({**common, "dataset": dataset}), 0.0)] if ev.baseline else []
    for f in ev.fractions:
        runs.append(Run(_key({**common, "release": release_fingerprint, "fraction": f, "training": training_settings(ev)}), f))
    return runs


def _key(parts: dict) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:16]


def decontaminated(release_config: dict, benchmark: Benchmark) -> bool:
    """Whether curation checked the release against this benchmark's prompts (curate.benchmarks
    names it, or holds a file with the same prompts)."""
    for source in (release_config.get("curate") or {}).get("benchmarks") or []:
        if source == benchmark.name or file_name(source) == benchmark.name:
            return True
        if benchmark.data_sha256 and os.path.isfile(source) and sha256_of(Path(source)) == benchmark.data_sha256:
            return True
    return False


def is_smoke(ev: EvaluateConfig, run: Run, steps: int) -> bool:
    """A limited benchmark, or (for a trained model) fewer steps than min_steps_for_ledger."""
    return ev.limit is not None or (not run.baseline and steps < ev.min_steps_for_ledger)


def ledger_rows(run: Run, release: tuple[str, int, str], ev: EvaluateConfig, trained: dict, scored: dict,
                benchmarks: list[Benchmark], release_config: dict, model_path: str, device: str) -> list[dict]:
    """One ledger row per benchmark metric of a run. `release` is (name, version, fingerprint);
    `trained` the training's summary (steps, rows, tokens, seconds; zeros for the baseline)."""
    name, version, fingerprint = release
    by_name = {b.name: b for b in benchmarks}
    smoke = is_smoke(ev, run, trained["steps"])
    training = {} if run.baseline else training_settings(ev)
    return [{
        "run": run.key, "name": name, "version": 0 if run.baseline else version, "subset": ev.subset, "fraction": run.fraction,
        "rows": trained["rows"], "tokens": trained["tokens"], "release_fingerprint": "" if run.baseline else fingerprint,
        "base_model": ev.base_model, "model_path": model_path, "benchmark": r["benchmark"], "metric": r["metric"],
        "value": r["value"], "stderr": r["stderr"], "harness": scored["harness"], "data_sha256": by_name[r["benchmark"]].data_sha256,
        "limit": ev.limit, "generation": json.dumps(scoring_settings(ev), sort_keys=True), "training": json.dumps(training, sort_keys=True),
        "seed": ev.train.seed, "device": device, "seconds": trained["seconds"] + scored["seconds"], "smoke": int(smoke),
        # the base model saw none of the release: only a trained model can have learnt a benchmark from it
        "decontaminated": int(run.baseline or decontaminated(release_config, by_name[r["benchmark"]])),
    } for r in scored["rows"]]


def loss_markdown(history: list[dict], points: int = 12) -> str:
    """The loss curve as a short table (at most `points` steps) and a sparkline."""
    if not history:
        return "no training steps logged"
    bars = "▁▂▃▄▅▆▇█"
    low, high = min(h["loss"] for h in history), max(h["loss"] for h in history)
    spark = "".join(bars[int((h["loss"] - low) / (high - low or 1) * (len(bars) - 1))] for h in history[:: max(1, len(history) // 60)])
    picked = sorted(set(range(0, len(history), max(1, len(history) // points))) | {len(history) - 1})
    rows = "\n".join(f"| {history[i]['stage']} | {history[i]['step']} | {history[i]['loss']:.4f} |" for i in picked)
    return f"`{spark}`\n\n| stage | step | loss |\n|---|---|---|\n{rows}\n"


def report_markdown(release: str, report: list[tuple[str, list[dict], list[dict]]], unchecked: list[str]) -> str:
    """The evaluate flow's artifact: per run, its scores and (trained models) its loss curve."""
    parts = [f"## Evaluation of {release}\n"]
    if unchecked:
        parts.append(f"**Warning:** the release was not decontaminated against {', '.join(unchecked)} (curate.benchmarks): "
                     "its scores there may count prompts the model trained on.\n")
    for label, rows, history in report:
        smoke = " (smoke: not a real point)" if rows and rows[0]["smoke"] else ""
        head = rows[0] if rows else {}
        parts.append(f"### {label}{smoke}\n\nrows {head.get('rows', 0)}, tokens {head.get('tokens', 0)}, model `{head.get('model_path', '')}`\n")
        parts.append("| benchmark | metric | value | stderr |\n|---|---|---|---|\n" + "\n".join(
            f"| {r['benchmark']} | {r['metric']} | {r['value']:.4f} | {_number(r['stderr'])} |" for r in rows))
        if history:
            parts.append("\nLoss:\n\n" + loss_markdown(history))
    return "\n".join(parts) + "\n"


def _number(x: float | None) -> str:
    return "" if x is None else f"{x:.4f}"
