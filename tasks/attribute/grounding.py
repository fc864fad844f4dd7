"""Finding each seed's grounding document, by `attribute.retrieval` mode.

    dense   the document nearest to the query in embedding cosine (FAISS over the corpus)
    bm25    the best BM25 match of the query's words (bm25s over the corpus)
    hybrid  reciprocal-rank fusion: each of the two lists (top `fusion_depth`) gives a document
            1/(rrf_k + rank); the highest sum wins, ties going to the better dense rank
    search  the keywords go to a web search API (`synthq.tasks.attribute.search`); its top hits are
            fetched by the crawler and cleaned like any ingested page (`synthq.tasks.ingest.web`, lent by the flow), the
            first that survives grounds the seed, and every fetched page joins `documents`

What each demonstration records of its retrieval:

    retrieval_score       the dense cosine between the query and the chosen document, in every
                          mode, so a cosine floor means the same whichever mode chose
    retrieval_rank_score  what the mode ranked by: the cosine (dense), the BM25 score (bm25),
                          the fused 1/(rrf_k + rank) sum (hybrid), 1/rank among the hits (search)
    retrieval             the mode; retrieval_provider: faiss, bm25s, faiss+bm25s or the search
                          provider (kind:host); retrieval_query: the text retrieval was given

A seed whose retrieval finds nothing (no query word in the corpus for bm25, no hit that
survives fetching and filters for search) is rejected as `no_grounding_document`, saying why.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections import Counter
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa

from synthq.tasks.attribute import lexical
from synthq.tasks.attribute.retrieve import cosine, dense_search
from synthq.tasks.core.embeddings import embed, passage
from synthq.tasks.core.idset import IdSet
from synthq.tasks.shards.context import StageContext
from synthq.tasks.core.lake import Lake, StageResult
from synthq.tasks.core.records import DOCUMENTS, REJECTED, rejection, table

STAGE = "attribute"
SEARCH_SHARD = "search-"  # the name of a documents shard of pages searches fetched begins so
PROVIDERS = {"dense": "faiss", "bm25": "bm25s", "hybrid": "faiss+bm25s"}
DOCUMENT_COLUMNS = ["id", "url", "title", "text"]


@dataclass
class Found:
    kept: list = field(default_factory=list)  # the (seed, analysis) pairs that found a document
    hits: list[tuple[str, float]] = field(default_factory=list)  # (document id, cosine), aligned with kept
    info: dict[str, dict] = field(default_factory=dict)  # seed id -> the demonstration's retrieval columns
    rejected: list[dict] = field(default_factory=list)
    documents: dict[str, dict] | None = None  # id -> chosen document, when the mode has them already (search)

    def add(self, pair, doc_id: str, cos: float, rank_score: float, info: dict) -> None:
        self.kept.append(pair)
        self.hits.append((doc_id, cos))
        self.info[pair[0]["id"]] = {**info, "retrieval_rank_score": rank_score}

    def lose(self, pair, detail: str, query: str) -> None:
        seed = pair[0]
        self.rejected.append(rejection(STAGE, "no_grounding_document", detail, seed["id"], {**seed, "retrieval_query": query}))


def prepare(ctx: StageContext) -> None:
    """Load the BM25 index when the mode uses it (the dense index is loaded for every mode); in
    search mode, the ids of the documents a fetched page is checked against."""
    if ctx.cfg.attribute.retrieval in ("bm25", "hybrid"):
        ctx.extras["bm25"], _ = lexical.load(ctx.lake)
    if ctx.cfg.attribute.retrieval == "search":
        ctx.extras["corpus_ids"] = corpus_ids(ctx.lake, ctx.extras["index_ids"])


def corpus_ids(lake: Lake, index_ids: pa.Array) -> IdSet:
    """Every document's id: the index's, and those of the search pages written since it was
    built (by the shards that ran before this one). Ids only, about 16 bytes per document."""
    pages = [lake.read_shard("documents", s, columns=["id"]).column("id") for s in lake.shards("documents") if s.startswith(SEARCH_SHARD)]
    return IdSet([index_ids, *pages])


def read_documents(lake: Lake, ids: set[str]) -> dict[str, dict]:
    """id -> document of these documents only (one documents shard in memory at a time), so a
    seed shard's memory does not grow with the corpus."""
    return {d["id"]: d for d in lake.read_rows("documents", ids, DOCUMENT_COLUMNS).to_pylist()}


def find_documents(ctx: StageContext, pairs: list, queries: list[str]) -> Found:
    """The grounding document of each (seed, analysis), by the configured mode."""
    mode = ctx.cfg.attribute.retrieval
    if mode == "search":
        return _search(ctx, pairs)
    return corpus_documents(ctx, pairs, queries, mode)


def corpus_documents(ctx: StageContext, pairs: list, queries: list[str], mode: str) -> Found:
    index, ids, a = ctx.extras["index"], ctx.extras["index_ids"], ctx.cfg.attribute
    qvecs = embed(queries, ctx.cfg.embedder)
    depth = 1 if mode == "dense" else a.fusion_depth
    dense = dense_search(index, qvecs, depth) if mode != "bm25" else [[] for _ in queries]
    words = lexical.search(ctx.extras["bm25"], len(ids), queries, depth) if mode != "dense" else [[] for _ in queries]
    found = Found()
    for pair, query, qvec, near, lex in zip(pairs, queries, qvecs, dense, words):
        ranked = fuse(near, lex, a.rrf_k) if mode == "hybrid" else (near or lex)
        if not ranked:
            why = "no word of the query appears in the corpus (BM25 score 0)" if mode == "bm25" else "the corpus index is empty"
            found.lose(pair, why, query)
            continue
        row, rank_score = ranked[0]
        cos = dict(near).get(row)
        found.add(pair, ids[row].as_py(), cosine(index, row, qvec) if cos is None else cos, rank_score,
                  {"retrieval": mode, "retrieval_provider": PROVIDERS[mode], "retrieval_query": query})
    return found


