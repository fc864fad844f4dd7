"""The configuration of the method's generating and judging stages (synthesize, curate): sections
of `FactoryConfig`, kept in their own file; import them from `synthq.tasks.core.config` like every
other section. The `paper` profile (configs/paper.yaml) sets them as the published method does.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from synthq.tasks.core.attribute_config import BenchmarkSources
from synthq.tasks.core.respond_config import Section as _Section


class Constraints(_Section):
    """Verifiable constraints woven into queries (IFEval's instruction registry; see
    tasks/core/constraints.py): each chosen query asks for an answer a program can check."""

    enabled: bool = Field(False, description="Give queries constraints (the verifiable profile, configs/verifiable.yaml).")
    share: float = Field(1.0, ge=0, le=1, description="Share of documents whose query gets constraints (a seeded draw).")
    max_per_query: int = Field(
        2, ge=1, le=5, description="A query gets 1 to this many, of different kinds that do not conflict: "
        "more than 2 or 3 crowd out the request a small model writes around them."
    )
    unstated: Literal["reject", "append"] = Field(
        "reject", description="A query whose text leaves out a constraint's arguments: reject it (constraint_not_stated), "
        "or append IFEval's own statement of that constraint to it (as IFEval's prompts state theirs), recorded per "
        "constraint as stated by 'appended' instead of 'model'. A small model rarely words them itself."
    )


class SynthesizeConfig(_Section):
    max_demonstrations: int = Field(10, description="The method draws 10 demonstrations at random.")
    prompt_tokens: int = Field(
        3300,
        description="Demonstrations are added while the prompt stays under this many tokens "
        "(prompt + max_output_tokens must fit engine.max_model_len).",
    )
    document_tokens: int = Field(1024, description="Each document is cut to this many tokens.")
    demonstration_document_tokens: int = Field(
        200, description="A demonstration shows this many tokens of its document."
    )
    max_output_tokens: int = Field(768, description="Headroom over the schema's string caps.")
    temperature: float = Field(0.8, description="Higher: synthesis should be diverse.")
    output_caps: bool = Field(
        True,
        description="Cap thought, scene, compositions and query lengths (the query at 1,500 characters) so a small model "
        "cannot loop until max_output_tokens cuts the JSON. The method caps only by max tokens, so long, excerpt-carrying "
        "queries fit (paper profile: false, with more output tokens).",
    )
    fill: Literal["skip", "stop"] = Field(
        "skip",
        description="When a drawn demonstration does not fit the budget: skip it and try the next (fills the budget "
        "better with a short context), or stop adding, as the method does.",
    )
    group_size: int = Field(
        8,
        ge=1,
        description="Documents (similar by embedding) that share one demonstration block. The block is "
        "most of the prompt and comes first, so the engine's prefix cache prefills it once per group: "
        "8 saves about 7/8 of its prefill while no more than 8 instructions share the same examples. "
        "1 gives each document its own block, as in the original method.",
    )
    similar_fraction: float = Field(
        0.5,
        ge=0,
        le=1,
        description="Share of a group's demonstrations chosen as the nearest to its documents; the rest "
        "are drawn at random for diversity. 0 is the method's pure random draw.",
    )
    constraints: Constraints = Constraints()


class QueryChecks(_Section):
    """Checks of each synthesized query that need no model, run before the scoring call: a small
    model's judge passes word loops and text unrelated to the page (the bundled model scored
    33 of 33 such queries 7/7), so these catch what the judge misses. Each drop is counted under
    its reason; the thresholds are checked against every seed instruction of the sample, which
    all pass (tests/curate/test_checks.py)."""

    enabled: bool = Field(True, description="Run the checks; off sends every schema-valid query to the judge.")
    min_words: int = Field(8, ge=1, description="query_too_short: fewer words state no task worth training on.")
    max_words: int = Field(
        4000, ge=1, description="query_too_long: more is a pasted document, not a request (queries may carry excerpts)."
    )
    languages: list[str] = Field(
        default_factory=lambda: ["en"],
        description="query_language: ISO 639-1 codes a query may be written in (empty: any); identified with py3langid.",
    )
    min_language_score: float = Field(0.5, ge=0, le=1, description="query_language: a less certain guess is a drop.")
    min_mean_word_length: float = Field(2.5, description="query_not_prose: shorter words are symbols and fragments.")
    max_mean_word_length: float = Field(
        12.0, description="query_not_prose: longer words are glued letters or hashes (wider than documents' 10: code identifiers)."
    )
    max_symbol_word_ratio: float = Field(0.15, description="query_not_prose: '#' and '...' per word.")
    min_alpha_words: float = Field(
        0.6, description="query_not_prose: share of word characters in words with a letter (lower than documents' 0.8: tables of numbers)."
    )
    max_top_ngram_chars: dict[int, float] = Field(
        default_factory=lambda: {2: 0.25, 3: 0.22, 4: 0.2},
        description="query_repetitive: share of characters covered by the most frequent n-gram, per n (looser than "
        "documents' 0.2/0.18/0.16: in a short request one phrase said twice is already a large share).",
    )
    max_duplicate_ngram_chars: dict[int, float] = Field(
        default_factory=lambda: {5: 0.15, 6: 0.14, 7: 0.13, 8: 0.12, 9: 0.11, 10: 0.10},
        description="query_repetitive: share of characters in n-grams seen more than once, per n (the document filters' values).",
    )
    min_document_overlap: float = Field(
        0.25, ge=0, le=1,
        description="query_off_document: least share of the query's content words (4+ letters, not stop words) found in "
        "its document; a query grounded in a page names what the page is about. Real user requests score 0.26-0.71 "
        "against the right sample page (one 0.18); the bundled model's unrelated text 0-0.22.",
    )
    max_copied_share: float = Field(
        0.9, ge=0, le=1,
        description="query_copied: most share of the query's words inside runs of `copy_ngram` words found verbatim in its "
        "document; a query that is mostly a pasted excerpt asks to extract, not to think.",
    )
    copy_ngram: int = Field(8, ge=3, description="Words in a run that counts as copied from the document.")


class CurateConfig(BenchmarkSources):
    min_score: int = Field(0, ge=0, le=7, description="Drop queries whose total score is below this.")
    dedup_threshold: float = Field(
        0.92, gt=0, le=1, description="Cosine similarity at or above which two queries are duplicates."
    )
    target_size: int | None = Field(
        None, description="When set, keep this many queries, chosen by `selection`."
    )
    selection: Literal["topics", "k_center"] = Field(
        "topics",
        description="topics: cluster into target_size topics, keep the best-scored per topic. "
        "k_center (DiverseEvol): start from the best-scored query and repeatedly add the one "
        "farthest from all already chosen.",
    )
    benchmarks: list[str] = Field(
        default_factory=list,
        description="Benchmark prompts to decontaminate against: files, folders, globs, fsspec URLs or hf:DATASET, "
        "in the seed shapes (every user turn counts), or 'ifeval' (its 541 prompts, packaged); the file name is the "
        "benchmark's name in reports.",
    )
    benchmark_column: str | None = Field(None, description="Shorthand for benchmark_fields.prompt (unset: detected).")
    contamination_ngram: int = Field(
        13, ge=3, description="A shared run of this many words with a benchmark prompt is contamination."
    )
    contamination_similarity: float = Field(
        0.9, gt=0, le=1, description="Cosine similarity to a benchmark prompt at or above which a query is dropped."
    )
    max_output_tokens: int = Field(
        1024, description="Seven analyses of up to 300 characters each (about 75 tokens), their scores and the JSON around them."
    )
    moderation: bool = Field(
        False,
        description="Also ask the engine for a safety verdict on each query (MLCommons hazard "
        "categories); unsafe queries are dropped with their categories.",
    )
    dedup_against_releases: bool = Field(
        True,
        description="Also drop new queries within dedup_threshold of any row of an earlier release "
        "of this dataset (publish.name); the index of released rows persists in the lake.",
    )
    ivf_threshold: int = Field(
        100_000, ge=1, description="Past this many vectors, dedup searches an IVF index instead of exact search."
    )
    ivf_nprobe: int = Field(16, ge=1, description="IVF clusters searched per query: higher is slower and more exact.")
    checks: QueryChecks = QueryChecks()
