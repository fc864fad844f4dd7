"""The attribute stage on a scripted engine over real pages, a real embedder and a real FAISS
index: a seed with no page near enough is rejected with its best score, and a scene that is
not prose is refused (after its repair attempt) instead of becoming a demonstration."""

import json

import pytest
import trafilatura

from synthq.tasks.attribute.process import prepare, process
from synthq.tasks.attribute.retrieve import build_index
from synthq.tasks.core.config import FactoryConfig
from synthq.tasks.shards.context import StageContext
from synthq.tasks.core.lake import Lake, StageResult
from synthq.tasks.core.records import DOCUMENTS, REJECTED, table
from synthq.tasks.llm.engine import Result
from synthq.tasks.sample import PAGES

import numpy as np
import pyarrow as pa

PAGES_USED = ["01-sourdough-starter.html", "05-git-rebase-vs-merge.html", "16-exposure-triangle.html"]
SCENE = "A home baker whose starter stopped rising after she moved to a colder flat wants to fix her feeding routine."
SEEDS = [
    ("bread", "My sourdough starter smells like acetone and barely rises. How should I change its feeding?",
     {"intent": "A baker wants to revive a sluggish sourdough starter.", "keywords": ["sourdough starter", "feeding", "acetone smell"]}),
    ("history", "What were the main causes of the French Revolution? I have an exam on it.",
     {"intent": "A student wants the causes of the French Revolution.", "keywords": ["French Revolution", "causes", "1789", "history"]}),
    ("camera", "What shutter speed and ISO should I use for night photos of the Milky Way?",
     {"intent": "A photographer wants exposure settings for astrophotography.", "keywords": ["exposure triangle", "ISO", "shutter speed"]}),
]


class Scripted:
    model_name = "scripted"

    def __init__(self, scene_for: dict[str, str]):
        self.scene_for, self.requests = scene_for, []

    def generate(self, requests):
        self.requests += requests
        out = []
        for r in requests:
            kind, seed = r.id.split(":")[0], r.id.split(":")[2]
            if kind == "kw":
                out.append(Result(r.id, json.dumps(_keywords(seed)), "stop", 40, 20))
            else:
                comp = {"ability": "diagnosis", "knowledge": "baking", "extra_information": "feed 1:1:1", "output": "a plan"}
                out.append(Result(r.id, json.dumps({"scene": self.scene_for[seed], "query_compositions": comp}), "stop", 400, 60))
        return out


def _keywords(seed: str) -> dict:
    return next(s[2] for s in SEEDS if s[0] == seed)


@pytest.fixture(scope="module")
def lake(tmp_path_factory) -> Lake:
    lake = Lake(str(tmp_path_factory.mktemp("lake")))
    rows = []
    for name in PAGES_USED:
        text = trafilatura.extract((PAGES / name).read_text())
        rows.append({f.name: None for f in DOCUMENTS} | {"id": name[:2], "url": f"https://sample/{name}", "title": name[3:-5], "text": text})
    docs = table([{k: v for k, v in r.items() if v is not None or k in ("id",)} for r in rows], DOCUMENTS)
    lake.write_shard("documents", "00000", StageResult(docs, REJECTED.empty_table(), {}), input_id="t", config="t")
    build_index(lake, "bundled")
    return lake


def _run(lake: Lake, scenes: dict[str, str], floor: float) -> tuple[StageResult, Scripted]:
    cfg = FactoryConfig(lake=lake.url, attribute={"min_retrieval_score": floor})
    engine = Scripted(scenes)
    ctx = StageContext(cfg=cfg, lake=lake, engine=engine)
    prepare(ctx)
    seeds = pa.Table.from_pylist([{"id": s[0], "prompt": s[1]} for s in SEEDS])
    return process(seeds, ctx), engine


def test_a_seed_without_a_near_page_is_rejected_with_its_best_score(lake):
    result, engine = _run(lake, {"bread": SCENE, "camera": SCENE}, floor=0.2)
    demos = {d["seed_id"]: d for d in result.kept.to_pylist()}
    assert set(demos) == {"bread", "camera"} and demos["bread"]["document_id"] == "01"
    (rej,) = [r for r in result.rejected.to_pylist() if r["record_id"] == "history"]
    assert rej["reason"] == "no_grounding_document" and "attribute.min_retrieval_score=0.2" in rej["detail"]
    best = float(rej["detail"].split(" scores ")[1].split(" ")[0])
    assert best < 0.2 <= min(d["retrieval_score"] for d in demos.values())
    assert not [r for r in engine.requests if r.id.startswith("gr:") and r.id.split(":")[2] == "history"]  # no grounding call spent