def fuse(dense: list[tuple[int, float]], lex: list[tuple[int, float]], k: int) -> list[tuple[int, float]]:
    """Reciprocal-rank fusion of two ranked lists of (row, score): (row, sum of 1/(k + rank))
    best first; ties go to the better dense rank, then the better BM25 rank."""
    fused: Counter = Counter()
    for ranked in (dense, lex):
        for rank, (row, _) in enumerate(ranked, start=1):
            fused[row] += 1.0 / (k + rank)
    order = {row: (r, 0) for r, (row, _) in enumerate(dense)}
    for r, (row, _) in enumerate(lex):
        order.setdefault(row, (len(dense), r))
    return sorted(fused.items(), key=lambda kv: (-kv[1], order[kv[0]]))


# --- search --------------------------------------------------------------------------------


def _search(ctx: StageContext, pairs: list) -> Found:
    from synthq.tasks.attribute.search import SearchProvider

    fetch_documents = ctx.extras["fetch_documents"]  # ingest's crawler and cleaning, lent by the flow
    provider = SearchProvider(ctx.cfg.attribute.search)
    queries = [" ".join(analysis.keywords) for _, analysis in pairs]
    results = [provider.search(q) for q in queries]  # ServiceError fails the shard: the seeds are not at fault
    urls = [hit.url for hits in results for hit in hits]
    outcomes = fetch_documents(urls, ctx.cfg.ingest, source="search")
    pages = {o["id"]: o for o in outcomes.values() if "reason" not in o}
    known = {i for i, hit in zip(pages, ctx.extras["corpus_ids"].contains(list(pages))) if hit}
    found, docs, page_rejections = Found(), {}, {}
    for pair, query, hits in zip(pairs, queries, results):
        chosen, why = None, Counter()
        for hit in hits:
            outcome = outcomes.get(hit.url)
            if outcome is None or "reason" in outcome:
                why[outcome["reason"] if outcome else "redirected_to_a_page_already_fetched"] += 1
                if outcome is not None:
                    page_rejections.setdefault(hit.url, {**outcome, "record": _with_query(outcome["record"], query)})
                continue
            if outcome["id"] not in known:  # a page the corpus has is not added twice
                docs.setdefault(outcome["id"], {**outcome, "search_query": query})
            chosen = chosen or (hit, outcome)
        if chosen is None:
            detail = f"the search for {query!r} returned {len(hits)} hit(s)" + (
                f", none usable ({', '.join(f'{k}: {v}' for k, v in sorted(why.items()))})" if hits else "")
            found.lose(pair, detail, query)
            continue
        hit, doc = chosen
        found.add(pair, doc["id"], 0.0, 1.0 / hit.rank,
                  {"retrieval": "search", "retrieval_provider": provider.name, "retrieval_query": query})
    chosen = {doc_id for doc_id, _ in found.hits}  # a page the corpus has: the corpus's row (its first url)
    found.documents = {i: {k: pages[i][k] for k in DOCUMENT_COLUMNS} for i in chosen} | read_documents(ctx.lake, chosen & known)
    _cosines(ctx, found, found.documents)
    _write_documents(ctx, list(docs.values()), list(page_rejections.values()), [s for s, _ in pairs])
    return found


def _with_query(record: str, query: str) -> str:
    """A page rejection's record, with the query whose hit it was."""
    return json.dumps({**json.loads(record), "search_query": query}, ensure_ascii=False, default=str)


def _cosines(ctx: StageContext, found: Found, docs: dict[str, dict]) -> None:
    """Fill in the dense cosine of each chosen page (they are in no index yet)."""
    if not found.kept:
        return
    qvecs = embed([found.info[s["id"]]["retrieval_query"] for s, _ in found.kept], ctx.cfg.embedder)
    dvecs = embed([passage(docs[doc_id]["title"], docs[doc_id]["text"]) for doc_id, _ in found.hits], ctx.cfg.embedder)
    found.hits = [(doc_id, float(np.dot(q, d))) for (doc_id, _), q, d in zip(found.hits, qvecs, dvecs)]


def _write_documents(ctx: StageContext, docs: list[dict], rejected: list[dict], seeds: list[dict]) -> None:
    """The pages this shard's searches fetched, as a shard of `documents` (source 'search'),
    named after the seeds that searched, so a rerun rewrites it instead of adding another."""
    if not docs and not rejected:
        return
    name = SEARCH_SHARD + hashlib.sha256("\n".join(s["id"] for s in seeds).encode()).hexdigest()[:12]
    result = StageResult(table(docs, DOCUMENTS), table(rejected, REJECTED), {"ingested_at": time.time(), "search": len(docs)})
    ctx.lake.write_shard("documents", name, result, input_id=name, config=ctx.cfg.digest("ingest.quality", "ingest.languages"))
