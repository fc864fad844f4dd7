"""Releases: immutable versions, loadable with datasets, DuckDB and Polars, with a card and catalog."""

from pathlib import Path

import pyarrow as pa
import pytest
import yaml

from synthq.tasks.core.errors import LakeError
from synthq.tasks.core.lake import Lake
from synthq.tasks.core.records import CURATED
from synthq.tasks.publish.catalog import local_catalog, releases
from synthq.tasks.publish.release import publish
from tests.curate.test_select import _row

STAGES = {"ingest": {"kept": 2, "rejected": 1, "reasons": {"too_short": 1}}}


def _data(n: int) -> pa.Table:
    return pa.Table.from_pylist([_row(i, f"Query number {i} about something specific.", i % 8) for i in range(n)], schema=CURATED)


def test_versions_grow_and_load_everywhere(lake_dir):
    lake = Lake(lake_dir)
    v1 = publish(lake, "demo", _data(3), STAGES, {"k": 1}, "abc")
    v2 = publish(lake, "demo", _data(5), STAGES, {"k": 1}, "abc")
    assert (v1["version"], v2["version"]) == (1, 2)
    assert v2["parent"] == "v1"
    assert v1["since_parent"] == {"added": 3, "removed": 0}
    assert v2["since_parent"] == {"added": 2, "removed": 0}  # rows q0-q2 were in v1 already
    assert v2["code_version"].startswith("0.1.0")
    data_dir = Path(v2["path"]) / "data"

    import datasets
    import duckdb
    import polars

    ds = datasets.load_dataset("parquet", data_dir=str(data_dir), split="train")
    assert ds.num_rows == 5 and ds[0]["query_compositions"]["ability"] == ""
    assert duckdb.sql(f"select count(*) from '{data_dir}/*.parquet'").fetchall() == [(5,)]
    assert polars.read_parquet(f"{data_dir}/*.parquet").height == 5
    assert pa.parquet.read_table(Path(v1["path"]) / "data").num_rows == 3  # v1 untouched

    card = (Path(v2["path"]) / "README.md").read_text()
    header = yaml.safe_load(card.split("---")[1])
    assert header["configs"] == [{"config_name": "queries", "default": True, "data_files": [{"split": "train", "path": "data/*.parquet"}]}]
    assert header["dataset_info"][0]["splits"][0]["num_examples"] == 5
    names = [f["name"] for f in header["dataset_info"][0]["features"]]
    assert names == CURATED.names
    assert "too_short: 1" in card
    from huggingface_hub import DatasetCard

    hub_card = DatasetCard.load(Path(v2["path"]) / "README.md")  # as the Hub reads it
    assert hub_card.data.configs == header["configs"] and hub_card.data.pretty_name == "demo v2"
    assert hub_card.data.dataset_info[0]["splits"][0]["num_bytes"] == v2["bytes"]
    assert hub_card.text.lstrip().startswith("# demo v2")
    assert "Parent release: v1 (2 rows added, 0 removed since it)" in card

    with local_catalog(lake) as path:
        rows = releases(path, "demo")
    assert [(r["version"], r["rows"], r["parent"]) for r in rows] == [(1, 3, None), (2, 5, 1)]


def test_empty_or_badly_named_release_is_refused(lake_dir):
    lake = Lake(lake_dir)
    with pytest.raises(LakeError, match="Nothing to publish"):
        publish(lake, "demo", _data(0), STAGES, {}, "x")
    with pytest.raises(LakeError, match="Release name"):
        publish(lake, "../evil", _data(1), STAGES, {}, "x")


def test_release_on_a_remote_lake():
    """Any fsspec lake works: here an in-memory filesystem stands for an object store."""
    lake = Lake("memory://synthq-test-lake")
    publish(lake, "demo", _data(2), STAGES, {}, "x")
    info = publish(lake, "demo", _data(4), STAGES, {}, "x")
    assert info["path"].endswith("releases/demo/v2")
    with lake.fs.open(f"{info['path']}/data/train-00000-of-00001.parquet", "rb") as f:
        assert pa.parquet.read_table(f).num_rows == 4
    with local_catalog(lake) as path:
        assert [r["version"] for r in releases(path, "demo")] == [1, 2]


