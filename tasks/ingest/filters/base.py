"""What every quality filter shares: the `Filter` record and `DocView`, one document's views.

A filter answers one question about one document: keep it (None) or drop it, with a detail a
user can read ("mean word length 11.4 > ingest.quality.max_mean_word_length=10"). The views a
filter reads (lines, words, character counts) are computed once per document, on first use,
so a filter that needs none of them costs nothing and ten filters that share them pay once.
"""

from __future__ import annotations

import string
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from itertools import repeat
from operator import mul

from tasks.core.config import QualityConfig

# Stripped from both ends of a whitespace token to get a word; a token made only of these is
# no word at all (a dash between clauses, a lone bullet). Kept short: str.strip's cost grows
# with the set, and words are the one view every document pays for.
EDGE_PUNCTUATION = string.punctuation + "“”‘’«»—–…•·"


class DocView:
    """Lazily computed views of one document's text (lines separated by "\\n")."""

    def __init__(self, text: str):
        self.text = text
        self.memo: dict = {}  # results a family of filters shares (see repetition.py)

    @cached_property
    def lines(self) -> list[str]:
        """Non-blank lines, stripped."""
        return [line for line in (raw.strip() for raw in self.text.split("\n")) if line]

    @cached_property
    def line_chars(self) -> int:
        return sum(map(len, self.lines))

    @cached_property
    def words(self) -> list[str]:
        """Lower-cased whitespace tokens without their edge punctuation; empty ones dropped."""
        tokens = self.text.lower().split()
        return list(filter(None, map(str.strip, tokens, repeat(EDGE_PUNCTUATION))))

    @cached_property
    def word_counts(self) -> Counter:
        """How often each word occurs: word-level statistics are taken over these, once per word."""
        return Counter(self.words)

    @cached_property
    def word_chars(self) -> int:
        return sum(map(mul, self.word_counts.values(), map(len, self.word_counts)))


Check = Callable[[DocView, QualityConfig], "str | None"]


@dataclass(frozen=True)
class Filter:
    """A named rule: `check` returns None to keep the document, else why it is dropped."""

    name: str
    check: Check
    english_only: bool = False  # rules built on English words skip other languages


def share(part: float, whole: float) -> float:
    """part / whole, 0 when there is no whole (an empty document repeats nothing)."""
    return part / whole if whole else 0.0


def setting(name: str, value: float, key: int | None = None) -> str:
    """How a user finds and overrides the threshold: 'ingest.quality.NAME=VALUE'."""
    index = f"[{key}]" if key is not None else ""
    return f"ingest.quality.{name}{index}={value:g}"