def test_no_floor_grounds_every_seed(lake):
    result, _ = _run(lake, {"bread": SCENE, "camera": SCENE, "history": SCENE}, floor=0.0)
    assert result.kept.num_rows == 3


def test_a_scene_that_is_not_prose_is_refused(lake):
    result, engine = _run(lake, {"bread": "sceen", "camera": "2018-04-23T19:36:27.375Z"}, floor=0.2)
    assert result.kept.num_rows == 0
    details = {r["record_id"]: r["detail"] for r in result.rejected.to_pylist()}
    assert "scene has 1 words" in details["bread"] and "after one repair attempt" in details["bread"]
    assert sum(r.id.startswith("gr:") for r in engine.requests) == 4  # two seeds, each with its repair


def test_the_index_embeds_each_documents_shard_once(tmp_path, monkeypatch):
    """Vectors are kept per documents shard: a rebuild embeds nothing, an appended shard is the
    only one embedded, a rewritten shard is embedded again, and the index equals a fresh build."""
    from synthq.tasks.attribute import retrieve
    from synthq.tasks.core import doc_vectors

    lake, embedded = Lake(str(tmp_path / "lake")), []
    real = doc_vectors.embed
    monkeypatch.setattr(doc_vectors, "embed", lambda texts, model, **kw: embedded.append(len(texts)) or real(texts, model, **kw))

    def write(shard: str, names: list[str]) -> None:
        rows = [{"id": n[:2], "url": f"https://sample/{n}", "title": n[3:-5], "text": trafilatura.extract((PAGES / n).read_text())} for n in names]
        lake.write_shard("documents", shard, StageResult(table(rows, DOCUMENTS), REJECTED.empty_table(), {}), input_id=shard, config="t")

    write("00000", PAGES_USED[:2])
    assert build_index(lake, "bundled")["documents"] == 2 and embedded == [2]
    assert build_index(lake, "bundled")["documents"] == 2 and embedded == [2]  # nothing new: nothing embedded
    write("00001", PAGES_USED[2:])
    assert build_index(lake, "bundled")["documents"] == 3 and embedded == [2, 1]  # only the appended shard
    write("00000", PAGES_USED[:1])  # re-ingested with other input: embedded anew, its old vectors dropped
    assert build_index(lake, "bundled")["documents"] == 2 and embedded == [2, 1, 1]
    assert len(lake.fs.ls(lake.path(doc_vectors.VECTORS_DIR))) == 2
    index, ids = retrieve.load_index(lake)
    assert ids.to_pylist() == ["01", "16"] and index.ntotal == 2
    fresh = real(retrieve.passages(lake.read("documents")), "bundled")
    assert np.allclose(np.stack([index.reconstruct(i) for i in range(2)]), fresh, atol=1e-5)


def test_a_run_embeds_new_shards_in_ray_tasks(tmp_path, monkeypatch, ray_local):
    """In a run the index's new shards are embedded in Ray tasks (none here in the driver), and
    their vectors are the ones the driver would compute."""
    from synthq.tasks.attribute import retrieve
    from synthq.tasks.core import doc_vectors

    lake, here = Lake(str(tmp_path / "lake")), []
    real = doc_vectors.embed
    monkeypatch.setattr(doc_vectors, "embed", lambda texts, model, **kw: here.append(len(texts)) or real(texts, model, **kw))
    rows = [{"id": n[:2], "url": f"https://sample/{n}", "title": n[3:-5], "text": trafilatura.extract((PAGES / n).read_text())} for n in PAGES_USED]
    lake.write_shard("documents", "00000", StageResult(table(rows, DOCUMENTS), REJECTED.empty_table(), {}), input_id="s", config="t")
    assert build_index(lake, "bundled", remote=True)["documents"] == 3 and here == []
    index, ids = retrieve.load_index(lake)
    fresh = real(retrieve.passages(lake.read("documents")), "bundled")
    assert ids.to_pylist() == ["01", "05", "16"] and np.allclose(np.stack([index.reconstruct(i) for i in range(3)]), fresh, atol=1e-5)
