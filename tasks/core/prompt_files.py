"""Prompt files: seed instructions and benchmark prompts in the shapes people publish them.

Where: a file, folder or glob (local or any fsspec URL: s3://, gs://, memory://...), or
`hf:PATH` / `hf:NAME` (`#split` picks one split) for a Hugging Face dataset saved to disk or
in the offline cache. Formats: JSON lines (.jsonl, .ndjson, .gz), JSON arrays (.json, .json.gz;
a .json holding JSON lines works too), Parquet, CSV.

Which column holds the prompt is detected per file, the first of these present:

    prompt         {"prompt": "..."}
    instruction    Alpaca {"instruction", "input"}; self-instruct seed tasks {"instruction",
                   "instances": [{"input", "output"}]}: the instruction, then the (first) input
    question       {"question": "..."}
    conversations  ShareGPT [{"from": "human", "value"}, ...]: the first human turn
    messages       OpenAI chat [{"role": "user", "content"}, ...]: the first user turn
    turns          MT-Bench {"question_id", "category", "turns": ["...", "..."]}: the first turn
                   (Arena-Hard's [{"content": ...}] turns too)

Seeds take the first user turn; benchmarks register every user turn (a contaminated second
turn is still contamination). Explicit fields (`attribute.seed_fields`,
`curate.benchmark_fields`) name the prompt, input and id columns instead. The id is the first of
`id`, `question_id`, `idx`, `key`, `uid` present, else a hash of the prompt. A row that does not
map is a rejection with its file and row; a file where nothing maps is an error naming the
columns it has and the flag to set.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import PurePosixPath

import fsspec
import pyarrow.csv as pcsv
import pyarrow.parquet as pq
from fsspec.implementations.local import LocalFileSystem

from synthq.tasks.core.errors import InputError
from synthq.tasks.core.files import list_files, load_hf
from synthq.tasks.core.records import rejection

PROMPT_COLUMNS = ("prompt", "instruction", "question", "conversations", "messages", "turns")
INPUT_COLUMNS = {"instruction": ("input", "instances")}  # appended to the prompt when present
ID_COLUMNS = ("id", "question_id", "idx", "key", "uid")
USER_ROLES = ("user", "human")
FORMATS = {".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "json", ".parquet": "parquet", ".csv": "csv"}
EXPECTED = "JSON lines (.jsonl/.ndjson[.gz]), JSON arrays (.json[.gz]), Parquet or CSV files, or hf:DATASET"
SCAN_ROWS = 200  # rows whose keys make up a JSON file's columns
BOM = "\ufeff"


@dataclass
class Mapping:
    """Where one file's rows keep their prompt, optional input and id."""

    prompt: str
    input: str | None = None
    id: str | None = None
    explicit: bool = False

    def describe(self) -> str:
        how = "as set" if self.explicit else "detected"
        text = f"prompt from '{self.prompt}'" + (f" + '{self.input}'" if self.input else "")
        ident = f"id from '{self.id}'" if self.id else "id from the prompt's hash"
        return f"{text}, {ident} ({how})"


@dataclass
class PromptFile:
    """Rows read from a source: {"id", "prompts", "where", "file"} each, plus rejections."""

    rows: list[dict] = field(default_factory=list)
    rejected: list[dict] = field(default_factory=list)
    detected: dict[str, str] = field(default_factory=dict)  # file -> what mapped
    bad_rows: dict[str, int] = field(default_factory=dict)  # file -> rows rejected


# --- reading records --------------------------------------------------------------------------


def _suffix(name: str) -> str | None:
    lower = name.lower().removesuffix(".gz")
    return FORMATS.get(PurePosixPath(lower).suffix)


def _text(uri: str) -> str:
    with fsspec.open(uri, "rb", compression="infer") as f:
        return f.read().decode("utf-8", errors="replace").removeprefix(BOM)


def _json_lines(uri: str, text: str) -> Iterator[tuple[str, object, str]]:
    for n, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            yield f"{uri}:{n}", json.loads(line), ""
        except json.JSONDecodeError as e:
            yield f"{uri}:{n}", line[:2000], f"not valid JSON ({e.msg})"


