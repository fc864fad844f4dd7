"""Planning the ingest: which sources become which units, and which units share a shard.

A source is a folder, a glob, a file or an fsspec URL of HTML, WARC/WET, JSONL or Parquet
files; `hf:PATH` / `hf:NAME` for a Hugging Face dataset; `sample` for the bundled pages;
an http(s) URL to crawl or `urls:FILE` for a list of them (returned as crawl seeds).

A unit is `{"kind", "uri", "start", "stop", "stamp"}`: one HTML file, one WARC/WET file, or
rows [start, stop) of a table or dataset (stop -1: to the end); `stamp` changes whenever
the input changes. Units of an uncompressed JSONL file also carry `offset`, the byte where
line `start` begins, so reading a shard costs its own rows, not the lines before them. Shards group units (up to shard_size HTML files or table rows; one WARC
file each); a shard's name depends only on what it reads, its input id also on the stamps,
so a re-ingest finds the shards it finished and re-reads the ones whose files changed.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import Counter
from dataclasses import dataclass, field
from urllib.parse import urlparse

import fsspec
import pyarrow.parquet as pq

from synthq.tasks.core.config import IngestConfig
from synthq.tasks.core import files
from synthq.tasks.core.errors import InputError
from synthq.tasks.ingest.readers import BOM, EXPECTED, check_columns, file_uri, load_hf, open_lines
from synthq.tasks.sample import PAGES

SUFFIXES = {
    "html": (".html", ".htm", ".xhtml", ".html.gz", ".htm.gz", ".xhtml.gz"),
    "warc": (".warc", ".warc.gz", ".wet", ".wet.gz"),
    "table": (".jsonl", ".jsonl.gz", ".ndjson", ".json", ".json.gz", ".parquet"),
}
KINDS = ("html", "warc", "table", "hf", "unknown")  # unknown: a file named in a rejection, not read
JSON_SCAN_LINES = 1000  # lines searched for a first JSON object to learn a file's columns


@dataclass
class Plan:
    shards: list[tuple[str, str, list[dict]]]  # (shard name, input id, units)
    crawl_seeds: list[str]
    summary: dict  # inputs per kind, plus files of unknown types that were ignored


@dataclass
class _Found:
    units: dict[tuple[str, int], dict] = field(default_factory=dict)
    seeds: list[str] = field(default_factory=list)
    counts: Counter = field(default_factory=Counter)
    inputs: set[str] = field(default_factory=set)
    ignored: set[str] = field(default_factory=set)

    def add(self, kind: str, uri: str, units: list[dict]) -> None:
        if uri not in self.inputs:  # the same file named twice is read once
            self.inputs.add(uri)
            self.counts[kind] += 1
            self.units.update({(u["uri"], u["start"]): u for u in units})


def file_kind(name: str) -> str | None:
    lower = name.lower()
    return next((kind for kind, ends in SUFFIXES.items() if lower.endswith(ends)), None)


def is_crawl_seed(source: str) -> bool:
    """An http(s) URL is a page to crawl (fetched politely, behind the address guard) unless it
    names a data file (WARC/WET, JSONL, Parquet), which is read like any remote file."""
    parsed = urlparse(source)
    return parsed.scheme in ("http", "https") and file_kind(parsed.path) in (None, "html")


def unit(kind: str, uri: str, stamp: str, start: int = 0, stop: int = -1) -> dict:
    return {"kind": kind, "uri": uri, "start": start, "stop": stop, "stamp": stamp}


def file_stamp(info: dict) -> str:
    """Size plus the first change marker the filesystem offers (etag, mtime...)."""
    keys = ("ETag", "etag", "mtime", "LastModified", "last_modified", "updated", "modified", "created")
    marker = next((info[k] for k in keys if info.get(k) is not None), "")
    return f"{info.get('size')}:{marker}"


# --- seeds --------------------------------------------------------------------------------


_INLINE_COMMENT = re.compile(r"\s+#.*$")


def read_seed_file(path: str) -> list[str]:
    """One URL per line; blank lines and '#' comments (whole-line or after the URL) skipped."""
    try:
        with fsspec.open(path, "rt", encoding="utf-8") as f:
            lines = f.read().splitlines()
    except OSError as e:
        raise InputError(f"urls:{path}: cannot read the seed file ({e}).") from e
    urls = []
    for number, line in enumerate(lines, 1):
        line = _INLINE_COMMENT.sub("", line).strip()
        if not line or line.startswith("#"):
            continue
        if urlparse(line).scheme not in ("http", "https"):
            raise InputError(f"urls:{path} line {number}: '{line[:100]}' is not an http(s) URL.")
        urls.append(line)
    if not urls:
        raise InputError(f"urls:{path} holds no URLs: write one http(s) URL per line.")
    return urls


# --- files --------------------------------------------------------------------------------


def list_files(source: str) -> tuple[fsspec.AbstractFileSystem, dict[str, dict]]:
    """Every file a folder (recursively), glob or file names, with its fsspec info."""
    return files.list_files(source, f"Give a folder, glob or file of {EXPECTED}; hf:PATH or hf:NAME for a Hugging "
                            "Face dataset; an http(s) URL or urls:FILE to crawl; or 'sample'.")


def _jsonl_shape(uri: str, every: int = 0) -> tuple[int, list[str] | None, dict[int, int]]:
    """(number of lines, keys of the first JSON object within the first lines, byte offset of
    every `every`-th line): a shard then starts reading at its first line instead of the file's.
    Offsets only for uncompressed files (a gzip stream cannot be entered mid-way)."""
    lines, columns, offsets, position = 0, None, {}, 0
    plain = every > 0 and fsspec.utils.infer_compression(uri) is None
    with open_lines(uri) as f:
        for line in f:
            if plain and lines % every == 0:
                offsets[lines] = position
            position += len(line)
            lines += 1
            if lines == 1:
                line = line.removeprefix(BOM)
            if columns is None and lines <= JSON_SCAN_LINES and line.strip():
                if lines == 1 and line.lstrip().startswith(b"["):
                    raise InputError(f"{uri} holds a JSON array: write JSON lines (one object per line).")
                try:
                    row = json.loads(line)
                except ValueError:
                    continue
                columns = list(row) if isinstance(row, dict) else None
    if lines and columns is None:
        raise InputError(f"{uri}: no JSON object in its first {JSON_SCAN_LINES} lines; expected JSON lines.")
    return lines, columns, offsets


def _table_shape(fs, path: str, uri: str, shard_size: int) -> tuple[int, list[str] | None, dict[int, int]]:
    if uri.lower().endswith(".parquet"):
        with fs.open(path, "rb") as f:
            meta = pq.ParquetFile(f)
            return meta.metadata.num_rows, meta.schema_arrow.names, {}
    return _jsonl_shape(uri, shard_size)


def row_units(kind: str, uri: str, stamp: str, rows: int, shard_size: int, offsets: dict[int, int] | None = None) -> list[dict]:
    """Rows [start, start + shard_size) each; with `offsets`, the byte where each unit's first line starts."""
    units = [unit(kind, uri, stamp, start, min(start + shard_size, rows)) for start in range(0, rows, shard_size)]
    for u in units:
        if offsets and u["start"] in offsets:
            u["offset"] = offsets[u["start"]]
    return units


