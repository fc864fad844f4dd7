"""Writing a release: releases/<name>/v<N>/ with Parquet data, dataset card, stats, config.

The queries are in data/ (the `queries` subset, the default); training subsets (sft,
preferences, see subsets.py) each have a folder of their own, declared in the card's
`configs:` so `datasets.load_dataset(release, "sft")` finds them.

Versions only grow and are never overwritten: the release is assembled in a temp folder
and moved into place once complete, then recorded in the catalog.
"""

from __future__ import annotations

import json
import logging
import re
import subprocess
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import yaml

from synthq.tasks.core.errors import LakeError
from synthq.tasks.core.embeddings import dimension, embed
from synthq.tasks.core.idset import IdPositions
from synthq.tasks.core.lake import Lake
from synthq.tasks.core.neardup import scratch_array
from synthq.tasks.core.release_index import ReleaseIndex
from synthq.tasks.core.records import PAIRS, SFT, VERIFIABLE
from synthq.tasks.publish import catalog
from synthq.tasks.publish.card import render_card

DATA_FILE = "train-00000-of-00001.parquet"
SUBSET_SCHEMAS = {"sft": SFT, "preferences": PAIRS, "verifiable": VERIFIABLE}  # an empty subset's file still has its columns
log = logging.getLogger("synthq.publish")


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


Tables = pa.Table | Iterable[pa.Table]  # one table, or its parts (a dataset's shards) read one at a time


def _parts(data: Tables) -> Iterator[pa.Table]:
    return iter([data]) if isinstance(data, pa.Table) else iter(data)


def write_parts(lake: Lake, path: str, parts: Tables, schema: pa.Schema | None = None) -> tuple[pa.Schema, int, int]:
    """Write the parts one after another into one Parquet file (as its row groups), so at most
    one part is in memory; returns its schema (the first part's unless given), rows and bytes.
    The file is inside a release's staging folder, which is moved into place once complete."""
    lake.fs.makedirs(path.rsplit("/", 1)[0], exist_ok=True)
    writer, rows = None, 0
    with lake.fs.open(path, "wb") as f:
        for tbl in _parts(parts):
            if writer is None:
                schema = schema or tbl.schema
                writer = pq.ParquetWriter(f, schema, compression="zstd")
            if tbl.num_rows:
                writer.write_table(tbl.select(schema.names).cast(schema))
                rows += tbl.num_rows
        if writer is None:  # no part at all: an empty file of the given schema
            writer = pq.ParquetWriter(f, schema, compression="zstd")
        writer.close()
    return schema, rows, lake.fs.size(path)


@dataclass
class QueryTally:
    """What a release's stats say of its queries, gathered part by part."""

    count_tokens: Callable[[str], int] | None = None
    ids: list = field(default_factory=list)  # each part's ids, Arrow: 20 bytes a row, not a Python string in a set
    documents: list = field(default_factory=list)  # each part's distinct document ids, Arrow
    hosts: Counter = field(default_factory=Counter)
    models: set = field(default_factory=set)
    prompt_versions: set = field(default_factory=set)
    scores: Counter = field(default_factory=Counter)
    tokens: int = 0
    samples: list = field(default_factory=list)

    def __call__(self, parts: Tables) -> Iterator[pa.Table]:
        for tbl in _parts(parts):
            col = tbl.column
            self.ids.extend(col("id").chunks)
            self.documents.append(pc.unique(col("document_id")))
            self.hosts.update(urlsplit(u).hostname or "local files" for u in col("document_url").to_pylist())
            self.models.update(col("model").to_pylist())
            self.prompt_versions.update(col("prompt_version").to_pylist())
            self.scores.update(col("score_total").to_pylist())
            if self.count_tokens:
                self.tokens += sum(map(self.count_tokens, col("query").to_pylist()))
            self.samples += tbl.slice(0, 3 - len(self.samples)).to_pylist() if len(self.samples) < 3 else []
            yield tbl

    def stats(self, stages: dict[str, dict], parent: int | None, num_bytes: int) -> dict:
        rows = sum(self.scores.values())
        return {
            "rows": rows,
            "bytes": num_bytes,
            "documents": len(pc.unique(pa.chunked_array(self.documents, pa.string()))),
            "sources": {"sites": len(self.hosts), "top": dict(self.hosts.most_common(20))},
            "models": sorted(self.models),
            "prompt_versions": sorted(self.prompt_versions),
            "score_mean": sum(k * v for k, v in self.scores.items()) / rows if rows else 0.0,
            "score_histogram": dict(sorted(self.scores.items())),
            "stages": stages,
            "parent": f"v{parent}" if parent else None,
        }


def _histogram(values: Counter) -> dict[str, int]:
    return {f"{k:g}": v for k, v in sorted(values.items())}


def _half(x: float) -> float:
    return round(x * 2) / 2