def test_release_records_tokens_sources_and_indexes_its_rows(lake_dir):
    from synthq.tasks.core.neardup import IndexSpec
    from synthq.tasks.core.release_index import ReleaseIndex

    lake = Lake(lake_dir)
    index = ReleaseIndex(lake, "demo", IndexSpec(1000, 4), "bundled")
    info = publish(lake, "demo", _data(3), STAGES, {}, "x", count_tokens=lambda q: len(q.split()), index=index)
    assert info["tokens"] == 3 * 6 and info["indexed"] == info["embedded"] == 3
    assert info["sources"] == {"sites": 1, "top": {"x.example": 3}}
    card = (Path(info["path"]) / "README.md").read_text()
    assert "## Sources" in card and "| x.example | 3 |" in card and "18 query tokens" in card
    info = publish(lake, "demo", _data(5), STAGES, {}, "x", count_tokens=lambda q: 1, index=index)
    assert info["indexed"] == info["embedded"] == 2  # only the rows v2 added are embedded
    with local_catalog(lake) as path:
        assert [r["tokens"] for r in releases(path, "demo")] == [18, 5]
    reopened = ReleaseIndex(lake, "demo", IndexSpec(1000, 4), "bundled")
    assert reopened.versions == [1, 2] and reopened.released([f"q{i}" for i in range(6)]).tolist() == [True] * 5 + [False]


def test_release_index_takes_the_vectors_curation_screened_and_embeds_only_the_rest(lake_dir):
    """A query is embedded once: publish indexes the vectors `screen` kept in the lake; a row
    no screened file holds is embedded, so the index is complete either way."""
    import numpy as np

    from synthq.tasks.core.config import CurateConfig
    from synthq.tasks.core.embeddings import embed
    from synthq.tasks.core.neardup import IndexSpec
    from synthq.tasks.core.release_index import ReleaseIndex
    from synthq.tasks.curate.select import ScreenedVectors, screen

    lake = Lake(lake_dir)
    data = _data(5)
    known = []
    for i, part in enumerate((data.slice(0, 2), data.slice(2, 2))):  # two scored shards' screens; q4 in none
        known.append(lake.path("indexes", "curate", "screened", f"{i}.npz"))
        lake.write_bytes(known[-1], screen(part, CurateConfig(min_score=0), "bundled").to_bytes())
    index = ReleaseIndex(lake, "demo", IndexSpec(1000, 4), "bundled")
    info = publish(lake, "demo", data, STAGES, {}, "x", index=index, known=ScreenedVectors(lake, known))
    assert info["indexed"] == 5 and info["embedded"] == 1
    queries = data.column("query").to_pylist()
    for i, q in enumerate(queries):  # every row finds itself, through the screened or the embedded vector
        (match,) = index.nearest(embed([q], "bundled"), 0.99)
        assert match.release_id == f"q{i}" and match.version == 1


def test_catalog_written_before_token_counts_still_opens(lake_dir):
    import sqlite3

    lake = Lake(lake_dir)
    Path(lake_dir).mkdir(parents=True, exist_ok=True)
    old = sqlite3.connect(Path(lake_dir) / "catalog.sqlite")
    old.execute(
        "CREATE TABLE releases (name TEXT NOT NULL, version INTEGER NOT NULL, path TEXT NOT NULL, rows INTEGER NOT NULL, "
        "documents INTEGER NOT NULL, parent INTEGER, config_digest TEXT NOT NULL, created_at REAL NOT NULL, PRIMARY KEY (name, version))"
    )
    old.execute("INSERT INTO releases VALUES ('older', 1, 'p', 3, 3, NULL, 'x', 0)")
    old.commit()
    old.close()
    publish(lake, "demo", _data(2), STAGES, {}, "x", count_tokens=lambda q: 1)
    with local_catalog(lake) as path:
        rows = releases(path)
    assert [(r["name"], r["tokens"]) for r in rows] == [("demo", 2), ("older", None)]


