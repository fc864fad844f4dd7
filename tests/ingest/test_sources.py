"""Planning the ingest: sources to units and shards, crawl seeds, names and input ids."""

from __future__ import annotations

import json
import os
import uuid

import fsspec
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from synthq.tasks.core.config import IngestConfig
from synthq.tasks.core.errors import InputError
from synthq.tasks.ingest.sources import is_crawl_seed, plan

CFG = IngestConfig()


def _jsonl(path, rows: int, column: str = "text") -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps({column: f"row {i}"}) + "\n" for i in range(rows)))
    return str(path)


def _tree(root):
    """A folder of every kind of input, nested, with two files of unknown types."""
    (root / "site" / "deep").mkdir(parents=True)
    for name in ("site/a.html", "site/deep/b.htm", "site/deep/c.HTML"):
        (root / name).write_text("<html><body><p>page</p></body></html>")
    (root / "crawl").mkdir()
    (root / "crawl" / "x.warc.gz").write_bytes(b"not read while planning")
    (root / "crawl" / "y.wet").write_bytes(b"not read while planning")
    _jsonl(root / "tables" / "t.jsonl", 25)
    pq.write_table(pa.table({"html": ["<p>x</p>"] * 7, "url": ["https://e.example/"] * 7}), root / "tables" / "p.parquet")
    (root / "notes.txt").write_text("ignored")
    (root / "site" / "logo.png").write_bytes(b"\x89PNG")
    return root


def test_folder_is_walked_and_each_kind_is_planned(tmp_path):
    found = plan([str(_tree(tmp_path))], CFG, shard_size=10)
    assert found.summary == {"html": 3, "warc": 2, "table": 2, "hf": 0, "ignored": 2}
    assert found.crawl_seeds == []
    by_kind = {}
    for name, _, units in found.shards:
        assert name.startswith(units[0]["kind"] + "-")
        assert {u["kind"] for u in units} == {units[0]["kind"]}
        by_kind.setdefault(units[0]["kind"], []).append(units)
    assert [len(us) for us in by_kind["html"]] == [3]
    assert [len(us) for us in by_kind["warc"]] == [1, 1]  # one shard per WARC/WET file
    ranges = [(os.path.basename(u["uri"]), u["start"], u["stop"]) for us in by_kind["table"] for u in us]
    assert ranges == [("p.parquet", 0, 7), ("t.jsonl", 0, 10), ("t.jsonl", 10, 20), ("t.jsonl", 20, 25)]
    assert all(u["uri"].startswith(str(tmp_path)) for _, _, us in found.shards for u in us)


def test_small_tables_share_a_shard_up_to_shard_size_rows(tmp_path):
    for i in range(5):
        _jsonl(tmp_path / f"t{i}.jsonl", 4)
    found = plan([str(tmp_path)], CFG, shard_size=10)
    assert [[u["stop"] - u["start"] for u in units] for _, _, units in found.shards] == [[4, 4], [4, 4], [4]]


def test_globs_recursive_and_not(tmp_path):
    _tree(tmp_path)
    found = plan([str(tmp_path / "**" / "*.htm*")], CFG, shard_size=10)
    assert found.summary["html"] == 2  # a.html, b.htm (c.HTML: the glob is case-sensitive)
    found = plan([str(tmp_path / "crawl" / "*")], CFG, shard_size=10)
    assert found.summary["warc"] == 2 and found.summary["html"] == 0


def test_sources_that_match_nothing_say_what_was_expected(tmp_path):
    (tmp_path / "only.txt").write_text("x")
    with pytest.raises(InputError, match="unknown types.*expected HTML"):
        plan([str(tmp_path)], CFG, 10)
    with pytest.raises(InputError, match="does not exist"):
        plan([str(tmp_path / "missing")], CFG, 10)
    with pytest.raises(InputError, match="empty source"):
        plan([" "], CFG, 10)
    with pytest.raises(InputError, match=r"\*.jsonl' holds no files"):
        plan([str(tmp_path / "*.jsonl")], CFG, 10)


