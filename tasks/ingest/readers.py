"""Reading planned units into raw pages: HTML files, WARC/WET files, table rows, HF datasets.

A unit (see `synthq.tasks.ingest.sources`) names one input and a range in it. Every record of a
unit comes out as a `RawPage` or as a rejection row; WARC records that are not documents
(requests, metadata, warcinfo...) are counted by type in `stats`. Reading never raises: a
file that breaks half-way ends with a rejection saying where, and the next unit goes on.
Local paths and fsspec URLs (s3://, memory://, http://...) are read the same way.
"""

from __future__ import annotations

import contextlib
import gzip
import json
from collections.abc import Callable, Iterator
from datetime import datetime, timezone

import fsspec
import pyarrow.parquet as pq
from fsspec.implementations.local import LocalFileSystem
from warcio.archiveiterator import ArchiveIterator

from synthq.tasks.core.config import IngestConfig
from synthq.tasks.core.errors import InputError
from synthq.tasks.core.files import load_hf
from synthq.tasks.core.records import rejection
from synthq.tasks.ingest.raw import RawPage

STAGE = "ingest"  # the stage named in rejection rows
HTML_TYPES = ("text/html", "application/xhtml+xml")
TITLE_COLUMN = "title"
HF_BATCH_ROWS = 1000
Item = RawPage | dict
EXPECTED = "HTML (.html[.gz]/.htm[.gz]), WARC/WET (.warc[.gz]/.wet[.gz]), JSONL (.jsonl[.gz]/.json) or Parquet files"
BOM = b"\xef\xbb\xbf"  # a UTF-8 byte-order mark, as some editors save files


def reject(reason: str, detail: str, record_id: str, **record) -> dict:
    return rejection(STAGE, reason, detail, record_id, record)


# --- where a file lives and when it changed -------------------------------------------------


def file_uri(fs, path: str) -> str:
    """What units store: the absolute path for local files, the full URL otherwise."""
    return path if isinstance(fs, LocalFileSystem) else fs.unstrip_protocol(path)


def base_url(uri: str) -> str:
    """The URL of a page that has none of its own: file:// for local files, the URL otherwise."""
    return f"file://{uri}" if uri.startswith("/") else uri


def info_time(info: dict) -> datetime:
    """Modification time from an fsspec info dict (local, memory, s3, gcs, http...), in UTC."""
    for key in ("mtime", "LastModified", "last_modified", "updated", "modified", "created"):
        value = info.get(key)
        if isinstance(value, (int, float)):
            return datetime.fromtimestamp(value, tz=timezone.utc)
        if isinstance(value, str):
            with contextlib.suppress(ValueError):
                value = datetime.fromisoformat(value.replace("Z", "+00:00"))
        if isinstance(value, datetime):
            return value if value.tzinfo else value.replace(tzinfo=timezone.utc)
    return datetime.now(timezone.utc)


# --- HTML files ---------------------------------------------------------------------------


def _gunzip(f, limit: int) -> bytes | None:
    """The decompressed file, or None past `limit` bytes (a gzip bomb stops there)."""
    with gzip.GzipFile(fileobj=f) as z:
        data = z.read(limit + 1)
    return None if len(data) > limit else data


def read_html(unit: dict, cfg: IngestConfig, stats: dict) -> Iterator[Item]:
    """One HTML file, gzip-compressed or not (.html.gz); the size cap counts decompressed bytes."""
    uri = unit["uri"]
    fs, path = fsspec.core.url_to_fs(uri)
    too_large = f"over ingest.max_page_bytes={cfg.max_page_bytes}"
    try:
        info = fs.info(path)
        if info["size"] > cfg.max_page_bytes:
            yield reject("too_large", f"file is {info['size']} bytes, {too_large}", uri, source=uri)
            return
        if uri.lower().endswith(".gz"):
            with fs.open(path, "rb") as f:
                data = _gunzip(f, cfg.max_page_bytes)
            if data is None:
                yield reject("too_large", f"decompressed, the file is {too_large}", uri, source=uri)
                return
        else:
            data = fs.cat_file(path)
    except (OSError, EOFError, gzip.BadGzipFile) as e:
        yield reject("unreadable", f"{type(e).__name__}: {e}"[:300], uri, source=uri)
        return
    yield RawPage(url=base_url(uri.removesuffix(".gz").removesuffix(".GZ")), source=uri, fetch_time=info_time(info), html=data)


