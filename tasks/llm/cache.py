"""A content-addressed cache in front of any engine, stored in the lake.

The key is a hash of what determines the output: the model, the full prompt (messages), the
JSON schema and every sampling setting (max tokens, temperature, frequency penalty, seed, and
the number of samples when a request asks for more than one; all its samples are one entry).
The request id does not enter it except through the per-request seed it derives, and ids
never carry a shard name, so a rerun with another shard size finds every earlier answer whose
prompt it rebuilds. A changed prompt has a new text, hence a new key: it misses (synthesis
prompts share a block chosen for a group of documents of the shard, so re-sharding that stage
regroups its documents and generates again).

Layout, so that a hundred million answers are about a thousand files, not a hundred million:

    cache/llm/pending/<scope>/<uuid>.parquet   one file per generated chunk (key, entry)
    cache/llm/parts/<2 hex>/run-<uuid>.parquet  compacted: a key range's entries sorted by key

Misses go to the engine in chunks and each chunk is one Parquet file written atomically
(temp file + rename) before the next one starts, so a crash or kill loses at most one chunk
of generation; many Ray workers can write at once. A writer's scope is its stage and shard:
a lookup reads the compacted runs of the partitions its keys fall in (only the row groups
whose key range holds one of them) and the pending chunks of its own scope, so a retried
shard finds what its killed attempt generated. `compact` (run by each LLM stage before and
after its shards) moves pending chunks into the partitions, one new sorted run per partition
touched, and merges a partition's small runs once it has more than `MAX_RUNS`. Results that
carry a transport error are not stored: they are retried next time.

Answers kept by earlier versions (one JSON file per entry, `cache/llm/<2 hex>/<key>.json`)
are still found; `compact` moves them into the partitions.
"""

from __future__ import annotations

import bisect
import hashlib
import json
import re
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from synthq.tasks.core.lake import Lake
from synthq.tasks.llm.engine import Engine, Request, Result, sample_id

FOLDER = "cache/llm"
PENDING, PARTS = f"{FOLDER}/pending", f"{FOLDER}/parts"
SCHEMA = pa.schema([("key", pa.string()), ("entry", pa.string())])
PREFIX = 2  # hex characters of the key naming its partition: 256 partitions, so a lookup reads
# at most 256 x MAX_RUNS small files whatever the cache's size, and the cache stays under about
# a thousand files (400,000 answers per partition at 100M: footers of 100 KB per 10M answers)
ROW_GROUP = 64  # entries per row group of a run: a lookup reads one group per key it finds
MAX_RUNS = 4  # runs a partition holds before all but its largest are merged
READERS = 8  # files a lookup reads at once (latency-bound on object stores)
COMPACT_BATCH = 100_000  # entries read from pending chunks at a time while compacting (a few hundred MB)
LEGACY = re.compile(r"^[0-9a-f]{2}$")


@dataclass
class CacheStats:
    hits: int = 0
    misses: int = 0
    stored: int = 0


class CachedEngine:
    """Wraps an engine; same protocol. `stats` counts hits and misses since creation. `scope`
    names the writer (a stage's shard): its pending chunks are read by its own lookups."""

    def __init__(self, inner: Engine, lake: Lake, model_key: str, chunk: int = 256, scope: str = "_"):
        self.inner, self.lake, self.model_key, self.chunk = inner, lake, model_key, max(1, chunk)
        self.scope = re.sub(r"[^A-Za-z0-9_.-]", "_", scope) or "_"
        self.stats = CacheStats()

    @property
    def model_name(self) -> str:
        return self.inner.model_name

    def key(self, req: Request) -> str:
        blob = json.dumps(
            {
                "model": self.model_key,
                "messages": req.messages,
                "schema": req.schema,
                "max_tokens": req.max_tokens,
                "temperature": req.temperature,
                "frequency_penalty": req.frequency_penalty,
                "seed": req.sampling_seed(),
                **({"n": req.n} if req.n > 1 else {}),  # keys of single-sample requests stay as they were
            },
            sort_keys=True,
            ensure_ascii=False,
        )
        return hashlib.sha256(blob.encode()).hexdigest()

    def generate(self, requests: list[Request]) -> list[Result]:
        keys = [self.key(r) for r in requests]
        found = lookup(self.lake, set(keys), self.scope)
        out: dict[str, Result] = {}
        missing: list[tuple[Request, str]] = []
        for req, key in zip(requests, keys):
            entry = found.get(key)
            if entry is None:
                missing.append((req, key))
            else:
                out[req.id] = _result(req.id, dict(entry))
        self.stats.hits += len(requests) - len(missing)
        self.stats.misses += len(missing)
        for start in range(0, len(missing), self.chunk):
            part = missing[start : start + self.chunk]
            by_id = {r.id: r for r in self.inner.generate([req for req, _ in part])}
            rows = {}
            for req, key in part:
                res = by_id.get(req.id) or Result(req.id, "", None, error="engine returned no result")
                out[req.id] = res
                if not res.error:
                    rows[key] = json.dumps(_entry(res), ensure_ascii=False)
            if rows:
                _write(self.lake, self.lake.path(PENDING, self.scope, f"{uuid.uuid4().hex}.parquet"), rows)
                self.stats.stored += len(rows)
        return [out[r.id] for r in requests]

    def report(self) -> dict:
        return asdict(self.stats)


