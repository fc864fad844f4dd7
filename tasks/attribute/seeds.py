"""Reading seed instructions from the files users have: every shape `synthq.tasks.core.prompt_files`
knows (JSONL/JSON/Parquet/CSV, folders, globs, hf: datasets, fsspec URLs), every bad row
rejected by name.

A bad row never stops the run: it becomes a rejection that names the file, the row and what
was wrong. Only a source with no usable seed at all is an error.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from synthq.tasks.core.errors import InputError, SeedFileError
from synthq.tasks.core.prompt_files import read_prompts
from synthq.tasks.core.records import rejection

STAGE = "attribute"
MAX_PROMPT_CHARS = 20_000  # a seed longer than this is a document, not an instruction
FLAG = "attribute.seed_fields"


@dataclass
class SeedFile:
    seeds: list[dict]  # {"id", "prompt"}
    rejected: list[dict]
    detected: dict[str, str] = field(default_factory=dict)  # file -> the mapping used


def read_seeds(source: str, fields: dict | None = None) -> SeedFile:
    """Seeds (id, first user turn) of every file of `source`; raises when none is usable."""
    try:
        found = read_prompts(source, fields or {}, "seed instructions", FLAG, STAGE, "bad_seed")
    except SeedFileError:
        raise
    except InputError as e:
        raise SeedFileError(f"Seeds: {e}") from e
    seeds, rejected, seen = [], list(found.rejected), set()
    for row in found.rows:
        prompt, where = row["prompts"][0], row["where"]
        problem = None
        if len(prompt) > MAX_PROMPT_CHARS:
            problem = f"{where}: the prompt has {len(prompt)} characters, over {MAX_PROMPT_CHARS}"
        elif row["id"] in seen:
            problem = f"{where}: " + ("the same prompt as an earlier row" if row["derived_id"] else f"duplicate id '{row['id']}'")
        if problem:
            rejected.append(rejection(STAGE, "bad_seed", problem, where, {"id": row["id"], "prompt": prompt[:2000]}))
            continue
        seen.add(row["id"])
        seeds.append({"id": row["id"], "prompt": prompt})
    if not seeds:
        first = "; ".join(r["detail"] for r in rejected[:3]) or "it holds no rows"
        raise SeedFileError(f"Seeds '{source}' hold no usable seed ({len(rejected)} bad rows): {first}")
    return SeedFile(seeds, rejected, found.detected)


def load_seeds(source: str, fields: dict | None = None) -> tuple[list[dict], list[dict]]:
    """(seeds, rejections). Raises when the source is missing or holds no usable seed."""
    found = read_seeds(source, fields)
    return found.seeds, found.rejected
