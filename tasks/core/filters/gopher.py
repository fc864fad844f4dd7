"""Gopher quality rules on words and lines (Rae et al. 2021, the MassiveText quality filters).

Each rule looks at one property of the whole document: how many words it has, how long they
are, how much of it is symbols, bullets, trailing ellipses or words without letters, and
whether it has the few English function words that every real English sentence uses.
"""

from __future__ import annotations

import re
from collections import Counter
from itertools import filterfalse

from synthq.tasks.core.config import QualityConfig
from synthq.tasks.core.filters.base import DocView, Filter, lines_over, outside, setting, share

BULLETS = tuple("-*•‣⁃◦▪▫●○■□–—➢→")  # a line starting with one of these is a list item
ELLIPSES = ("...", "…")
_LETTER = re.compile(r"[^\W\d_]")
# The Gopher paper's list: any English prose of a few sentences uses at least two of them.
STOP_WORD_LIST = ("the", "be", "to", "of", "and", "that", "have", "with")
STOP_WORDS = frozenset(STOP_WORD_LIST)


def word_count(view: DocView, cfg: QualityConfig) -> str | None:
    n = len(view.words)
    return outside(n, f"{n} words", "min_words", "max_words", cfg)


def mean_word_length(view: DocView, cfg: QualityConfig) -> str | None:
    """Over the words of spaced scripts: a text mostly in a script written without spaces,
    where every character is a word, has no word length to judge."""
    spaced = len(view.words) - view.unspaced_words
    if not spaced or spaced * 2 < len(view.words):
        return None
    mean = view.spaced_chars / spaced
    return outside(mean, f"mean word length {mean:.1f}", "min_mean_word_length", "max_mean_word_length", cfg)


def symbol_ratio(view: DocView, cfg: QualityConfig) -> str | None:
    """Hashes and ellipses are counted apart, as in the paper: either one over the limit fails."""
    text, n_words = view.text, len(view.words)
    for symbol, count in (("'#'", text.count("#")), ("ellipses", text.count("...") + text.count("…"))):
        ratio = share(count, n_words)
        if ratio > cfg.max_symbol_word_ratio:
            return f"{count} {symbol} per {n_words} words = {ratio:.2f} > " + setting(
                "max_symbol_word_ratio", cfg.max_symbol_word_ratio
            )
    return None


def bullet_lines(view: DocView, cfg: QualityConfig) -> str | None:
    bullets = sum(1 for line in view.lines if line.startswith(BULLETS))
    return lines_over(view, bullets, "start with a bullet", "max_bullet_lines", cfg)


def ellipsis_lines(view: DocView, cfg: QualityConfig) -> str | None:
    cut = sum(1 for line in view.lines if line.endswith(ELLIPSES))
    return lines_over(view, cut, "end in an ellipsis", "max_ellipsis_lines", cfg)


def _letterless_chars(counts: Counter) -> int:
    """Characters in words without a single letter (numbers, codes, symbol runs)."""
    mixed = filterfalse(str.isalpha, counts)  # most words are letters only: skip them fast
    return sum(len(word) * counts[word] for word in mixed if not _LETTER.search(word))


def alpha_words(view: DocView, cfg: QualityConfig) -> str | None:
    """Weighted by length: the short numerals of a worked example or a results table weigh
    less than the prose around them, while number dumps and symbol runs still fail."""
    if not view.word_chars:
        return None
    ratio = 1 - _letterless_chars(view.word_counts) / view.word_chars
    if ratio < cfg.min_alpha_words:
        return f"words with a letter hold {ratio:.2f} of the word characters < " + setting(
            "min_alpha_words", cfg.min_alpha_words
        )
    return None


def _stop_words_found(words: list[str], enough: int) -> int:
    """Stop words among `words`, counting stops at `enough` (prose reaches it in a line)."""
    found = 0
    for word in words:
        if found >= enough:
            break
        if word in STOP_WORDS:
            found += 1
    return found


def stop_words(view: DocView, cfg: QualityConfig) -> str | None:
    found = _stop_words_found(view.words, cfg.min_stop_words)
    if found >= cfg.min_stop_words:
        return None
    listed = "/".join(STOP_WORD_LIST)
    return f"English stop words ({listed}) found: {found} < {setting('min_stop_words', cfg.min_stop_words)}"


FILTERS = [
    Filter("gopher_word_count", word_count),
    Filter("gopher_mean_word_length", mean_word_length),
    Filter("gopher_symbol_ratio", symbol_ratio),
    Filter("gopher_bullet_lines", bullet_lines),
    Filter("gopher_ellipsis_lines", ellipsis_lines),
    Filter("gopher_alpha_words", alpha_words),
    Filter("gopher_stop_words", stop_words, english_only=True),
]
