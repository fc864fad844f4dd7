"""Where seeds, benchmarks and grounding documents come from: the config fields the attribute
stage (seed fields, retrieval mode, search provider) and decontamination (benchmark fields) add
to their sections. Import them from `synthq.tasks.core.config` like every other section."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from synthq.tasks.core.respond_config import Section


class PromptFields(Section):
    """Columns of a seed or benchmark file, when detection is not what you want (see
    `synthq.tasks.core.prompt_files` for what is detected)."""

    prompt: str | None = Field(
        None, description="Column holding the prompt: a string, a list of turns, or chat turns (the first user "
        "turn is the seed; every user turn is a benchmark prompt). Unset: detected (prompt, instruction, question, "
        "conversations, messages, turns).",
    )
    input: str | None = Field(
        None, description="Column appended to the prompt after a blank line (Alpaca's input, or self-instruct's "
        "instances, whose first input is taken). Unset: 'input' or 'instances' when the prompt is 'instruction'.",
    )
    id: str | None = Field(
        None, description="Column holding the row's id. Unset: the first of id, question_id, idx, key, uid; "
        "without any, a hash of the prompt (the same prompt twice is then one seed).",
    )


class SearchConfig(Section):
    """A web search API for `attribute.retrieval: search`; its hits are fetched by the crawler."""

    provider: Literal["searxng", "http"] = Field(
        "searxng", description="searxng: a SearXNG instance's JSON API (open, self-hostable: the default). http: "
        "any JSON search API described by `template`, `results_path` and the field names.",
    )
    url: str | None = Field(None, description="SearXNG base URL (its /search?q=...&format=json is called), for provider=searxng.")
    template: str | None = Field(
        None, description="Request URL for provider=http, with {query} (URL-encoded here) and optionally {api_key}.",
    )
    results_path: str = Field("results", description="Dotted path to the list of hits in the JSON answer (http; SearXNG: results).")
    url_field: str = Field("url", description="Field of a hit holding its URL (Bing: url, Brave: url, Google CSE: link).")
    title_field: str = Field("title", description="Field of a hit holding its title.")
    api_key_env: str | None = Field(
        None, description="Environment variable holding the API key (never the key itself; the key is never logged).",
    )
    api_key_header: str | None = Field(
        None, description="Header that carries the key (X-Subscription-Token, Authorization...); unset: only {api_key} in the template.",
    )
    api_key_prefix: str = Field("", description="Put before the key in the header ('Bearer ' for Authorization).")
    hits: int = Field(
        3, ge=1, le=20, description="Top hits fetched per seed: the first that survives the crawler and ingest's "
        "filters grounds the seed (the paper kept the top hit; 3 leaves room for pages that fail).",
    )
    timeout_s: float = Field(20.0, gt=0, description="Per search request.")
    retries: int = Field(
        3, ge=0, description="Retries with backoff on timeouts, 429 and 5xx; a search that still fails fails its "
        "shard (a rerun retries it), it never rejects the seed.",
    )


class IndexConfig(Section):
    """The dense retrieval index over the documents (FAISS, inner product of unit vectors)."""

    kind: Literal["auto", "flat", "ivf"] = Field(
        "auto", description="flat: exact search, 1.5 KB per document (384-dim float32), memory-mapped by the attribution workers (one copy per node); "
        "ivf: inverted lists of 8-bit vectors (IVF, SQ8), about 0.4 KB per document and searched in a small part, "
        "approximate (its recall@1 against exact search is measured at each build and logged); auto: flat up to "
        "`ivf_above` documents, ivf past it.",
    )
    ivf_above: int = Field(200_000, ge=1, description="Documents past which `auto` builds the IVF index.")
    nlist: int = Field(0, ge=0, description="IVF lists; 0: 4 x the square root of the document count (FAISS' guideline).")
    nprobe: int = Field(32, ge=1, description="IVF lists searched per query: more is closer to exact and slower.")
    recall_sample: int = Field(
        500, ge=0, description="Documents whose nearest other document is found both by the index and by exact "
        "search at each IVF build: the share that agree is the index's recall@1 (logged, kept in index.json).",
    )


class AttributeSources(Section):
    """Fields of `attribute` (AttributeConfig builds on this)."""

    seed_fields: PromptFields = PromptFields()
    retrieval: Literal["dense", "bm25", "hybrid", "search"] = Field(
        "dense",
        description="How the keywords find the grounding document. dense: embedding cosine (FAISS); bm25: words "
        "(bm25s); hybrid: reciprocal-rank fusion of both; search: a web search API (attribute.search), hits "
        "fetched by the crawler. dense is the default: best recall@1 with the bundled embedder on "
        "tests/attribute/retrieval_set.py (60 documents, 48 queries: dense 1.000, bm25 0.979, hybrid 0.979; "
        "bench/retrieval_recall.py).",
    )
    rrf_k: int = Field(
        60, ge=1, description="Reciprocal-rank fusion constant: a document scores 1/(rrf_k + rank) per list. "
        "60 is the value of the original RRF paper, which flattens the top ranks so both lists count.",
    )
    fusion_depth: int = Field(20, ge=1, description="Hits taken from each list before fusing (hybrid).")
    index: IndexConfig = IndexConfig()
    search: SearchConfig = SearchConfig()


class BenchmarkSources(Section):
    """Fields of `curate` (CurateConfig builds on this)."""

    benchmark_fields: PromptFields = PromptFields()