def test_same_input_same_shards_and_a_touched_file_changes_the_input_id(tmp_path):
    _tree(tmp_path)
    first = plan([str(tmp_path)], CFG, 10).shards
    assert plan([str(tmp_path)], CFG, 10).shards == first
    assert len({name for name, _, _ in first}) == len(first)
    page = tmp_path / "site" / "a.html"
    os.utime(page, (1_000_000, 1_000_000))
    second = plan([str(tmp_path)], CFG, 10).shards
    assert [name for name, _, _ in second] == [name for name, _, _ in first]
    changed = [a[1] != b[1] for a, b in zip(first, second)]
    assert changed.count(True) == 1 and any(u["uri"] == str(page) for u in first[changed.index(True)][2])


def test_a_file_named_twice_is_read_once(tmp_path):
    _tree(tmp_path)
    once = plan([str(tmp_path)], CFG, 10)
    twice = plan([str(tmp_path), str(tmp_path / "site" / "a.html"), str(tmp_path / "**")], CFG, 10)
    assert twice.shards == once.shards and twice.summary == once.summary


def test_sample_is_the_bundled_pages():
    found = plan(["sample"], CFG, shard_size=16)
    assert found.summary["html"] == 38
    assert [len(units) for _, _, units in found.shards] == [16, 16, 6]
    assert all(u["uri"].endswith(".html") and u["stop"] == -1 for _, _, us in found.shards for u in us)


def test_crawl_seeds_from_urls_and_seed_files(tmp_path):
    seeds = tmp_path / "seeds.txt"
    seeds.write_text("# docs to crawl\nhttps://a.example/docs\n\n  https://b.example/  # home\nhttps://a.example/docs\n")
    found = plan(["https://c.example/", f"urls:{seeds}", "sample"], CFG, 100)
    assert found.crawl_seeds == ["https://c.example/", "https://a.example/docs", "https://b.example/"]
    assert found.summary["html"] == 38
    assert is_crawl_seed("http://a.example/blog/") and is_crawl_seed("https://a.example/page?id=3")
    assert is_crawl_seed("https://x.example/p.html")  # a web page is crawled, behind the address guard
    for url in ("https://data.example/cc/x.warc.gz", "https://data.example/a.jsonl"):
        assert not is_crawl_seed(url)
    assert not is_crawl_seed("/data/pages")
    (tmp_path / "empty.txt").write_text("# nothing yet\n\n")
    with pytest.raises(InputError, match="holds no URLs"):
        plan([f"urls:{tmp_path / 'empty.txt'}"], CFG, 10)
    seeds.write_text("ftp://a.example/\n")
    with pytest.raises(InputError, match="line 1.*not an http"):
        plan([f"urls:{seeds}"], CFG, 10)


def test_table_without_text_or_html_column_is_refused_at_plan_time(tmp_path):
    _jsonl(tmp_path / "t.jsonl", 3, column="body")
    with pytest.raises(InputError) as err:
        plan([str(tmp_path / "t.jsonl")], CFG, 10)
    assert "columns: body" in str(err.value) and "ingest.text_column" in str(err.value)
    assert plan([str(tmp_path / "t.jsonl")], IngestConfig(text_column="body"), 10).summary["table"] == 1
    pq.write_table(pa.table({"content": ["x"]}), tmp_path / "p.parquet")
    with pytest.raises(InputError, match="columns: content.*ingest.html_column"):
        plan([str(tmp_path / "p.parquet")], CFG, 10)
    (tmp_path / "a.json").write_text('[{"text": "x"}]\n')
    with pytest.raises(InputError, match="JSON array"):
        plan([str(tmp_path / "a.json")], CFG, 10)


