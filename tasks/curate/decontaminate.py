"""Decontamination: drop queries that overlap with benchmark prompts users registered.

Two tests, as in common practice: a shared run of `contamination_ngram` words (13 by
default, on lowercased word tokens), and embedding similarity at or above
`contamination_similarity` (which also catches paraphrases and prompts shorter than the
n-gram). Each hit names the benchmark, so the report can count hits per benchmark. Benchmarks are read
in every shape seeds are (`synthq.tasks.core.prompt_files`), and every user turn of a multi-turn
benchmark (MT-Bench's `turns`, chat messages) is registered, not only the first.
"""

from __future__ import annotations

import logging
import re
from collections import Counter
from dataclasses import dataclass, field

import faiss
import numpy as np

from synthq.tasks.core.config import CurateConfig
from synthq.tasks.core.embeddings import embed
from synthq.tasks.core.packaged import BENCHMARKS, benchmark_file
from synthq.tasks.core.prompt_files import PromptFile, file_name, read_prompts

_WORD = re.compile(r"\w+")
STAGE = "curate"
FLAG = "curate.benchmark_fields"
log = logging.getLogger("synthq.curate")


def ngrams(text: str, n: int) -> set[int]:
    words = _WORD.findall(text.lower())
    return {hash(tuple(words[i : i + n])) for i in range(len(words) - n + 1)}


def read_benchmark(source: str, fields: dict) -> PromptFile:
    """Every user turn of every row of a benchmark source (any shape `prompt_files` reads, or
    the name of a packaged benchmark: `ifeval`), with the rows that map to nothing as
    rejections; a clear error when nothing maps."""
    if source in BENCHMARKS:
        source = str(benchmark_file(source))
    return read_prompts(source, fields, "benchmark prompts", FLAG, STAGE, "bad_benchmark_row")


def benchmark_fields(cfg: CurateConfig) -> dict:
    """curate.benchmark_fields, with curate.benchmark_column as the prompt column when set."""
    fields = cfg.benchmark_fields.model_dump()
    return {**fields, "prompt": cfg.benchmark_column} if cfg.benchmark_column else fields


def load_benchmark(path: str, column: str | None = None) -> list[str]:
    """Prompts of one benchmark source, every turn; `column` names the prompt column (else detected)."""
    return [p for row in read_benchmark(path, {"prompt": column} if column else {}).rows for p in row["prompts"]]


@dataclass
class Benchmarks:
    names: list[str]  # benchmark name per prompt
    grams: dict[int, str]  # n-gram hash -> benchmark name
    index: faiss.Index
    n: int
    unusable: dict[str, int] = field(default_factory=dict)  # benchmark -> rows that mapped to no prompt

    @classmethod
    def load(cls, paths: list[str], fields: dict, n: int, embedder: str) -> "Benchmarks":
        names, prompts, grams, unusable = [], [], {}, Counter()
        for path in paths:
            found = read_benchmark(path, fields)
            for uri, how in found.detected.items():
                log.info("benchmark %s: %s", uri, how)
            for bad in found.rejected:
                log.warning("benchmark row not used: %s", bad["detail"])
            unusable.update({file_name(uri): n for uri, n in found.bad_rows.items()})
            for row in found.rows:
                name = file_name(row["file"])
                for prompt in row["prompts"]:
                    names.append(name)
                    prompts.append(prompt)
                    grams.update(dict.fromkeys(ngrams(prompt, n), name))
        vecs = embed(prompts, embedder)
        index = faiss.IndexFlatIP(vecs.shape[1])
        index.add(vecs)
        return cls(names, grams, index, n, dict(unusable))

    def hits(self, queries: list[str], vecs: np.ndarray, threshold: float) -> list[tuple[str, str, str] | None]:
        """Per query: None, or (reason, benchmark, detail)."""
        out: list[tuple[str, str, str] | None] = []
        sims, rows = self.index.search(vecs, 1) if self.index.ntotal else (None, None)
        for i, query in enumerate(queries):
            shared = next((self.grams[g] for g in ngrams(query, self.n) if g in self.grams), None)
            if shared:
                out.append(("contaminated_ngram", shared, f"shares a {self.n}-word run with a {shared} prompt"))
            elif sims is not None and sims[i, 0] >= threshold:
                bench = self.names[rows[i, 0]]
                out.append(("contaminated_similar", bench, f"cosine {sims[i, 0]:.3f} >= {threshold} with a {bench} prompt"))
            else:
                out.append(None)
        return out