@dataclass
class SubsetTally:
    """Per training subset: the judge, the pair rule and the score distributions (scores
    rounded to halves), gathered part by part."""

    name: str
    judges: set = field(default_factory=set)
    rules: set = field(default_factory=set)
    scores: Counter = field(default_factory=Counter)  # sft: the answer's score; pairs: the chosen one's
    rejected: Counter = field(default_factory=Counter)
    margin_sum: float = 0.0  # of chosen - rejected, over the pairs

    def __call__(self, parts: Tables) -> Iterator[pa.Table]:
        for tbl in _parts(parts):
            if self.name == "verifiable":  # no judge: the constraints' kinds are its distribution
                self.scores.update(c["kind"] for row in tbl.column("constraints").to_pylist() for c in row)
                yield tbl
                continue
            self.judges.update(tbl.column("judge").to_pylist())
            if self.name.startswith("sft"):
                self.scores.update(map(_half, tbl.column("score").to_pylist()))
            else:
                chosen, rejected = tbl.column("score_chosen").to_pylist(), tbl.column("score_rejected").to_pylist()
                self.rules.update(tbl.column("rule").to_pylist())
                self.scores.update(map(_half, chosen))
                self.rejected.update(map(_half, rejected))
                self.margin_sum += sum(c - r for c, r in zip(chosen, rejected))
            yield tbl

    def stats(self) -> dict:
        if self.name == "verifiable":
            return {"judges": [], "constraint_kinds": dict(sorted(self.scores.items()))}
        if self.name.startswith("sft"):
            return {"judges": sorted(self.judges), "score_histogram": _histogram(self.scores)}
        return {
            "judges": sorted(self.judges), "rules": sorted(self.rules),
            "chosen_histogram": _histogram(self.scores), "rejected_histogram": _histogram(self.rejected),
            "mean_margin": self.margin_sum / sum(self.scores.values()) if self.scores else None,
        }


def release_data(lake: Lake, name: str, version: int) -> str:
    """The path of a release version's data file."""
    return lake.path("releases", name, f"v{version}", "data", DATA_FILE)


def read_release(lake: Lake, name: str, version: int, columns: list[str] | None = None) -> pa.Table:
    with lake.fs.open(release_data(lake, name, version), "rb") as f:
        return pq.read_table(f, columns=columns)


def head(lake: Lake, path: str, n: int) -> list[dict]:
    """The first n rows of a Parquet file, reading no more than its first row group."""
    with lake.fs.open(path, "rb") as f:
        return next(pq.ParquetFile(f).iter_batches(batch_size=n), pa.RecordBatch.from_pylist([])).to_pylist()


EMBED_BATCH = 8_192  # release rows read and embedded at a time by index_releases


def index_releases(lake: Lake, name: str, index: ReleaseIndex, known: Iterable[tuple[np.ndarray, np.ndarray]] = ()) -> dict[str, int]:
    """Add to the release index every published version it lacks (their new rows only).
    Run after each publish; also rebuilds a deleted index. A new row's vector comes from
    `known` when one of its (ids, vectors) parts holds it (curation's screened files, read
    again for each version: the vectors `screen` computed with the same embedder), else it
    is embedded here, batch by batch.
    What is held is the new rows' ids (their vectors are gathered in a mapped scratch file)
    and the release index's new segment, never the rows. Returns the rows indexed and, of them, the
    rows embedded."""
    indexed = embedded = 0
    for version in versions(lake, name):
        if version in index.versions:
            continue
        ids = read_release(lake, name, version, ["id"]).column("id").combine_chunks()
        ids = ids.filter(pa.array(~index.released(ids)))
        where = IdPositions(ids)  # searched per screened file and per batch, built once
        vecs, found = None, np.zeros(len(ids), dtype=bool)
        for part_ids, part_vecs in known if len(ids) else ():  # one screened file at a time
            at = where.find(part_ids)
            mine = at >= 0
            if mine.any():
                vecs = scratch_array((len(ids), part_vecs.shape[1]), np.float32) if vecs is None else vecs
                vecs[at[mine]], found[at[mine]] = part_vecs[mine], True
        if vecs is None:
            vecs = scratch_array((len(ids), index.meta["dim"] or dimension(index.embedder)), np.float32)
        if not found.all():
            with lake.fs.open(release_data(lake, name, version), "rb") as f:
                for batch in pq.ParquetFile(f).iter_batches(batch_size=EMBED_BATCH, columns=["id", "query"]):
                    at = where.find(batch.column("id"))
                    todo = at >= 0
                    todo[todo] = ~found[at[todo]]  # new to the index and not screened
                    if todo.any():
                        vecs[at[todo]] = embed(batch.filter(pa.array(todo)).column("query").to_pylist(), index.embedder)
                        embedded += int(todo.sum())
        index.add(version, ids, vecs)
        indexed += len(ids)
    return {"indexed": indexed, "embedded": embedded}


def _outside(ids: pa.Array, others: pa.Array) -> int:
    """How many of the (distinct) ids are not among the others."""
    return len(ids) - (pc.sum(pc.is_in(ids, value_set=others)).as_py() or 0)