def read_unknown(unit: dict, cfg: IngestConfig, stats: dict) -> Iterator[Item]:
    """A file of a type ingest does not read: named in a rejection row, never silently skipped."""
    yield reject("unknown_file_type", f"not one of {EXPECTED}; skipped", unit["uri"], source=unit["uri"])


# --- WARC and WET files -------------------------------------------------------------------


def _warc_date(record, fallback: datetime) -> datetime:
    value = record.rec_headers.get_header("WARC-Date") or ""
    try:
        stamp = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return fallback
    return stamp if stamp.tzinfo else stamp.replace(tzinfo=timezone.utc)


def _response_problem(record) -> tuple[str, str] | None:
    """Why a response record is not an HTML page (status first, then content type)."""
    if record.http_headers is None:
        return "warc_not_html", "not an HTTP response"
    status = record.http_headers.get_statuscode()
    if status != "200":
        return "warc_http_status", f"HTTP {status}"
    ctype = record.http_headers.get_header("Content-Type") or record.rec_headers.get_header("WARC-Identified-Payload-Type") or ""
    if ctype.split(";")[0].strip().lower() not in HTML_TYPES:
        return "warc_not_html", f"Content-Type {ctype or 'missing'}"
    return None


def _document(record, it, uri: str, cfg: IngestConfig, fetched: datetime) -> Item:
    """A response or conversion record -> a page, or a short rejection (never the payload)."""
    url = record.rec_headers.get_header("WARC-Target-URI") or ""

    def refuse(reason: str, detail: str) -> dict:  # the offset is known once the record is read
        return reject(reason, detail, url, url=url, source=uri, offset=it.get_record_offset())

    problem = _response_problem(record) if record.rec_type == "response" else None
    if problem:
        return refuse(*problem)
    try:
        data = record.content_stream().read(cfg.max_page_bytes + 1)
    except Exception as e:  # a payload that cannot be decoded (bad chunking or Content-Encoding)
        return refuse("unreadable", f"{type(e).__name__}: {e}"[:300])
    if len(data) > cfg.max_page_bytes:
        return refuse("too_large", f"payload over ingest.max_page_bytes={cfg.max_page_bytes}")
    page = RawPage(url=url, source=uri, fetch_time=_warc_date(record, fetched), offset=it.get_record_offset())
    if record.rec_type == "response":
        page.html = data
    else:
        page.text = data.decode("utf-8", errors="replace")
    return page


def _corrupt(uri: str, offset, detail: str) -> dict:
    return reject("warc_corrupt", f"{detail} (at byte {offset}); the rest of the file is skipped", f"{uri}@{offset}", source=uri, offset=offset)


def _warc_items(f, size: int, uri: str, cfg: IngestConfig, stats: dict, fetched: datetime) -> Iterator[Item]:
    it = ArchiveIterator(f)
    try:
        for record in it:
            if not record.format.startswith("warc") or not record.rec_type:
                yield _corrupt(uri, it.get_record_offset(), f"not a WARC record ({record.format}, type {record.rec_type})")
                return
            item = None
            if record.rec_type in ("response", "conversion"):
                item = _document(record, it, uri, cfg, fetched)
            else:
                stats[record.rec_type] = stats.get(record.rec_type, 0) + 1
            offset = it.get_record_offset()
            if getattr(record.raw_stream, "limit", 0) > 0:  # the file ended inside this record
                yield _corrupt(uri, offset, "record ends before its Content-Length")
                return
            if item is not None:
                yield item
    except Exception as e:  # warcio raises many types on broken input
        yield _corrupt(uri, getattr(it, "offset", None), f"{type(e).__name__}: {e}"[:300])
        return
    if size is not None and it.offset < size:  # a truncated gzip member ends the iteration silently
        yield _corrupt(uri, it.offset, f"{size - it.offset} trailing bytes are not a complete record")


def read_warc(unit: dict, cfg: IngestConfig, stats: dict) -> Iterator[Item]:
    uri = unit["uri"]
    fs, path = fsspec.core.url_to_fs(uri)
    try:
        info = fs.info(path)
        f = fs.open(path, "rb")
    except OSError as e:
        yield reject("unreadable", f"{type(e).__name__}: {e}"[:300], uri, source=uri)
        return
    with f:
        yield from _warc_items(f, info.get("size"), uri, cfg, stats, info_time(info))


