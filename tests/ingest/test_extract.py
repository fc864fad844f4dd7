import pytest

from tasks.core.config import FactoryConfig, IngestConfig
from tasks.core.context import StageContext
from tasks.core.errors import InputError
from tasks.core.lake import Lake
from tasks.core.stage import run_shard
from tasks.ingest.extract import extract_page
from tasks.ingest.process import STAGE_SPEC, drop_cross_shard_duplicates, file_specs, list_pages
from tasks.sample import PAGES

CFG = IngestConfig()


def test_sample_page_main_text_without_chrome():
    doc, rej = extract_page(str(PAGES / "01-sourdough-starter.html"), CFG)
    assert rej is None
    assert doc["url"].startswith("https://kitchen-notes.example/")
    assert doc["n_words"] > 300
    assert "starter" in doc["text"].lower()
    assert "Sponsored" not in doc["text"] and "Privacy" not in doc["text"]


@pytest.mark.parametrize(
    "content, reason",
    [
        (b"", "empty_page"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)), "binary_content"),
        (b"<html><body><script>var a=1;</script></body></html>", "no_main_text"),
        (b"<html><body><p>Only a few words here.</p></body></html>", "too_short"),
        (b"<<<>>><html<body><p>broken <b>tags</i> everywhere</div>", None),
    ],
)
def test_bad_pages_are_rejected_with_reason(tmp_path, content, reason):
    page = tmp_path / "p.html"
    page.write_bytes(content)
    doc, rej = extract_page(str(page), CFG)
    assert doc is None
    if reason:
        assert rej["reason"] == reason
    assert rej["stage"] == "ingest" and rej["detail"] and rej["record_id"] == str(page)


def test_unreadable_file_is_rejected(tmp_path):
    doc, rej = extract_page(str(tmp_path / "gone.html"), CFG)
    assert doc is None and rej["reason"] == "unreadable"


def test_no_pages_is_a_clear_error(tmp_path):
    with pytest.raises(InputError, match="No HTML files"):
        list_pages(str(tmp_path))


def test_ingest_shards_and_cross_shard_duplicates(sample_subset, lake_dir):
    pages, _ = sample_subset
    cfg = FactoryConfig(lake=lake_dir, shard_size=3, ingest={"pages": str(pages)})
    specs = file_specs(cfg)
    assert len(specs) == 3
    for spec in specs:
        run_shard(STAGE_SPEC, spec, cfg, None)
    lake = Lake(lake_dir)
    assert drop_cross_shard_duplicates(lake) == 1
    report = lake.report("documents")
    assert report["kept"] == 6
    assert report["reasons"] == {"too_short": 1, "duplicate": 1}
    ids = lake.read("documents").column("id").to_pylist()
    assert len(ids) == len(set(ids))
    # a rerun finds every shard finished and writes nothing new
    again = [run_shard(STAGE_SPEC, spec, cfg, None) for spec in specs]
    assert all(row["skipped"] for row in again)
    assert drop_cross_shard_duplicates(lake) == 0
    assert lake.read("documents").column("id").to_pylist() == ids


def test_context_carries_config(lake_dir):
    ctx = StageContext(cfg=FactoryConfig(lake=lake_dir), lake=Lake(lake_dir))
    assert ctx.model_name == "SmolLM2-135M-Instruct"