def test_hf_dataset_saved_to_disk(tmp_path):
    from datasets import Dataset, DatasetDict

    rows = {"text": [f"t{i}" for i in range(12)], "url": [f"https://e.example/{i}" for i in range(12)]}
    Dataset.from_dict(rows).save_to_disk(str(tmp_path / "ds"))
    found = plan([f"hf:{tmp_path / 'ds'}"], CFG, shard_size=5)
    assert found.summary["hf"] == 1
    units = [u for _, _, us in found.shards for u in us]
    assert [(u["uri"], u["start"], u["stop"]) for u in units] == [(f"hf:{tmp_path / 'ds'}", s, min(s + 5, 12)) for s in (0, 5, 10)]
    DatasetDict({"train": Dataset.from_dict(rows), "test": Dataset.from_dict({"html": ["<p>x</p>"]})}).save_to_disk(str(tmp_path / "dd"))
    found = plan([f"hf:{tmp_path / 'dd'}"], CFG, shard_size=100)
    assert sorted(u["uri"] for _, _, us in found.shards for u in us) == [f"hf:{tmp_path / 'dd'}#test", f"hf:{tmp_path / 'dd'}#train"]
    only = plan([f"hf:{tmp_path / 'dd'}#test"], CFG, shard_size=100)
    assert [u["uri"] for _, _, us in only.shards for u in us] == [f"hf:{tmp_path / 'dd'}#test"]


def _cache_as_hub_dataset(tmp_path, name: str) -> str:
    """A dataset in the local HF cache as if `load_dataset(name)` had run where the Hub was reachable."""
    import datasets

    (tmp_path / "d.jsonl").write_text("".join(json.dumps({"text": f"cached {i}"}) + "\n" for i in range(3)))
    cache = tmp_path / "cache"
    datasets.load_dataset("json", data_files=str(tmp_path / "d.jsonl"), cache_dir=str(cache))
    owner, short = name.split("/")
    (cache / "json").rename(cache / f"{owner}___{short}")
    for config in (cache / f"{owner}___{short}").glob("default-*"):
        config.rename(config.parent / "default")
    for arrow in (cache / f"{owner}___{short}").rglob("json-*.arrow"):
        arrow.rename(arrow.parent / arrow.name.replace("json-", f"{short}-"))
    return str(cache)


def test_hf_name_from_the_offline_cache(tmp_path, monkeypatch):
    import datasets

    from synthq.tasks.ingest.readers import read_units

    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", _cache_as_hub_dataset(tmp_path, "someone/tiny"))
    found = plan(["hf:someone/tiny"], CFG, 10)
    assert found.summary["hf"] == 1
    units = found.shards[0][2]
    assert [(u["uri"], u["start"], u["stop"]) for u in units] == [("hf:someone/tiny#train", 0, 3)]
    assert [p.text for p in read_units(units, CFG)] == ["cached 0", "cached 1", "cached 2"]


def test_hf_name_not_in_the_offline_cache_says_only_local_datasets_work():
    with pytest.raises(InputError, match="Only local or cached datasets work here"):
        plan(["hf:nobody-synthq/not-a-dataset"], CFG, 10)


def test_remote_folder_through_fsspec():
    fs = fsspec.filesystem("memory")
    root = f"/synthq-{uuid.uuid4().hex}"
    fs.pipe(f"{root}/pages/a.html", b"<p>a</p>")
    fs.pipe(f"{root}/t.jsonl", b'{"text": "x"}\n{"text": "y"}\n')
    fs.pipe(f"{root}/cc/z.warc.gz", b"not read")
    try:
        found = plan([f"memory://{root}"], CFG, 10)
        uris = sorted(u["uri"] for _, _, us in found.shards for u in us)
        assert uris == [f"memory://{root}/cc/z.warc.gz", f"memory://{root}/pages/a.html", f"memory://{root}/t.jsonl"]
        assert all(u["stamp"] for _, _, us in found.shards for u in us)
        fs.pipe(f"{root}/pages/a.html", b"<p>changed</p>")
        again = plan([f"memory://{root}"], CFG, 10)
        assert [s[0] for s in again.shards] == [s[0] for s in found.shards]
        assert [s[1] for s in again.shards] != [s[1] for s in found.shards]
    finally:
        fs.rm(root, recursive=True)
