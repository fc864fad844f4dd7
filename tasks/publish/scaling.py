"""The scaling view: each benchmark's score against release size, with a log-linear trend.

The trend is `score = a + b * log10(rows)` fitted by least squares per benchmark and metric:
`b` is the gain per tenfold more data, the figure a user of the factory wants to extend.
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


def trend(points: list[dict]) -> tuple[float, float] | None:
    """(intercept, gain per 10x rows), or None with fewer than two distinct sizes."""
    x = np.log10([p["rows"] for p in points])
    if len(set(x.tolist())) < 2:
        return None
    slope, intercept = np.polyfit(x, [p["value"] for p in points], 1)
    return float(intercept), float(slope)


def table_rows(points: list[dict]) -> list[dict]:
    """One row per point, grouped by benchmark metric; the last of each group carries the trend."""
    rows = []
    for label, pts in series(points).items():
        fit = trend(pts)
        for i, p in enumerate(pts):
            rows.append({
                "benchmark / metric": label, "release": f"{p['name']}/v{p['version']}", "rows": p["rows"],
                "score": round(p["value"], 4), "gain per 10x rows": round(fit[1], 4) if fit and i == len(pts) - 1 else None,
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
    for ax, (label, pts) in zip(axes.flat, groups.items()):
        xs, ys = [p["rows"] for p in pts], [p["value"] for p in pts]
        ax.scatter(xs, ys, zorder=3)
        for p in pts:
            ax.annotate(f"v{p['version']}", (p["rows"], p["value"]), textcoords="offset points", xytext=(4, 4), fontsize=8)
        fit = trend(pts)
        if fit:
            grid = np.logspace(np.log10(min(xs)), np.log10(max(xs)), 50)
            ax.plot(grid, fit[0] + fit[1] * np.log10(grid), "--", label=f"{fit[1]:+.3g} per 10x rows")
            ax.legend(fontsize=8)
        ax.set_xscale("log")
        ax.set_title(label, fontsize=10)
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


def plot_into_lake(lake: Lake, points: list[dict], name: str | None = None) -> str:
    """Draw the plot into the lake (releases/scaling[-<name>].png, written atomically); its path."""
    target = lake.path("releases", f"scaling-{name}.png" if name else "scaling.png")
    with tempfile.TemporaryDirectory() as tmp:
        lake.write_bytes(target, plot(points, Path(tmp) / "scaling.png").read_bytes())
    return target