# --- rows of tables and datasets ----------------------------------------------------------


def row_page(row: dict, index: int, source: str, url: str, fetched: datetime, cfg: IngestConfig) -> Item:
    """One table or dataset row -> a page (text column first, else HTML column) or a rejection."""
    text, html = row.get(cfg.text_column), row.get(cfg.html_column)
    if isinstance(text, str) and text.strip():
        body, size = {"text": text}, len(text.encode("utf-8", errors="replace"))
    elif isinstance(html, (str, bytes)) and html.strip():
        data = html.encode("utf-8", errors="replace") if isinstance(html, str) else html
        body, size = {"html": data}, len(data)
    else:
        detail = f"row {index} has no non-empty string in '{cfg.text_column}' or '{cfg.html_column}'"
        return reject("empty_text", detail, f"{source}:{index}", source=source, offset=index, columns=sorted(row))
    own_url = row.get(cfg.url_column)
    url = own_url.strip() if isinstance(own_url, str) and own_url.strip() else url
    if size > cfg.max_page_bytes:
        detail = f"row is {size} bytes, over ingest.max_page_bytes={cfg.max_page_bytes}"
        return reject("too_large", detail, url, url=url, source=source, offset=index)
    title = row.get(TITLE_COLUMN)
    title = title if isinstance(title, str) else ""
    return RawPage(url=url, source=source, fetch_time=fetched, offset=index, title=title, **body)


def wanted_columns(cfg: IngestConfig) -> tuple[str, ...]:
    return (cfg.text_column, cfg.html_column, cfg.url_column, TITLE_COLUMN)


def open_lines(uri: str):
    """A JSONL file (gzip or not, by its suffix) opened for reading lines as bytes."""
    return fsspec.open(uri, "rb", compression="infer")


def _seek_line(f, offset: int) -> bool:
    """Move to `offset` if a line starts there (the byte before it ends a line); else stay at 0."""
    if offset <= 0:
        return False
    f.seek(offset - 1)
    if f.read(1) == b"\n":
        return True
    f.seek(0)  # the file changed since it was planned: read from its first line instead
    return False


def _jsonl_rows(uri: str, start: int, stop: int, offset: int | None = None) -> Iterator[tuple[int, dict | bytes, str]]:
    """(line index, object, "") for each non-blank line in [start, stop); (index, line, error)
    for a line that is not a JSON object. With `offset` (the byte where line `start` begins,
    uncompressed files) reading starts there."""
    with (open_lines(uri) if offset is None else fsspec.open(uri, "rb")) as f:
        first = start if offset is not None and _seek_line(f, offset) else 0
        for index, line in enumerate(f, start=first):
            if index == 0:
                line = line.removeprefix(BOM)
            if index < start or not line.strip():
                continue
            if 0 <= stop <= index:
                return
            try:
                row = json.loads(line)
            except ValueError as e:
                yield index, line, f"{type(e).__name__}: {e}"[:200]
                continue
            yield (index, row, "") if isinstance(row, dict) else (index, line, "not a JSON object")


def _parquet_rows(uri: str, start: int, stop: int, columns: tuple[str, ...]) -> Iterator[tuple[int, dict, str]]:
    fs, path = fsspec.core.url_to_fs(uri)
    with fs.open(path, "rb") as f:
        pf = pq.ParquetFile(f)
        stop = pf.metadata.num_rows if stop < 0 else stop
        names = [c for c in columns if c in pf.schema_arrow.names]
        first = 0
        for group in range(pf.num_row_groups):
            count = pf.metadata.row_group(group).num_rows
            if first < stop and first + count > start:
                index = first
                for batch in pf.iter_batches(batch_size=HF_BATCH_ROWS, row_groups=[group], columns=names):
                    for row in batch.to_pylist():
                        if start <= index < stop:
                            yield index, row, ""
                        index += 1
            first += count


