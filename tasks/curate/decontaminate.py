"""Decontamination: drop queries that overlap with benchmark prompts users registered.

Two tests, as in common practice: a shared run of `contamination_ngram` words (13 by
default, on lowercased word tokens), and embedding similarity at or above
`contamination_similarity` (which also catches paraphrases and prompts shorter than the
n-gram). Each hit names the benchmark, so the report can count hits per benchmark.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import faiss
import numpy as np
import pyarrow as pa
import pyarrow.csv as pcsv
import pyarrow.json as pjson
import pyarrow.parquet as pq

from tasks.core.embeddings import embed
from tasks.core.errors import InputError

_WORD = re.compile(r"\w+")


def ngrams(text: str, n: int) -> set[int]:
    words = _WORD.findall(text.lower())
    return {hash(tuple(words[i : i + n])) for i in range(len(words) - n + 1)}


def load_benchmark(path: str, column: str) -> list[str]:
    """Prompts of one benchmark file; a clear error when the file or column is missing."""
    p = Path(path)
    readers = {".jsonl": pjson.read_json, ".json": pjson.read_json, ".parquet": pq.read_table, ".csv": pcsv.read_csv}
    if not p.is_file():
        raise InputError(f"Benchmark file '{p}' does not exist.")
    if p.suffix.lower() not in readers:
        raise InputError(f"Benchmark file '{p}' must be .jsonl, .parquet or .csv.")
    try:
        data = p.read_bytes()
        source = data if p.suffix.lower() == ".parquet" else data.removeprefix(b"\xef\xbb\xbf")  # a byte-order mark
        tbl: pa.Table = readers[p.suffix.lower()](pa.BufferReader(source))
    except (pa.ArrowInvalid, OSError) as e:
        raise InputError(f"Benchmark file '{p}' cannot be read: {e}") from e
    if column not in tbl.column_names:
        raise InputError(f"Benchmark file '{p}' has no '{column}' column (it has {tbl.column_names[:8]}); set curate.benchmark_column.")
    return [str(x) for x in tbl.column(column).to_pylist() if x]


@dataclass
class Benchmarks:
    names: list[str]  # benchmark name per prompt
    grams: dict[int, str]  # n-gram hash -> benchmark name
    index: faiss.Index
    n: int

    @classmethod
    def load(cls, paths: list[str], column: str, n: int, embedder: str) -> "Benchmarks":
        names, prompts, grams = [], [], {}
        for path in paths:
            name = Path(path).stem
            for prompt in load_benchmark(path, column):
                names.append(name)
                prompts.append(prompt)
                grams.update(dict.fromkeys(ngrams(prompt, n), name))
        vecs = embed(prompts, embedder)
        index = faiss.IndexFlatIP(vecs.shape[1])
        index.add(vecs)
        return cls(names, grams, index, n)

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
