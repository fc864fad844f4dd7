"""Synthesis requests in groups: a shared, byte-identical demonstration block per group, within
the token budget in real tokens (the bundled model's tokenizer), similar demonstrations first."""

from collections import Counter

import pytest

from synthq.tasks.core.config import FactoryConfig
from synthq.tasks.shards.context import StageContext
from synthq.tasks.core.lake import Lake
from synthq.tasks.synthesize.plan import build_requests

TOPICS = {
    "bread": "Sourdough bread rises because a starter of wild yeast and lactobacilli ferments the flour; feed the starter, knead the dough, proof it overnight and bake it in a hot Dutch oven.",
    "git": "Git rebase replays your commits on top of another branch, giving a linear history, while git merge records a merge commit; never rebase commits that others have pulled.",
    "money": "The 50/30/20 budget splits take-home pay into needs, wants and savings; track rent, groceries and debt payments, then move a fifth of each paycheck into savings.",
}


def _docs(per_topic: int, words: int = 40) -> list[dict]:
    docs = []
    for topic, text in TOPICS.items():
        for i in range(per_topic):
            body = " ".join([text] * (1 + (words * (i + 1)) // len(text.split())))
            docs.append({"id": f"{topic}{i}", "title": f"{topic.title()} notes {i}", "text": body, "url": f"https://x/{topic}{i}"})
    return docs


def _demos() -> list[dict]:
    demos = []
    for topic, text in TOPICS.items():
        for i in range(4):
            demos.append({
                "id": f"demo-{topic}{i}", "document_id": f"other-{topic}{i}", "document_text": text * 3,
                "seed_prompt": f"Help me with {topic}, question {i}.", "scene": f"A person learning about {topic}.",
                "query_compositions": {"ability": "explain", "knowledge": topic, "extra_information": "none", "output": "steps"},
            })
    return demos


def _ctx(lake_dir: str, **synthesize) -> StageContext:
    settings = {"prompt_tokens": 1400, "document_tokens": 300, "demonstration_document_tokens": 80, "group_size": 4, **synthesize}
    return StageContext(cfg=FactoryConfig(lake=lake_dir, synthesize=settings), lake=Lake(lake_dir))


def _user(plan) -> str:
    return plan.request.messages[1]["content"]


def test_groups_share_one_block_within_budget(lake_dir):
    ctx = _ctx(lake_dir)
    docs = _docs(4)
    plans = build_requests(docs, _demos(), ctx)
    assert sorted(p.doc["id"] for p in plans) == sorted(d["id"] for d in docs)
    groups = [p.group for p in plans]
    assert groups == sorted(groups) and max(Counter(groups).values()) <= 4  # members are consecutive
    for g in set(groups):
        members = [p for p in plans if p.group == g]
        assert len({p.request.group for p in members}) == 1
        assert len({tuple(p.demonstration_ids) for p in members}) == 1
        block = _user(members[0]).split("## New document")[0]
        assert block and all(_user(p).startswith(block) for p in members)  # byte-identical prefix
        assert len({p.request.messages[0]["content"] for p in members}) == 1  # system prompt first
        assert len({p.doc["id"].rstrip("0123456789") for p in members}) == 1  # similar documents together
    for p in plans:
        assert ctx.tokens.count_messages(p.request.messages) <= 1400  # the longest document of the group fits too
        assert p.request.id.startswith("syn:synthesize@")


def test_similar_demonstrations_come_first_and_mix_with_random_ones(lake_dir):
    plans = build_requests(_docs(4), _demos(), _ctx(lake_dir, max_demonstrations=4, prompt_tokens=3000))
    for p in plans:
        topic = p.doc["id"].rstrip("0123456789")
        ids = p.demonstration_ids
        assert len(ids) == 4 and ids[0].startswith(f"demo-{topic}") and ids[2].startswith(f"demo-{topic}")
    all_similar = build_requests(_docs(4), _demos(), _ctx(lake_dir, max_demonstrations=4, prompt_tokens=3000, similar_fraction=1.0))
    for p in all_similar:
        assert all(i.startswith(f"demo-{p.doc['id'].rstrip('0123456789')}") for i in p.demonstration_ids)


def test_seeded_and_per_document_draw_when_group_size_is_one(lake_dir):
    first = build_requests(_docs(3), _demos(), _ctx(lake_dir))
    again = build_requests(_docs(3), _demos(), _ctx(lake_dir))
    assert [p.request.messages for p in first] == [p.request.messages for p in again]
    single = build_requests(_docs(3), _demos(), _ctx(lake_dir, group_size=1, similar_fraction=0.0))
    assert len({p.group for p in single}) == 9 and [p.doc["id"] for p in single] == [d["id"] for d in _docs(3)]
    assert len({tuple(p.demonstration_ids) for p in single}) > 1  # each document draws its own
    long = build_requests(_docs(1, words=600), _demos(), _ctx(lake_dir))
    assert all(_user(p).split("## New document")[1].rstrip().endswith("…\n</document>") for p in long)  # cut by tokens


def test_demonstrations_of_the_groups_own_documents_are_left_out(lake_dir):
    demos = _demos()
    docs = _docs(2)
    demos[0]["document_id"] = docs[0]["id"]  # a bread demonstration grounded in bread0 itself
    plans = build_requests(docs, demos, _ctx(lake_dir, similar_fraction=1.0))
    shown = {i for p in plans if p.doc["id"] in ("bread0", "bread1") for i in p.demonstration_ids}
    assert demos[0]["id"] not in shown and shown


def test_demonstration_blocks_are_rendered_and_counted_once_per_run(lake_dir, monkeypatch):
    from synthq.tasks.core.prompts import load_prompt
    from synthq.tasks.synthesize import plan

    ctx, demos, prompt = _ctx(lake_dir), _demos(), load_prompt(plan.PROMPT)
    first = plan.demonstration_blocks(prompt, demos, ctx)
    assert len(ctx.lake.fs.ls(ctx.lake.path(plan.BLOCKS_DIR))) == 1

    def no_rendering(*args, **kwargs):
        raise AssertionError("rendered again")

    monkeypatch.setattr(plan, "render_demonstration", no_rendering)
    other_shard = StageContext(cfg=ctx.cfg, lake=Lake(lake_dir))  # another shard of the run, in another worker
    assert plan.demonstration_blocks(prompt, demos, other_shard) == first
    assert plan.build_requests(_docs(2), demos, other_shard)  # a shard's requests use the kept blocks
    changed = [{**demos[0], "scene": "A different person."}] + demos[1:]  # regrounded: rendered anew
    with pytest.raises(AssertionError, match="rendered again"):
        plan.demonstration_blocks(prompt, changed, other_shard)


def test_documents_are_grouped_with_the_vectors_attribution_kept(lake_dir, monkeypatch):
    """A documents shard that attribution's index embedded is not embedded again by synthesis:
    its kept vectors are read, in the documents' order; a shard without them is embedded."""
    import numpy as np

    from synthq.tasks.core import doc_vectors
    from synthq.tasks.core.lake import StageResult
    from synthq.tasks.core.records import DOCUMENTS, REJECTED, table
    from synthq.tasks.synthesize import plan

    ctx, docs = _ctx(lake_dir), _docs(2)
    ctx.lake.write_shard("documents", "00000", StageResult(table(docs, DOCUMENTS), REJECTED.empty_table()), input_id="i", config="c")
    embedded, real = [], plan.embed
    monkeypatch.setattr(plan, "embed", lambda texts, model, **kw: embedded.append(len(texts)) or real(texts, model, **kw))
    fresh, _ = plan.embeddings(docs[::-1], [], ctx)  # no shard named: embedded here
    assert embedded == [len(docs)]
    doc_vectors.embed_missing(ctx.lake, ctx.lake.manifests("documents"), ctx.cfg.embedder, remote=False)
    ctx.shard = "00000"
    kept, _ = plan.embeddings(docs[::-1], [], ctx)
    assert embedded == [len(docs)] and np.allclose(kept, fresh, atol=1e-5)


def test_constraints_are_drawn_per_document_stated_after_it_and_counted_in_the_budget(lake_dir):
    docs = _docs(4)
    plans = build_requests(docs, _demos(), _ctx(lake_dir, constraints={"enabled": True, "share": 0.5, "max_per_query": 2}))
    constrained = [p for p in plans if p.constraints]
    assert 0 < len(constrained) < len(plans)  # a share of the documents
    assert all(1 <= len(p.constraints) <= 2 for p in constrained)
    again = build_requests(docs, _demos(), _ctx(lake_dir, constraints={"enabled": True, "share": 0.5, "max_per_query": 2}))
    assert [p.constraints for p in again] == [p.constraints for p in plans]  # seeded by the document: a rerun draws the same
    from synthq.tasks.core.constraints import describe

    for p in constrained:
        user = _user(p)
        # after the document, so the group's shared block before it stays byte-identical
        assert user.index("</document>") < min(user.index(describe(c)) for c in p.constraints)
    for p in plans:
        if not p.constraints:
            assert "must also ask" not in _user(p)
    ctx = _ctx(lake_dir, constraints={"enabled": True, "share": 1.0, "max_per_query": 3})
    for p in build_requests(docs, _demos(), ctx):
        assert ctx.tokens.count_messages(p.request.messages) <= ctx.cfg.synthesize.prompt_tokens
    assert not [p for p in build_requests(docs, _demos(), _ctx(lake_dir)) if p.constraints]  # off by default


class StatesEveryOther:
    """Writes each query from its request: the constraints' statements copied in for every other
    document, left out for the rest."""

    model_name = "scripted"

    def generate(self, requests):
        import json

        from synthq.tasks.llm.engine import Result

        out = []
        for k, r in enumerate(requests):
            user = r.messages[-1]["content"]
            rules = [line[2:] for line in user.split("must also ask", 1)[-1].splitlines() if line.startswith("- ")] if "must also ask" in user else []
            query = "Plan a week of feeding for my sourdough starter while I travel for work."
            if k % 2 == 0:
                query += " " + " ".join(rules)
            comp = {"ability": "planning", "knowledge": "baking", "extra_information": "none", "output": "a plan"}
            out.append(Result(r.id, json.dumps({"thought": "t", "scene": "A baker who travels for work and keeps a starter at home.",
                                                "query_compositions": comp, "query": query}), "stop", 100, 50))
        return out


def test_a_query_that_does_not_state_its_constraints_is_rejected_with_the_kinds_named(lake_dir):
    import pyarrow as pa

    from synthq.tasks.synthesize.process import process

    ctx = _ctx(lake_dir, constraints={"enabled": True, "share": 1.0, "max_per_query": 2})
    ctx.engine, ctx.extras["demonstrations"] = StatesEveryOther(), _demos()
    result = process(pa.Table.from_pylist(_docs(2)), ctx)
    kept, rejected = result.kept.to_pylist(), result.rejected.to_pylist()
    assert kept and rejected and len(kept) + len(rejected) == 6
    assert {r["reason"] for r in rejected} == {"constraint_not_stated"}
    assert all("the query does not state " in r["detail"] for r in rejected)
    for row in kept:  # recorded as data: kind and arguments (JSON), and stated in the query's text
        assert row["constraints"] and all(c["kind"] and c["args"].startswith("{") for c in row["constraints"])
        from synthq.tasks.core.constraints import stated

        assert all(stated(c, row["query"]) for c in row["constraints"])


def test_with_unstated_append_the_missing_statements_are_added_and_marked(lake_dir):
    import pyarrow as pa

    from synthq.tasks.core.constraints import check, describe, stated
    from synthq.tasks.synthesize.process import process

    ctx = _ctx(lake_dir, constraints={"enabled": True, "share": 1.0, "max_per_query": 2, "unstated": "append"})
    ctx.engine, ctx.extras["demonstrations"] = StatesEveryOther(), _demos()
    result = process(pa.Table.from_pylist(_docs(2)), ctx)
    kept = result.kept.to_pylist()
    assert len(kept) == 6 and not result.rejected.num_rows
    marks = [c["stated"] for row in kept for c in row["constraints"]]
    assert "model" in marks and "appended" in marks
    assert result.stats["constraints_stated"] == {"model": marks.count("model"), "appended": marks.count("appended")}
    for row in kept:
        assert all(stated(c, row["query"]) for c in row["constraints"])
        for c in row["constraints"]:
            if c["stated"] == "appended":
                assert row["query"].endswith(describe(c)) or describe(c) in row["query"]
    assert check([], "anything") == []
