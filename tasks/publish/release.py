"""Writing a release: releases/<name>/v<N>/ with Parquet data, dataset card, stats, config.

The queries are in data/ (the `queries` subset, the default); training subsets (sft,
preferences, see subsets.py) each have a folder of their own, declared in the card's
`configs:` so `datasets.load_dataset(release, "sft")` finds them.

Versions only grow and are never overwritten: the release is assembled in a temp folder
and moved into place once complete, then recorded in the catalog.
"""

from __future__ import annotations

import json
import re
import subprocess
import uuid
from collections import Counter
from collections.abc import Callable
from importlib import metadata
from pathlib import Path
from urllib.parse import urlsplit

import pyarrow as pa
import pyarrow.parquet as pq
import yaml

from synthq.tasks.core.errors import LakeError
from synthq.tasks.core.embeddings import embed
from synthq.tasks.core.lake import Lake
from synthq.tasks.core.neardup import ReleaseIndex
from synthq.tasks.publish import catalog
from synthq.tasks.publish.card import render_card

DATA_FILE = "train-00000-of-00001.parquet"

def versions(lake: Lake, name: str) -> list[int]:
    folder = lake.path("releases", name)
    if not lake.fs.exists(folder):
        return []
    found = (re.fullmatch(r"v(\d+)", p.rstrip("/").rsplit("/", 1)[-1]) for p in lake.fs.ls(folder, detail=False))
    return sorted(int(m.group(1)) for m in found if m)


def code_version() -> str:
    """synthq's version, plus the git commit when it runs from a checkout."""
    version = metadata.version("synthq")
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=Path(__file__).parent, capture_output=True, text=True, timeout=5
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        commit = ""
    return f"{version}+g{commit}" if commit else version


def _diff_with_parent(lake: Lake, name: str, parent: int | None, data: pa.Table) -> dict:
    if not parent:
        return {"added": data.num_rows, "removed": 0}
    before = set(read_release(lake, name, parent, ["id"]).column("id").to_pylist())
    now = set(data.column("id").to_pylist())
    return {"added": len(now - before), "removed": len(before - now)}


def sources(urls: list[str], top: int = 20) -> dict:
    """Rows per source site (host of the document URL; local files count as one source)."""
    hosts = Counter(urlsplit(u).hostname or "local files" for u in urls)
    return {"sites": len(hosts), "top": dict(hosts.most_common(top))}


def release_stats(data: pa.Table, stages: dict[str, dict], parent: int | None, num_bytes: int) -> dict:
    scores = data.column("score_total").to_pylist()
    return {
        "rows": data.num_rows,
        "bytes": num_bytes,
        "documents": len(set(data.column("document_id").to_pylist())),
        "sources": sources(data.column("document_url").to_pylist()),
        "models": sorted(set(data.column("model").to_pylist())),
        "prompt_versions": sorted(set(data.column("prompt_version").to_pylist())),
        "score_mean": sum(scores) / len(scores) if scores else 0.0,
        "score_histogram": dict(sorted(Counter(scores).items())),
        "stages": stages,
        "parent": f"v{parent}" if parent else None,
    }


def _histogram(values: list[float]) -> dict[str, int]:
    return {f"{k:g}": v for k, v in sorted(Counter(round(x * 2) / 2 for x in values).items())}


def respond_stats(subsets: dict[str, pa.Table]) -> dict:
    """Per training subset: the judge, the pair rule and the score distributions (scores
    rounded to halves)."""
    out = {}
    for name, tbl in subsets.items():
        rows = tbl.to_pylist()
        if name.startswith("sft"):
            out[name] = {"judges": sorted({r["judge"] for r in rows}), "score_histogram": _histogram([r["score"] for r in rows])}
        else:
            margins = [r["score_chosen"] - r["score_rejected"] for r in rows]
            out[name] = {
                "judges": sorted({r["judge"] for r in rows}), "rules": sorted({r["rule"] for r in rows}),
                "chosen_histogram": _histogram([r["score_chosen"] for r in rows]),
                "rejected_histogram": _histogram([r["score_rejected"] for r in rows]),
                "mean_margin": sum(margins) / len(margins) if margins else None,
            }
    return out