def _record(path: Path, name: str, version: int, release_path: str, stats: dict) -> None:
    catalog.record(
        path, name=name, version=version, release_path=release_path,
        rows=stats["rows"], documents=stats["documents"], tokens=stats["tokens"],
        parent=int(stats["parent"][1:]) if stats.get("parent") else None,
        config_digest=stats.get("config_digest", ""), missing_shards=[m["shard"] for m in stats["missing_shards"]],
    )


def catalog_unrecorded(lake: Lake, name: str, existing: list[int]) -> None:
    """Record in the catalog the published versions it lacks (a publish stopped after moving
    its release into place, before writing its catalog row), from their stats.json."""
    with catalog.local_catalog(lake) as path:
        known = {r["version"] for r in catalog.releases(path, name)}
    missing = [v for v in existing if v not in known and lake.exists("releases", name, f"v{v}", "stats.json")]
    if missing:
        with catalog.local_catalog(lake, write=True) as path:
            for v in missing:
                folder = lake.path("releases", name, f"v{v}")
                _record(path, name, v, folder, json.loads(lake.fs.cat_file(f"{folder}/stats.json")))
                log.warning("Release %s/v%d had no catalog row (its publish stopped before writing it): recorded now.", name, v)


def publish(
    lake: Lake, name: str, data: Tables, stages: dict[str, dict], config: dict, config_digest: str,
    *, count_tokens: Callable[[str], int] | None = None, index: ReleaseIndex | None = None,
    subsets: dict[str, Tables] | None = None, missing: list[dict] = (), known: Iterable[tuple[np.ndarray, np.ndarray]] = (),
) -> dict:
    """Write the next version of `name`; returns its stats with `version` and `path`.

    `data` (the queries) and each of `subsets` (the training subsets, name -> rows, each written
    to its own folder) are a table or its parts, written part by part: publishing holds one part
    at a time, plus the ids it counts. `count_tokens` (the model's tokenizer) gives the release's
    query tokens for the catalog; `index` is the release index that curation dedups against,
    brought up to date here, with the `known` vectors where they hold a row (see
    `index_releases`); `missing` the failed upstream shards of a partial release
    (publish.allow_partial)."""
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", name):
        raise LakeError(f"Release name '{name}' must be letters, digits, '.', '_' or '-'.")
    existing = versions(lake, name)
    catalog_unrecorded(lake, name, existing)
    for left in lake.sweep_stale(f"releases/{name}"):
        log.warning("Removed %s/%s: an unfinished publish (stopped before its release moved into place).", name, left)
    parent = existing[-1] if existing else None
    version = (parent or 0) + 1
    staging = lake.path("releases", name, f".staging-{uuid.uuid4().hex}")
    target = lake.path("releases", name, f"v{version}")
    tally = QueryTally(count_tokens)
    schema, rows, num_bytes = write_parts(lake, f"{staging}/data/{DATA_FILE}", tally(data), data.schema if isinstance(data, pa.Table) else None)
    if rows == 0:
        lake.fs.rm(staging, recursive=True)
        raise LakeError("Nothing to publish: curation kept no instruction (see the curate report).")
    stats = tally.stats(stages, parent, num_bytes)
    now = pc.unique(pa.chunked_array(tally.ids, pa.string()))
    before = pc.unique(read_release(lake, name, parent, ["id"]).column("id")) if parent else pa.array([], pa.string())
    stats["since_parent"] = {"added": _outside(now, before), "removed": _outside(before, now)}
    stats["code_version"] = code_version()
    stats["config_digest"] = config_digest
    stats["tokens"] = tally.tokens if count_tokens else None
    shapes, respond = {}, {}  # subset -> (schema, rows, bytes) for the card's header; -> its stats
    for subset, parts in (subsets or {}).items():
        sub = SubsetTally(subset)
        shapes[subset] = write_parts(lake, f"{staging}/{subset}/{DATA_FILE}", sub(parts), SUBSET_SCHEMAS.get(subset.split("_")[0]))
        respond[subset] = sub.stats()
    stats["subsets"] = {"queries": rows, **{k: shape[1] for k, shape in shapes.items()}}
    stats["respond"] = respond
    stats["missing_shards"] = [{"shard": f"{m['dataset']}/{m['shard']}", "error": m["error"]} for m in missing]
    card = render_card(name, f"v{version}", schema, stats, config, tally.samples, shapes)
    lake.write_bytes(f"{staging}/README.md", card.encode())
    lake.write_bytes(f"{staging}/stats.json", json.dumps(stats, indent=2).encode())
    lake.write_bytes(f"{staging}/config.yaml", yaml.safe_dump(config, sort_keys=False).encode())
    if lake.fs.exists(target):
        lake.fs.rm(staging, recursive=True)
        raise LakeError(f"Release {name}/v{version} appeared while publishing: another publish ran at once. Retry.")
    lake.fs.mv(staging, target, recursive=True)
    with catalog.local_catalog(lake, write=True) as path:
        _record(path, name, version, target, stats)
    if index is not None:
        stats.update(index_releases(lake, name, index, known))
    return {**stats, "name": name, "version": version, "path": target}