def lookup(lake: Lake, keys: set[str], scope: str) -> dict[str, dict]:
    """key -> stored entry, for the keys the cache holds (unreadable files and entries are skipped:
    their requests are generated again)."""
    found: dict[str, dict] = {}
    if not keys:
        return found
    wanted = sorted(keys)
    by_part: dict[str, list[str]] = {}
    for k in wanted:
        by_part.setdefault(k[:PREFIX], []).append(k)
    runs = _runs(lake)
    jobs = [(path, wanted) for path in _files(lake, lake.path(PENDING, scope))]
    jobs += [(lake.path(PARTS, part, name), part_keys) for part, part_keys in by_part.items() for name, _ in runs.get(part, [])]
    with ThreadPoolExecutor(READERS) as pool:  # about one small read per key: overlapped (object stores, disks)
        for entries in pool.map(lambda job: _read_entries(lake, *job), jobs):
            for k, entry in entries.items():
                found.setdefault(k, entry)
    left = [k for k in wanted if k not in found]
    if left and _legacy_folders(lake):
        paths = [lake.path(FOLDER, k[:2], f"{k}.json") for k in left]
        raw = lake.fs.cat(paths, on_error="omit")
        for k, path in zip(left, paths):
            entry = _parse(raw.get(lake.fs._strip_protocol(path), b""))
            if entry is not None:
                found[k] = entry
    return found


def compact(lake: Lake) -> dict:
    """Move every pending chunk (and every entry of the one-file-per-entry layout) into the
    partitions: one new sorted run per partition touched, a partition's runs merged once it has
    more than MAX_RUNS. The run list (`parts/runs.json`) is rewritten after the runs it names
    are written and before the files they replace are deleted, so a crash at any point loses
    nothing (runs it does not name are left by a crash and deleted here). One compaction at a
    time per lake: two at once may each drop the other's new runs, whose answers are then
    generated again. Returns counts."""
    runs = _runs(lake)
    named = {lake.path(PARTS, part, name) for part, listed in runs.items() for name, _ in listed}
    if lake.exists(PARTS):
        stray = [p for p in lake.fs.find(lake.path(PARTS)) if p.rsplit("/", 1)[-1].startswith("run-") and p not in named]
        if stray:
            lake.fs.rm(stray)
    moved = files = rows_read = 0
    batch, tables = [], []
    pending = [p for scope in _dirs(lake, PENDING) for p in _files(lake, scope)]
    for n, path in enumerate(pending):
        batch.append(path)
        table = _read(lake, path)
        if table is not None:
            tables.append(table)
            rows_read += table.num_rows
        if n == len(pending) - 1 or rows_read >= COMPACT_BATCH:
            moved += _add_runs(lake, runs, tables)
            lake.fs.rm(batch)
            files += len(batch)
            batch, tables, rows_read = [], [], 0
    for folder in _legacy_folders(lake):
        paths = _files(lake, folder, ".json")
        raw = lake.fs.cat(paths, on_error="omit") if paths else {}
        rows = {}
        for path in paths:
            entry = _parse(raw.get(lake.fs._strip_protocol(path), b""))
            if entry is not None:
                rows[path.rsplit("/", 1)[-1][: -len(".json")]] = json.dumps(entry, ensure_ascii=False)
        moved += _add_runs(lake, runs, [_table(rows)])
        lake.fs.rm(folder, recursive=True)
        files += len(paths)
    merged = 0
    for part in [p for p, listed in runs.items() if len(listed) > MAX_RUNS]:
        merged += _merge(lake, runs, part)
    return {"entries": moved, "files_compacted": files, "runs_merged": merged}


def _add_runs(lake: Lake, runs: dict[str, list], tables: list[pa.Table]) -> int:
    """Write one run per partition the tables' keys fall in, then the run list."""
    tbl = pa.concat_tables(tables) if tables else None
    if tbl is None or not tbl.num_rows:
        return 0
    parts = pc.utf8_slice_codeunits(tbl.column("key"), 0, PREFIX)
    for part in pc.unique(parts).to_pylist():
        rows = tbl.filter(pc.equal(parts, part))
        name = f"run-{uuid.uuid4().hex}.parquet"
        _write(lake, lake.path(PARTS, part, name), dict(zip(*rows.to_pydict().values())))
        runs.setdefault(part, []).append([name, rows.num_rows])
    _save_runs(lake, runs)
    return tbl.num_rows