def read_release(lake: Lake, name: str, version: int, columns: list[str] | None = None) -> pa.Table:
    with lake.fs.open(lake.path("releases", name, f"v{version}", "data", DATA_FILE), "rb") as f:
        return pq.read_table(f, columns=columns)


def index_releases(lake: Lake, name: str, index: ReleaseIndex) -> int:
    """Add to the release index every published version it lacks (their new rows only);
    returns the rows embedded. Run after each publish; also rebuilds a deleted index."""
    added = 0
    for version in versions(lake, name):
        if version in index.versions:
            continue
        rows = read_release(lake, name, version, ["id", "query"]).to_pylist()
        known = index.ids()
        new = [r for r in rows if r["id"] not in known]
        index.add(version, [r["id"] for r in new], embed([r["query"] for r in new], index.embedder))
        added += len(new)
    return added


def publish(
    lake: Lake, name: str, data: pa.Table, stages: dict[str, dict], config: dict, config_digest: str,
    *, count_tokens: Callable[[str], int] | None = None, index: ReleaseIndex | None = None,
    subsets: dict[str, pa.Table] | None = None, missing: list[dict] = (),
) -> dict:
    """Write the next version of `name`; returns its stats with `version` and `path`.

    `count_tokens` (the model's tokenizer) gives the release's query tokens for the catalog;
    `index` is the release index that curation dedups against, brought up to date here;
    `subsets` are the training subsets (name -> table), each written to its own folder;
    `missing` the failed upstream shards of a partial release (publish.allow_partial)."""
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", name):
        raise LakeError(f"Release name '{name}' must be letters, digits, '.', '_' or '-'.")
    if data.num_rows == 0:
        raise LakeError("Nothing to publish: curation kept no instruction (see the curate report).")
    existing = versions(lake, name)
    parent = existing[-1] if existing else None
    version = (parent or 0) + 1
    staging = lake.path("releases", name, f".staging-{uuid.uuid4().hex}")
    target = lake.path("releases", name, f"v{version}")
    lake.write_table(f"{staging}/data/{DATA_FILE}", data)
    num_bytes = lake.fs.size(f"{staging}/data/{DATA_FILE}")
    stats = release_stats(data, stages, parent, num_bytes)
    stats["since_parent"] = _diff_with_parent(lake, name, parent, data)
    stats["code_version"] = code_version()
    stats["tokens"] = sum(map(count_tokens, data.column("query").to_pylist())) if count_tokens else None
    shapes = {}  # subset -> (schema, rows, bytes), for the card's header
    for subset, tbl in (subsets or {}).items():
        lake.write_table(f"{staging}/{subset}/{DATA_FILE}", tbl)
        shapes[subset] = (tbl.schema, tbl.num_rows, lake.fs.size(f"{staging}/{subset}/{DATA_FILE}"))
    stats["subsets"] = {"queries": data.num_rows, **{k: t.num_rows for k, t in (subsets or {}).items()}}
    stats["respond"] = respond_stats(subsets or {})
    stats["missing_shards"] = [{"shard": f"{m['dataset']}/{m['shard']}", "error": m["error"]} for m in missing]
    samples = data.slice(0, 3).to_pylist()
    card = render_card(name, f"v{version}", data.schema, stats, config, samples, shapes)
    lake.write_bytes(f"{staging}/README.md", card.encode())
    lake.write_bytes(f"{staging}/stats.json", json.dumps(stats, indent=2).encode())
    lake.write_bytes(f"{staging}/config.yaml", yaml.safe_dump(config, sort_keys=False).encode())
    if lake.fs.exists(target):
        lake.fs.rm(staging, recursive=True)
        raise LakeError(f"Release {name}/v{version} appeared while publishing: another publish ran at once. Retry.")
    lake.fs.mv(staging, target, recursive=True)
    with catalog.local_catalog(lake, write=True) as path:
        catalog.record(
            path, name=name, version=version, release_path=target,
            rows=data.num_rows, documents=stats["documents"], tokens=stats["tokens"], parent=parent,
            config_digest=config_digest, missing_shards=[m["shard"] for m in stats["missing_shards"]],
        )
    if index is not None:
        stats["indexed"] = index_releases(lake, name, index)
    return {**stats, "name": name, "version": version, "path": target}