def read_table(unit: dict, cfg: IngestConfig, stats: dict) -> Iterator[Item]:
    uri, start, stop = unit["uri"], unit["start"], unit["stop"]
    fs, path = fsspec.core.url_to_fs(uri)
    fetched = info_time(fs.info(path))
    parquet = uri.lower().endswith(".parquet")
    rows = _parquet_rows(uri, start, stop, wanted_columns(cfg)) if parquet else _jsonl_rows(uri, start, stop, unit.get("offset"))
    for index, row, error in rows:
        if error:
            line = row[:500].rstrip(b"\r\n").decode("utf-8", errors="replace")
            yield reject("bad_json", f"line {index + 1}: {error}", f"{uri}:{index + 1}", source=uri, offset=index, line=line)
        else:
            yield row_page(row, index, uri, f"{base_url(uri)}#{index}", fetched, cfg)


# --- Hugging Face datasets ----------------------------------------------------------------


def split_hf_uri(uri: str) -> tuple[str, str | None]:
    """'hf:PATH#train' -> ('PATH', 'train'); 'hf:PATH' -> ('PATH', None)."""
    target, _, split = uri.removeprefix("hf:").partition("#")
    return target, split or None


def hf_dataset(uri: str, loaded: dict):
    """The Dataset a unit's uri names (one split of a DatasetDict), loaded once per read."""
    target, split = split_hf_uri(uri)
    if target not in loaded:
        loaded[target] = load_hf(target)
    found = loaded[target]
    if split is None and hasattr(found, "keys"):
        raise InputError(f"{uri} holds splits {sorted(found)}: name one, as in {uri}#{sorted(found)[0]}.")
    if split is not None:
        if split not in found:
            raise InputError(f"{uri}: no split '{split}' (splits: {sorted(found)}).")
        found = found[split]
    return found.with_format(None)


def check_columns(where: str, columns: list[str], cfg: IngestConfig) -> None:
    """A table or dataset needs a text or an HTML column: say which columns it has instead."""
    if cfg.text_column not in columns and cfg.html_column not in columns:
        raise InputError(
            f"{where} has neither a '{cfg.text_column}' nor an '{cfg.html_column}' column (columns: "
            f"{', '.join(map(str, columns)) or 'none'}): set ingest.text_column or ingest.html_column "
            "to the column holding the text or the HTML."
        )


def _hf_time(ds) -> datetime:
    """When the dataset's files were written (its rows carry no fetch time)."""
    files = [f["filename"] for f in ds.cache_files]
    with contextlib.suppress(OSError, IndexError):
        return info_time(fsspec.filesystem("file").info(files[0]))
    return datetime.now(timezone.utc)


def read_hf(unit: dict, cfg: IngestConfig, stats: dict, loaded: dict) -> Iterator[Item]:
    uri = unit["uri"]
    ds = hf_dataset(uri, loaded)
    check_columns(uri, ds.column_names, cfg)
    names = [c for c in wanted_columns(cfg) if c in ds.column_names]
    stop = ds.num_rows if unit["stop"] < 0 else min(unit["stop"], ds.num_rows)
    fetched = _hf_time(ds)
    for low in range(unit["start"], stop, HF_BATCH_ROWS):
        batch = ds.select_columns(names)[low : min(low + HF_BATCH_ROWS, stop)]
        for i in range(len(batch[names[0]])):
            index = low + i
            yield row_page({c: batch[c][i] for c in names}, index, uri, f"{uri}[{index}]", fetched, cfg)


# --- all units ----------------------------------------------------------------------------


def _readers(loaded: dict) -> dict[str, Callable]:
    return {
        "html": read_html,
        "warc": read_warc,
        "table": read_table,
        "hf": lambda unit, cfg, stats: read_hf(unit, cfg, stats, loaded),
        "unknown": read_unknown,
    }


def read_units(units: list[dict], cfg: IngestConfig, stats: dict | None = None) -> Iterator[Item]:
    """Every record of every unit, in order: pages and rejections. `stats` (when given) counts
    the WARC records that are not documents, by record type."""
    stats = {} if stats is None else stats
    readers = _readers({})
    for unit in units:
        reader = readers.get(unit["kind"])
        if reader is None:
            yield reject("unreadable", f"unknown unit kind '{unit['kind']}'", unit["uri"], **unit)
            continue
        try:
            yield from reader(unit, cfg, stats)
        except Exception as e:  # a unit that breaks mid-way: say where, go on with the next
            detail = f"reading stopped: {type(e).__name__}: {e}"[:400]
            yield reject("unreadable", detail, unit["uri"], **unit)
