"""Reading downstream benchmark results to attach to a release.

Three formats are understood, detected from the content:
- lm-evaluation-harness results JSON: `{"results": {task: {"metric,filter": value, ...}}}`;
- AlpacaEval leaderboard CSV: one row per model, with `win_rate` and/or
  `length_controlled_winrate` columns (the model name in the first column);
- plain CSV or JSON with `benchmark`, `metric`, `value` and optionally `model` (JSON: a list of
  such objects, or `{"results": [...]}`).
Anything else is an `InputError` that names the formats.
"""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path

from synthq.tasks.core.errors import InputError

FORMATS = (
    "an lm-evaluation-harness results JSON, an AlpacaEval leaderboard CSV, or a CSV/JSON with "
    "benchmark, metric, value (and optionally model) columns"
)
ALPACA_METRICS = ("length_controlled_winrate", "win_rate")


def _number(value) -> float | None:
    try:
        x = float(value)
    except (TypeError, ValueError):
        return None
    return x if math.isfinite(x) else None


def _lm_eval(data: dict) -> list[dict]:
    model = data.get("model_name") or (data.get("config") or {}).get("model_args") or ""
    rows = []
    for task, metrics in data["results"].items():
        for key, value in metrics.items():
            metric, _, filt = key.partition(",")
            if metric.endswith("_stderr") or metric == "alias" or _number(value) is None:
                continue
            name = metric if filt in ("", "none") else f"{metric},{filt}"
            rows.append({"benchmark": task, "metric": name, "value": _number(value), "model": str(model)})
    return rows


def _plain(records: list, where: str) -> list[dict]:
    rows = []
    for n, rec in enumerate(records, start=1):
        if not isinstance(rec, dict) or not {"benchmark", "metric", "value"} <= rec.keys():
            raise InputError(f"{where}, entry {n}: needs benchmark, metric and value; got {rec!r:.120}")
        value = _number(rec["value"])
        if value is None:
            raise InputError(f"{where}, entry {n}: value {rec['value']!r} is not a number")
        rows.append({"benchmark": str(rec["benchmark"]), "metric": str(rec["metric"]), "value": value, "model": str(rec.get("model") or "")})
    return rows


def _alpaca(table: list[dict], header: list[str]) -> list[dict]:
    name_col = header[0]
    rows = []
    for rec in table:
        for metric in ALPACA_METRICS:
            value = _number(rec.get(metric))
            if value is not None:
                rows.append({"benchmark": "alpaca_eval", "metric": metric, "value": value, "model": rec.get(name_col) or ""})
    return rows


def parse_results(path: str | Path) -> list[dict]:
    """(benchmark, metric, value, model) rows from a results file; raises on anything else."""
    p = Path(path)
    if not p.is_file():
        raise InputError(f"Results file '{p}' does not exist.")
    text = p.read_text(encoding="utf-8", errors="replace")
    rows: list[dict] = []
    if p.suffix.lower() == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as e:
            raise InputError(f"Results file '{p}' is not valid JSON ({e.msg}, line {e.lineno}).") from e
        if isinstance(data, dict) and isinstance(data.get("results"), dict):
            rows = _lm_eval(data)
        elif isinstance(data, dict) and isinstance(data.get("results"), list):
            rows = _plain(data["results"], str(p))
        elif isinstance(data, list):
            rows = _plain(data, str(p))
        else:
            raise InputError(f"Results file '{p}' is JSON of an unknown shape: give {FORMATS}.")
    elif p.suffix.lower() == ".csv":
        reader = csv.DictReader(io.StringIO(text))
        header = reader.fieldnames or []
        table = list(reader)
        if {"benchmark", "metric", "value"} <= set(header):
            rows = _plain(table, str(p))
        elif any(m in header for m in ALPACA_METRICS):
            rows = _alpaca(table, header)
        else:
            raise InputError(f"Results file '{p}' has columns {header[:8]}: give {FORMATS}.")
    else:
        raise InputError(f"Results file '{p}' must be .json or .csv: give {FORMATS}.")
    if not rows:
        raise InputError(f"Results file '{p}' holds no numeric result.")
    return rows