def file_units(kind: str, fs, path: str, info: dict, cfg: IngestConfig, shard_size: int) -> list[dict]:
    uri, stamp = file_uri(fs, path), file_stamp(info)
    if kind != "table":
        return [unit(kind, uri, stamp)]
    rows, columns, offsets = _table_shape(fs, path, uri, shard_size)
    if rows:
        check_columns(uri, columns, cfg)
    return row_units(kind, uri, stamp, rows, shard_size, offsets)


def add_files(source: str, cfg: IngestConfig, shard_size: int, found: _Found) -> None:
    fs, infos = list_files(source)
    kinds = {path: file_kind(path) for path, info in infos.items() if info.get("type") != "directory"}
    known = sorted(path for path, kind in kinds.items() if kind)
    if not known:
        what = f"{len(kinds)} file(s) of unknown types" if kinds else "no files"
        raise InputError(f"Source '{source}' holds {what}; expected {EXPECTED}.")
    for path in sorted(p for p, kind in kinds.items() if not kind):  # each becomes a rejection row
        uri = file_uri(fs, path)
        found.ignored.add(uri)
        found.units[(uri, 0)] = unit("unknown", uri, file_stamp(infos[path]))
    for path in known:
        found.add(kinds[path], file_uri(fs, path), file_units(kinds[path], fs, path, infos[path], cfg, shard_size))