def _json(uri: str, text: str) -> Iterator[tuple[str, object, str]]:
    if not text.lstrip().startswith("["):
        yield from _json_lines(uri, text)
        return
    try:
        items = json.loads(text)
    except json.JSONDecodeError as e:
        raise InputError(f"{uri} is not a valid JSON array ({e.msg} at line {e.lineno}): fix it or write JSON lines.") from e
    for i, item in enumerate(items):
        yield f"{uri}[{i}]", item, ""


def _table_rows(uri: str, tbl) -> Iterator[tuple[str, object, str]]:
    for i, row in enumerate(tbl.to_pylist(), start=1):
        yield f"{uri} row {i}", row, ""


def _file_records(uri: str, kind: str) -> Iterator[tuple[str, object, str]]:
    """(where, record, problem) for every row of one file."""
    try:
        if kind == "parquet":
            with fsspec.open(uri, "rb") as f:
                yield from _table_rows(uri, pq.read_table(f))
        elif kind == "csv":
            data = _text(uri).encode()
            yield from _table_rows(uri, pcsv.read_csv(io.BytesIO(data)))
        else:
            yield from (_json if kind == "json" else _json_lines)(uri, _text(uri))
    except (OSError, EOFError, gzip.BadGzipFile, ValueError) as e:  # pyarrow's ArrowInvalid is a ValueError
        raise InputError(f"{uri} cannot be read as {kind}: {type(e).__name__}: {e}"[:600]) from e


def _hf_sources(target: str) -> Iterator[tuple[str, Iterator]]:
    name, _, only = target.partition("#")
    loaded = load_hf(name)
    splits = dict(loaded) if hasattr(loaded, "keys") else {None: loaded}
    if only and only not in splits:
        raise InputError(f"hf:{target}: no split '{only}' (splits: {sorted(map(str, splits))}).")
    for split, ds in sorted(splits.items(), key=lambda kv: str(kv[0])):
        if not only or split == only:
            uri = f"hf:{name}" + (f"#{split}" if split is not None else "")
            yield uri, ((f"{uri} row {i}", row, "") for i, row in enumerate(ds.with_format(None), start=1))


def sources(source: str, what: str) -> Iterator[tuple[str, Iterator | None]]:
    """(file uri, its records) for every file or dataset split a source names; records is
    None for a file of a type no reader knows (the caller rejects it by name)."""
    if source.startswith("hf:"):
        yield from _hf_sources(source.removeprefix("hf:"))
        return
    fs, infos = list_files(source, f"Give {what} as {EXPECTED}, a folder or glob of them, on any fsspec URL.")
    files = sorted(p for p, info in infos.items() if info.get("type") != "directory")
    if len(files) == 1 and _suffix(files[0]) is None:
        raise InputError(f"{source}: {what} must be {EXPECTED}.")
    for path in files:
        uri = path if isinstance(fs, LocalFileSystem) else fs.unstrip_protocol(path)
        kind = _suffix(path)
        yield uri, (_file_records(uri, kind) if kind else None)


# --- mapping rows to prompts ----------------------------------------------------------------


def _columns(records: list[tuple[str, object, str]]) -> list[str]:
    seen: dict[str, None] = {}
    for _, obj, problem in records[:SCAN_ROWS]:
        if not problem and isinstance(obj, dict):
            seen.update(dict.fromkeys(map(str, obj)))
    return list(seen)


def detect(columns: list[str], fields: dict) -> Mapping | None:
    """The file's mapping: the explicit fields when any is set, else the first known shape."""
    ident = fields.get("id") or next((c for c in ID_COLUMNS if c in columns), None)
    if fields.get("prompt"):
        return Mapping(fields["prompt"], fields.get("input"), ident, explicit=True)
    prompt = next((c for c in PROMPT_COLUMNS if c in columns), None)
    if prompt is None:
        return None
    extra = fields.get("input") or next((c for c in INPUT_COLUMNS.get(prompt, ()) if c in columns), None)
    return Mapping(prompt, extra, ident)


def _content(value) -> str | None:
    """A chat turn's text: a string, or OpenAI's list of parts ({"type": "text", "text"})."""
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        parts = [p.get("text") for p in value if isinstance(p, dict) and isinstance(p.get("text"), str)]
        return "\n".join(parts) if parts else None
    return None