def _merge(lake: Lake, runs: dict[str, list], part: str) -> int:
    """Merge a partition's runs but its largest into one (the largest stays: each entry is
    rewritten a few times, not at every compaction)."""
    listed = sorted(runs[part], key=lambda run: run[1])
    small, paths = listed[:-1], [lake.path(PARTS, part, name) for name, _ in listed[:-1]]
    rows: dict[str, str] = {}
    for t in (t for t in (_read(lake, p) for p in paths) if t is not None):
        rows.update(zip(t.column("key").to_pylist(), t.column("entry").to_pylist()))
    name = f"run-{uuid.uuid4().hex}.parquet"
    _write(lake, lake.path(PARTS, part, name), rows)
    runs[part] = [listed[-1], [name, len(rows)]]
    _save_runs(lake, runs)
    lake.fs.rm(paths)
    return len(small)


def _write(lake: Lake, path: str, rows: dict[str, str]) -> None:
    """One run or chunk: entries sorted by key, in small row groups (their key range is in the footer)."""
    lake.write_table(path, _table(rows), row_group_size=ROW_GROUP)


def _table(rows: dict[str, str]) -> pa.Table:
    keys = sorted(rows)
    return pa.table({"key": pa.array(keys, pa.string()), "entry": pa.array([rows[k] for k in keys], pa.string())})


def _read(lake: Lake, path: str) -> pa.Table | None:
    try:
        with lake.fs.open(path, "rb") as f:
            return pq.read_table(f, schema=SCHEMA)
    except (OSError, ValueError, pa.ArrowException):  # a torn or foreign file: its entries are generated again
        return None


def _read_entries(lake: Lake, path: str, wanted: list[str]) -> dict[str, dict]:
    """The entries of `wanted` (sorted) that the file holds, reading only the row groups whose
    key range holds one of them."""
    try:
        with lake.fs.open(path, "rb") as f:
            pf = pq.ParquetFile(f)
            groups = [g for g in range(pf.num_row_groups) if _holds(pf, g, wanted)]
            if not groups:
                return {}
            tbl = pf.read_row_groups(list(groups), columns=["key", "entry"])
    except (OSError, ValueError, pa.ArrowException):
        return {}
    hit = tbl.filter(pc.is_in(tbl.column("key"), pa.array(wanted, pa.string())))
    entries = ((k, _parse(raw.encode())) for k, raw in zip(hit.column("key").to_pylist(), hit.column("entry").to_pylist()))
    return {k: e for k, e in entries if e is not None}


def _holds(pf: pq.ParquetFile, group: int, wanted: list[str]) -> bool:
    stats = pf.metadata.row_group(group).column(0).statistics
    if stats is None or not stats.has_min_max:
        return True
    i = bisect.bisect_left(wanted, stats.min)
    return i < len(wanted) and wanted[i] <= stats.max


def _runs(lake: Lake) -> dict[str, list]:
    """Partition -> its runs as [file name, entries], from the run list compaction keeps."""
    path = lake.path(PARTS, "runs.json")
    return json.loads(lake.fs.cat_file(path)) if lake.fs.exists(path) else {}


def _save_runs(lake: Lake, runs: dict[str, list]) -> None:
    lake.write_bytes(lake.path(PARTS, "runs.json"), json.dumps(runs, separators=(",", ":")).encode())


def _dirs(lake: Lake, folder: str) -> list[str]:
    """Subfolders of a lake folder (relative to the lake), as full paths."""
    if not lake.exists(folder):
        return []
    return [e["name"] for e in lake.fs.ls(lake.path(folder), detail=True) if e["type"] == "directory"]


def _files(lake: Lake, path: str, suffix: str = ".parquet") -> list[str]:
    """Finished files (no temp file of a writer) of a folder given as a full path."""
    if not lake.fs.exists(path):
        return []
    return sorted(p for p in lake.fs.ls(path, detail=False) if p.endswith(suffix) and "/.tmp-" not in p)


def _legacy_folders(lake: Lake) -> list[str]:
    return [p for p in _dirs(lake, FOLDER) if LEGACY.match(p.rsplit("/", 1)[-1])]


def _entry(res: Result) -> dict:
    entry = {
        "text": res.text, "finish_reason": res.finish_reason,
        "prompt_tokens": res.prompt_tokens, "output_tokens": res.output_tokens, "cached_tokens": res.cached_tokens,
    }
    if res.more:
        entry["more"] = [{"text": m.text, "finish_reason": m.finish_reason, "output_tokens": m.output_tokens} for m in res.more]
    return entry


def _result(request_id: str, entry: dict) -> Result:
    more = [Result(sample_id(request_id, k), **m) for k, m in enumerate(entry.pop("more"), start=1)]
    return Result(request_id, **entry, more=more)


def _parse(raw: bytes) -> dict | None:
    """A stored entry, or None when it is unreadable (then the request is generated again)."""
    try:
        entry = json.loads(raw)
        fields = {k: entry[k] for k in ("text", "finish_reason", "prompt_tokens", "output_tokens")}
        more = [{k: m[k] for k in ("text", "finish_reason", "output_tokens")} for m in entry.get("more", [])]
        return {**fields, "cached_tokens": int(entry.get("cached_tokens", 0)), "more": more}
    except (ValueError, KeyError, TypeError):
        return None
