"""The scaling view: each benchmark's score against release size, with a log-linear trend.

The trend is `score = a + b * log10(rows)` fitted by least squares per benchmark and metric:
`b` is the gain per tenfold more data, the figure a user of the factory wants to extend.
Points are the results users attached to releases and the models synthq trained itself (at
the rows they trained on); the base model's own score is drawn as a line (the curve's start),
and smoke runs (a limited benchmark, a short training) are drawn hollow and kept out of the trend.
"""

from __future__ import annotations

import tempfile
from collections import defaultdict
from pathlib import Path

import numpy as np

from synthq.tasks.core.lake import Lake


def series(points: list[dict]) -> dict[str, list[dict]]:
    """'benchmark / metric' -> its points, ordered by release size."""
    out: dict[str, list[dict]] = defaultdict(list)
    for p in points:
        out[f"{p['benchmark']} / {p['metric']}"].append(p)
    return dict(out)


def counted(points: list[dict]) -> list[dict]:
    """The points a trend is fitted on: trained on some rows, and not smoke."""
    return [p for p in points if p["rows"] > 0 and not p.get("smoke")]


def label(p: dict) -> str:
    if not p["rows"]:
        return "base model"
    share = f" ({p['fraction']:g})" if p.get("fraction", 1.0) < 1 else ""
    return f"{p['name'] + '/' if p.get('name') else ''}v{p['version']}{share}"


def trend(points: list[dict]) -> tuple[float, float] | None:
    """(intercept, gain per 10x rows) over the counted points, or None with fewer than two distinct sizes."""
    points = counted(points)
    x = np.log10([p["rows"] for p in points]) if points else np.array([])
    if len(set(x.tolist())) < 2:
        return None
    slope, intercept = np.polyfit(x, [p["value"] for p in points], 1)
    return float(intercept), float(slope)


def table_rows(points: list[dict]) -> list[dict]:
    """One row per point, grouped by benchmark metric; the last of each group carries the trend."""
    rows = []
    for name, pts in series(points).items():
        fit = trend(pts)
        for i, p in enumerate(pts):
            kind = "baseline" if not p["rows"] else ("trained" if p.get("trained") else "attached") + (", smoke" if p.get("smoke") else "")
            rows.append({
                "benchmark / metric": name, "release": label(p), "rows": p["rows"], "score": round(p["value"], 4), "kind": kind,
                "gain per 10x rows": round(fit[1], 4) if fit and i == len(pts) - 1 else None,
            })
    return rows


def plot(points: list[dict], out: str | Path, title: str = "Benchmark score vs. dataset size") -> Path:
    """Write a PNG: one panel per benchmark metric, log-x, points labelled by version, trend line."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    groups = series(points)
    cols = min(3, max(1, len(groups)))
    rows = -(-len(groups) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(5 * cols, 3.8 * rows), squeeze=False)
    for ax, (name, pts) in zip(axes.flat, groups.items()):
        _panel(ax, pts)
        ax.set_title(name, fontsize=10)
        ax.set_xlabel("release rows")
        ax.set_ylabel("score")
        ax.grid(True, which="both", alpha=0.3)
    for ax in list(axes.flat)[len(groups):]:
        ax.axis("off")
    fig.suptitle(title)
    fig.tight_layout()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def _panel(ax, pts: list[dict]) -> None:
    """One benchmark metric: counted points, smoke points hollow, the base model as a line, the trend."""
    real, smoke = counted(pts), [p for p in pts if p["rows"] > 0 and p.get("smoke")]
    for group, style in ((real, {"zorder": 3}), (smoke, {"facecolors": "none", "edgecolors": "grey", "zorder": 3, "label": "smoke run (not in the trend)"})):
        if group:
            ax.scatter([p["rows"] for p in group], [p["value"] for p in group], **style)
    for p in real + smoke:
        ax.annotate(label(p).split("/", 1)[-1], (p["rows"], p["value"]), textcoords="offset points", xytext=(4, 4), fontsize=8)
    for p in pts:
        if not p["rows"]:
            ax.axhline(p["value"], ls=":", color="grey", label=f"base model {p['value']:.3g}" + (" (smoke)" if p.get("smoke") else ""))
    fit = trend(pts)
    if fit:
        xs = [p["rows"] for p in real]
        grid = np.logspace(np.log10(min(xs)), np.log10(max(xs)), 50)
        ax.plot(grid, fit[0] + fit[1] * np.log10(grid), "--", label=f"{fit[1]:+.3g} per 10x rows")
    if real or smoke:
        ax.set_xscale("log")
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=8)


def plot_into_lake(lake: Lake, points: list[dict], name: str | None = None) -> str:
    """Draw the plot into the lake (releases/scaling[-<name>].png, written atomically); its path."""
    target = lake.path("releases", f"scaling-{name}.png" if name else "scaling.png")
    with tempfile.TemporaryDirectory() as tmp:
        lake.write_bytes(target, plot(points, Path(tmp) / "scaling.png").read_bytes())
    return target