def user_turns(value) -> list[str] | None:
    """The user's turns in a prompt value: a string; a list of strings (MT-Bench turns); chat
    turns (ShareGPT from/value, OpenAI role/content; turns without a role count as the user's)."""
    if isinstance(value, str):
        return [value]
    if not isinstance(value, list):
        return None
    if all(isinstance(t, str) for t in value):
        return value
    turns = []
    for turn in value:
        if not isinstance(turn, dict):
            return None
        role = turn.get("role", turn.get("from", "user"))
        if str(role).lower() in USER_ROLES:
            text = _content(turn.get("content", turn.get("value")))
            if text is not None:
                turns.append(text)
    return turns


def _input_text(value) -> str:
    """Alpaca's input string, or the first instance's input (self-instruct seed tasks)."""
    if isinstance(value, list) and value and isinstance(value[0], dict):
        value = value[0].get("input")
    return value.strip() if isinstance(value, str) else ""


def _row_id(obj: dict, mapping: Mapping, prompt: str) -> tuple[str | None, str | None]:
    if mapping.id is None:
        return hashlib.sha256(prompt.encode()).hexdigest()[:16], None
    value = obj.get(mapping.id)
    if value is None or (isinstance(value, str) and not value.strip()):
        return None, f"missing '{mapping.id}'"
    if not isinstance(value, (str, int)) or isinstance(value, bool):
        return None, f"'{mapping.id}' must be a string or an integer"
    return str(value).strip(), None


def map_row(obj, mapping: Mapping) -> tuple[dict | None, str | None]:
    """({"id", "prompts"}, None), or (None, what is wrong) for one record."""
    if not isinstance(obj, dict):
        return None, f"expected a JSON object, got {type(obj).__name__}"
    turns = user_turns(obj.get(mapping.prompt))
    turns = [t.strip() for t in turns or [] if isinstance(t, str) and t.strip()]
    if not turns:
        value = obj.get(mapping.prompt)
        shape = "a non-empty string" if not isinstance(value, list) else "a list with a non-empty user turn"
        return None, f"missing or empty '{mapping.prompt}' ({shape})"
    extra = _input_text(obj.get(mapping.input)) if mapping.input else ""
    if extra:
        turns[0] = f"{turns[0]}\n\n{extra}"
    ident, problem = _row_id(obj, mapping, turns[0])
    return (None, problem) if problem else ({"id": ident, "prompts": turns, "derived_id": mapping.id is None}, None)


def read_prompts(source: str, fields: dict, what: str, flag: str, stage: str, reason: str) -> PromptFile:
    """Every row of every file of `source`, mapped to prompts or rejected with its place.
    `flag` is the config key to name when a file maps nothing."""
    out = PromptFile()
    for uri, records in sources(source, what):
        if records is None:
            out.rejected.append(rejection(stage, "unknown_file_type", f"{uri}: not one of {EXPECTED}; skipped", uri, uri))
            continue
        records = list(records)
        bad = [rejection(stage, reason, f"{where}: {problem}", where, obj) for where, obj, problem in records if problem]
        columns = _columns(records)
        mapping = detect(columns, fields)
        listed = f"its columns: {', '.join(columns) or 'none'}"
        if mapping is None and len(bad) < len(records):
            raise InputError(
                f"{uri}: no prompt column found ({listed}); expected one of {', '.join(PROMPT_COLUMNS)}, "
                f"or set {flag}.prompt (and {flag}.input, {flag}.id) to the columns to use."
            )
        if mapping is not None and columns and mapping.prompt not in columns:
            raise InputError(f"{uri} has no '{mapping.prompt}' column ({listed}): set {flag}.prompt to one of them.")
        if mapping is not None:
            out.detected[uri] = mapping.describe()
            for where, obj, problem in records:
                row, wrong = map_row(obj, mapping) if not problem else (None, None)
                if wrong:
                    bad.append(rejection(stage, reason, f"{where}: {wrong}", where, obj))
                elif row:
                    out.rows.append({**row, "where": where, "file": uri})
        out.rejected += bad
        if bad:
            out.bad_rows[uri] = len(bad)
    return out


def file_name(uri: str) -> str:
    """A benchmark's name in reports: its file name without the format suffixes, or the dataset's."""
    base = uri.removeprefix("hf:").split("#")[0].rstrip("/").rsplit("/", 1)[-1]
    for end in (".gz", ".jsonl", ".ndjson", ".json", ".parquet", ".csv"):
        base = base.removesuffix(end)
    return base