def test_a_release_moved_into_place_without_its_catalog_row_is_recorded_by_the_next_publish(lake_dir, caplog):
    """A publish killed after moving v1 into place and before writing its catalog row: the
    next publish records v1 from its stats.json, then itself as v2."""
    import sqlite3

    lake = Lake(lake_dir)
    publish(lake, "demo", _data(3), STAGES, {}, "abc", count_tokens=lambda q: 2)
    with sqlite3.connect(Path(lake_dir) / "catalog.sqlite") as conn:
        conn.execute("DELETE FROM releases")
    with caplog.at_level("WARNING", logger="synthq.publish"):
        v2 = publish(lake, "demo", _data(5), STAGES, {}, "abc")
    assert v2["version"] == 2 and "demo/v1 had no catalog row" in caplog.text
    with local_catalog(lake) as path:
        rows = releases(path, "demo")
    assert [(r["version"], r["rows"], r["tokens"], r["parent"], r["config_digest"]) for r in rows] == [(1, 3, 6, None, "abc"), (2, 5, None, 1, "abc")]
    assert rows[0]["path"].endswith("releases/demo/v1")


def test_push_to_hub_uploads_the_release_folder(lake_dir, monkeypatch):
    from synthq.tasks.core.errors import ConfigError
    from synthq.tasks.publish.hub import hub_token, push_release

    monkeypatch.delenv("HF_TOKEN", raising=False)
    with pytest.raises(ConfigError, match="HF_TOKEN"):
        hub_token("HF_TOKEN")
    monkeypatch.setenv("HF_TOKEN", "secret")

    class Api:
        calls = []

        def create_repo(self, repo, **kw):
            self.calls.append(("create", repo, kw["repo_type"], kw["private"]))

        def upload_folder(self, **kw):
            files = sorted(str(p.relative_to(kw["folder_path"])) for p in Path(kw["folder_path"]).rglob("*") if p.is_file())
            self.calls.append(("upload", kw["repo_id"], kw["commit_message"], files))

    for lake in (Lake(lake_dir), Lake("memory://synthq-hub-lake")):
        info = publish(lake, "demo", _data(2), STAGES, {}, "x")
        api = Api()
        url = push_release(lake, info["path"], "me/demo", hub_token("HF_TOKEN"), api=api)
        assert url == "https://huggingface.co/datasets/me/demo"
        assert api.calls[0] == ("create", "me/demo", "dataset", True)
        assert api.calls[1][:3] == ("upload", "me/demo", f"synthq release v{info['version']}")
        assert {"README.md", "data/train-00000-of-00001.parquet", "stats.json"} <= set(api.calls[1][3])
        Api.calls = []


def test_a_publish_removes_what_a_killed_publish_left_but_not_one_in_progress(lake_dir, caplog):
    import os
    import time

    lake = Lake(lake_dir)
    folder = Path(lake_dir) / "releases" / "demo"
    old, live, empty = folder / ".staging-old", folder / ".staging-live", folder / ".staging-empty"
    for f in (old / "data", live / "data"):
        f.mkdir(parents=True)
        (f / "part-0.parquet").write_bytes(b"half a file")
    empty.mkdir()
    hours_ago = time.time() - 7 * 3600
    for p in (old / "data" / "part-0.parquet", old / "data", old, empty):
        os.utime(p, (hours_ago, hours_ago))
    info = publish(lake, "demo", _data(2), STAGES, {}, "x")
    assert info["version"] == 1 and not old.exists() and not empty.exists() and live.exists()
    assert "demo/.staging-old: an unfinished publish" in caplog.text


def test_the_cli_shows_a_release_from_its_first_rows(lake_dir, capsys):
    from synthq.flows.cli import _show_release
    from synthq.tasks.core.config import FactoryConfig

    info = publish(Lake(lake_dir), "demo", _data(5), STAGES, {}, "x")
    _show_release(info, FactoryConfig(lake=lake_dir))
    out = capsys.readouterr().out
    assert "Release demo/v1" in out and "Query number 0" in out and "Query number 3" not in out  # three rows shown