# --- Hugging Face datasets ----------------------------------------------------------------


def dataset_stamp(ds) -> str:
    """Names, sizes and mtimes of the dataset's Arrow files (its fingerprint when in memory)."""
    fs = fsspec.filesystem("file")
    files = [fs.info(f["filename"]) for f in ds.cache_files]
    parts = [f"{f['name']}:{file_stamp(f)}" for f in files] or [getattr(ds, "_fingerprint", "")]
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]


def add_dataset(target: str, cfg: IngestConfig, shard_size: int, found: _Found) -> None:
    """hf:PATH or hf:NAME, all splits of a DatasetDict or the one named after '#'."""
    name, _, only = target.partition("#")
    if not name:
        raise InputError("hf: needs a dataset folder or name, as in hf:data/my_dataset or hf:owner/name.")
    loaded = load_hf(name)
    splits = dict(loaded) if hasattr(loaded, "keys") else {None: loaded}
    if only and only not in splits:
        raise InputError(f"hf:{target}: no split '{only}' (splits: {sorted(map(str, splits))}).")
    for split, ds in sorted(splits.items(), key=lambda kv: str(kv[0])):
        if only and split != only:
            continue
        uri = f"hf:{name}#{split}" if split is not None else f"hf:{name}"
        check_columns(uri, ds.column_names, cfg)
        found.add("hf", uri, row_units("hf", uri, dataset_stamp(ds), ds.num_rows, shard_size))


# --- shards -------------------------------------------------------------------------------


def _weight(u: dict) -> int:
    return 1 if u["kind"] in ("html", "unknown") else u["stop"] - u["start"]


def group_units(units: list[dict], shard_size: int) -> list[list[dict]]:
    """Consecutive units of one kind, up to shard_size files or rows each; a WARC file alone."""
    groups: list[list[dict]] = []
    load = 0
    for u in units:
        joinable = bool(groups) and groups[-1][0]["kind"] == u["kind"] and u["kind"] != "warc"
        if joinable and load + _weight(u) <= shard_size:
            groups[-1].append(u)
            load += _weight(u)
        else:
            groups.append([u])
            load = _weight(u)
    return groups


def _digest(rows: list) -> str:
    return hashlib.sha256(json.dumps(rows).encode()).hexdigest()


def shard_entry(units: list[dict]) -> tuple[str, str, list[dict]]:
    """(name from what the units read, input id from that and their stamps, units)."""
    ranges = [[u["uri"], u["start"], u["stop"]] for u in units]
    name = f"{units[0]['kind']}-{_digest(ranges)[:12]}"
    input_id = _digest([r + [u["stamp"]] for r, u in zip(ranges, units)])[:16]
    return name, input_id, units


def plan(sources: list[str], cfg: IngestConfig, shard_size: int) -> Plan:
    """Units and shards of every source, the URLs to crawl, and how many inputs of each kind."""
    found = _Found()
    for source in (s.strip() for s in sources):
        if not source:
            raise InputError("An empty source was given: name a folder, glob, file, hf:..., urls:FILE, URL or 'sample'.")
        if source.startswith("urls:"):
            found.seeds += read_seed_file(source.removeprefix("urls:"))
        elif source.startswith("hf:"):
            add_dataset(source.removeprefix("hf:"), cfg, shard_size, found)
        elif is_crawl_seed(source):
            found.seeds.append(source)
        else:
            add_files(str(PAGES) if source == "sample" else source, cfg, shard_size, found)
    order = {kind: n for n, kind in enumerate(KINDS)}
    units = sorted(found.units.values(), key=lambda u: (order[u["kind"]], u["uri"], u["start"]))
    shards = [shard_entry(group) for group in group_units(units, shard_size)]
    summary = {kind: found.counts[kind] for kind in KINDS[:-1]} | {"ignored": len(found.ignored)}
    return Plan(shards, list(dict.fromkeys(found.seeds)), summary)
