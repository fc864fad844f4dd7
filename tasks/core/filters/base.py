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

from synthq.tasks.core.config import QualityConfig
from synthq.tasks.core.words import has_unspaced, is_southeast_asian, is_unspaced, split_words

# Stripped from both ends of a whitespace token to get a word; a token made only of these is
# no word at all (a dash between clauses, a lone bullet). Kept short: str.strip's cost grows
# with the set, and words are the one view every document pays for.
EDGE_PUNCTUATION = string.punctuation + "“”‘’«»—–…•·"
GRAM_SCALE = {"spaced": 1, "cjk": 2, "southeast_asian": 4}


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
        """Lower-cased words (see `synthq.tasks.core.words`) without their edge punctuation; empty ones dropped."""
        tokens = split_words(self.text.lower())
        return list(filter(None, map(str.strip, tokens, repeat(EDGE_PUNCTUATION))))

    @cached_property
    def word_counts(self) -> Counter:
        """How often each word occurs: word-level statistics are taken over these, once per word."""
        return Counter(self.words)

    @cached_property
    def word_chars(self) -> int:
        return sum(map(mul, self.word_counts.values(), map(len, self.word_counts)))

    @cached_property
    def unspaced_words(self) -> int:
        """Words that are characters of a script written without spaces (0 for most text)."""
        return sum(self._unspaced_counts[:2])

    @cached_property
    def _unspaced_counts(self) -> tuple[int, int, int]:
        """(Chinese and Japanese characters, Thai, Lao, Khmer and Burmese letters, characters of
        the other words) among the words."""
        if not has_unspaced(self.text):
            return 0, 0, self.word_chars
        cjk = southeast = spaced_chars = 0
        for word, count in self.word_counts.items():
            if not is_unspaced(word):
                spaced_chars += len(word) * count
            elif is_southeast_asian(word):
                southeast += count
            else:
                cjk += count
        return cjk, southeast, spaced_chars

    @cached_property
    def spaced_chars(self) -> int:
        """Characters of the words in scripts written with spaces."""
        return self._unspaced_counts[2]

    @cached_property
    def script(self) -> str:
        """"cjk" for a text mostly in Chinese or Japanese characters, "southeast_asian" for one
        mostly in Thai, Lao, Khmer or Burmese letters, else "spaced"."""
        cjk, southeast, _ = self._unspaced_counts
        if (cjk + southeast) * 2 <= len(self.words):
            return "spaced"
        return "southeast_asian" if southeast > cjk else "cjk"

    @cached_property
    def gram_scale(self) -> int:
        """Words per n-gram slot: 1 in spaced scripts; where each character is a word, about
        one word's worth: two Chinese or Japanese characters, four Thai, Lao, Khmer or
        Burmese letters."""
        return GRAM_SCALE[self.script]


Check = Callable[[DocView, QualityConfig], "str | None"]


@dataclass(frozen=True)
class Filter:
    """A named rule: `check` returns None to keep the document, else why it is dropped."""

    name: str
    check: Check
    english_only: bool = False  # rules built on English words skip other languages
    skip_languages: tuple[str, ...] = ()  # languages the rule cannot judge


def share(part: float, whole: float) -> float:
    """part / whole, 0 when there is no whole (an empty document repeats nothing)."""
    return part / whole if whole else 0.0


def setting(name: str, value: float, key: int | None = None) -> str:
    """How a user finds and overrides the threshold: 'ingest.quality.NAME=VALUE'."""
    index = f"[{key}]" if key is not None else ""
    return f"ingest.quality.{name}{index}={value:g}"


def lines_over(view: DocView, count: int, what: str, name: str, cfg: QualityConfig) -> str | None:
    """The rule shared by the line filters: `count` of the lines `what` (e.g. 'start with a
    bullet'), as a share of all lines, must not pass the setting `name`."""
    ratio, limit = share(count, len(view.lines)), getattr(cfg, name)
    if ratio > limit:
        return f"{count} of {len(view.lines)} lines {what} ({ratio:.2f}) > " + setting(name, limit)
    return None


def outside(value: float, shown: str, low: str, high: str, cfg: QualityConfig) -> str | None:
    """The rule shared by the range filters: `value` (shown as `shown`) must lie between the
    settings `low` and `high`."""
    if value < getattr(cfg, low):
        return f"{shown} < {setting(low, getattr(cfg, low))}"
    if value > getattr(cfg, high):
        return f"{shown} > {setting(high, getattr(cfg, high))}"
    return None
