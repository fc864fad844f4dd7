"""The explorer in the browser: Datasette over the lake's export (explorer.py), read-only.

Datasette gives the pages: facets, full-text search, links along foreign keys, a JSON API.
This module only says what the tables mean (metadata: labels, descriptions, facets) and
adds links: along every foreign key on a row's own page too (Datasette 0.65 links them in
table views only), and one per id in a row's list of demonstration ids, so one click from a
released row reaches its document and each demonstration behind it.
"""

from __future__ import annotations

import asyncio
import json
import threading
import webbrowser
from pathlib import Path
from urllib.parse import quote

import uvicorn
from datasette import hookimpl
from datasette.app import Datasette
from datasette.plugins import pm
from datasette.utils import tilde_encode
from markupsafe import Markup, escape

from synthq.tasks.core.records import describe
from synthq.tasks.publish.explorer import TABLES

DATABASE = "synthq"  # the database name in URLs: /synthq/<table>
DEFAULT_HOST = "127.0.0.1"  # loopback: the lake is not served to the network unless asked

TABLE_DOCS = {
    "releases": ("Published releases, from the lake's catalog.", "key", []),
    "release_rows": ("Every row of every release: open one to reach its document, its demonstrations and "
                     "their seeds.", "query", ["release", "score_total", "topic", "moderation"]),
    "documents": ("Documents the ingest stage kept (main text of web pages and files).", "title",
                  ["language", "source"]),
    "seeds": ("Real seed instructions behind the demonstrations.", "prompt", []),
    "demonstrations": ("Seeds grounded in documents: scene and query compositions.", "intent", ["model"]),
    "instructions": ("Synthesized instructions, before curation.", "query", ["model", "prompt_version"]),
    "instruction_demonstrations": ("Which demonstrations were shown for which instruction.", None, []),
    "responses": ("Answers to curated queries, with their judge's scores.", "answer", ["variant", "judge"]),
    "pairs": ("Preference pairs: the chosen and the rejected answer of a query.", "query", ["variant", "rule"]),
    "rejections": ("Every record a stage removed, with the stage and the reason.", "reason",
                   ["stage", "reason", "dataset"]),
}
LINKED_LISTS = {"demonstration_ids": "demonstrations"}  # JSON list column -> the table its ids name


def metadata(lake_url: str) -> dict:
    tables = {}
    for name, (schema, _, _) in TABLES.items():
        doc, label, facets = TABLE_DOCS[name]
        tables[name] = {"description": doc, "columns": {k: v for k, v in describe(schema).items() if v}}
        if label:
            tables[name]["label_column"] = label
        if facets:
            tables[name]["facets"] = facets
    tables["about_this_export"] = {"description": "When this export was made, from which lake, and its row counts."}
    return {
        "title": "synthq lake explorer",
        "description": f"Read-only view of the lake {lake_url}. Start at release_rows or rejections.",
        "databases": {DATABASE: {"tables": tables}},
    }


class Links:
    """Datasette plugin: links along the export's foreign keys on every page, and a JSON list
    of demonstration ids rendered as one link per demonstration (Datasette 0.65 links foreign
    keys in table views only, not on a row's own page)."""

    name = "synthq-links"

    @staticmethod
    @hookimpl
    def render_cell(value, column, table, database, datasette):
        if database != DATABASE or not isinstance(value, str) or table not in TABLES:
            return None
        target = LINKED_LISTS.get(column)
        if target and value.startswith("["):
            try:
                ids = [str(i) for i in json.loads(value)]
            except ValueError:
                return None
            return Markup(", ".join(_link(datasette, target, i, i) for i in ids) or "[]")
        fk = next(((t, c) for col, t, c in TABLES[table][2] if col == column), None)
        return _labelled_link(datasette, *fk, value) if fk and value else None


def _link(datasette, table: str, key: str, text: str) -> str:
    return f'<a href="{datasette.urls.row(DATABASE, table, tilde_encode(key))}">{escape(text)}</a>'


def _labelled_link(datasette, table: str, column: str, value: str):
    async def render():
        label = TABLE_DOCS[table][1]
        if label and label != column:
            found = (await datasette.get_database(DATABASE).execute(
                f"SELECT [{label}] FROM [{table}] WHERE [{column}] = ?", [value])).first()
            if found and found[0]:
                return Markup(f"{_link(datasette, table, value, str(found[0])[:200])}&nbsp;<em>{escape(value)}</em>")
        return Markup(_link(datasette, table, value, value))

    return render


def _register_plugin() -> None:
    if pm.get_plugin(Links.name) is None:
        pm.register(Links, name=Links.name)


def make_app(db_path: Path, lake_url: str):
    """The Datasette instance over the export, opened immutable (read-only)."""
    _register_plugin()
    return Datasette(
        immutables=[str(db_path)], metadata=metadata(lake_url),
        settings={"truncate_cells_html": 300, "default_page_size": 50, "allow_download": False},
    )


def start_url(host: str, port: int, release: str | None = None) -> str:
    base = f"http://{host}:{port}/{DATABASE}"
    if not release:
        return base
    return f"{base}/release_rows?release={quote(release, safe='')}"


def serve(db_path: Path, lake_url: str, host: str = DEFAULT_HOST, port: int = 8001, open_url: str | None = None) -> None:
    """Serve the explorer until interrupted; open `open_url` in the user's browser once it listens."""
    ds = make_app(db_path, lake_url)
    asyncio.run(ds.invoke_startup())
    if open_url:
        threading.Timer(1.0, webbrowser.open, args=(open_url,)).start()
    uvicorn.run(ds.app(), host=host, port=port, log_level="warning")
