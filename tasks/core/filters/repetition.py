"""Gopher repetition rules: repeated lines, and text covered by repeated word n-grams.

Boilerplate, link farms and generated spam repeat themselves; prose rarely does. For lines the
rules measure the share of lines (and of their characters) that repeat an earlier line. For
word n-grams they measure the share of word characters held by the single most frequent
n-gram (n = 2..4 by default) and covered by all n-grams seen more than once (n = 5..10).

Counting n-grams is the costly part, so it is skipped where it cannot matter and narrowed
where it can. No n-gram holds more characters than n times the most frequent word holds, so
in prose the short n-grams need no count at all. And an n-gram can only occur twice where
both of its (n-1)-grams occur twice, so once the repeated (n-1)-grams are known only their
positions are counted for n: in prose that set is nearly empty by n = 5, and the long
n-grams cost almost nothing.

In a text mostly in a script written without spaces, where each character is a word (see
`synthq.tasks.core.words`), an n-gram rule counts grams of about n words: 2n Chinese or Japanese
characters, 4n Thai, Lao, Khmer or Burmese letters (`DocView.gram_scale`).
"""

from __future__ import annotations

from collections import Counter
from operator import mul

from synthq.tasks.core.config import QualityConfig
from synthq.tasks.core.filters.base import DocView, Filter, lines_over, setting, share


def _repeated_lines(view: DocView) -> tuple[int, int]:
    """(lines that repeat an earlier line, their characters)."""
    if "repeated_lines" not in view.memo:
        view.memo["repeated_lines"] = _count_repeated_lines(view.lines)
    return view.memo["repeated_lines"]


def _count_repeated_lines(lines: list[str]) -> tuple[int, int]:
    seen: set[str] = set()
    count = chars = 0
    for line in lines:
        if line in seen:
            count += 1
            chars += len(line)
        else:
            seen.add(line)
    return count, chars


def duplicate_lines(view: DocView, cfg: QualityConfig) -> str | None:
    count, _ = _repeated_lines(view)
    return lines_over(view, count, "repeat an earlier line", "max_duplicate_lines", cfg)


def duplicate_line_chars(view: DocView, cfg: QualityConfig) -> str | None:
    _, chars = _repeated_lines(view)
    ratio = share(chars, view.line_chars)
    if ratio > cfg.max_duplicate_line_chars:
        return f"repeated lines hold {ratio:.2f} of the characters > " + setting(
            "max_duplicate_line_chars", cfg.max_duplicate_line_chars
        )
    return None


def _top_word_chars(view: DocView) -> int:
    """Characters held by the most frequent word (its count times its length)."""
    if "top_word_chars" not in view.memo:
        counts = view.word_counts
        view.memo["top_word_chars"] = max(map(mul, counts.values(), map(len, counts)), default=0)
    return view.memo["top_word_chars"]


def _all_ngrams(words: list[str], n: int) -> tuple[range, list[tuple]]:
    """Every start position and the n-gram there."""
    return range(len(words) - n + 1), list(zip(*(words[i:] for i in range(n))))


def _ngrams_where_shorter_repeat(
    words: list[str], n: int, shorter: list[int]
) -> tuple[list[int], list[tuple]]:
    """The n-grams at the positions where the (n-1)-grams at i and at i+1 both repeat."""
    repeated = set(shorter)
    starts = [i for i in shorter if i + 1 in repeated and i + n <= len(words)]
    return starts, [tuple(words[i : i + n]) for i in starts]


def _keep_repeated(starts: range | list[int], grams: list[tuple]) -> tuple[Counter, list[int]]:
    counts = Counter(grams)
    if len(counts) == len(grams):  # nothing repeats: the common case in prose
        return Counter(), []
    repeated = Counter({gram: c for gram, c in counts.items() if c > 1})
    return repeated, [i for i, gram in zip(starts, grams) if gram in repeated]


def repeated_ngrams(view: DocView, n: int) -> tuple[Counter, list[int]]:
    """Counts of the word n-grams that occur more than once, and the positions they start at."""
    key = ("ngrams", n)
    if key not in view.memo:
        shorter = view.memo.get(("ngrams", n - 1))
        if shorter is None:
            view.memo[key] = _keep_repeated(*_all_ngrams(view.words, n))
        else:
            view.memo[key] = _keep_repeated(*_ngrams_where_shorter_repeat(view.words, n, shorter[1]))
    return view.memo[key]


def _gram_name(n: int, view: DocView, plural: str = "") -> str:
    name = f"{n}-gram{plural}"
    return name if view.gram_scale == 1 else f"{name} ({n * view.gram_scale} characters each)"


def top_ngram_chars(view: DocView, cfg: QualityConfig) -> str | None:
    for key, limit in sorted(cfg.max_top_ngram_chars.items()):
        n = key * view.gram_scale
        if share(n * _top_word_chars(view), view.word_chars) <= limit:
            continue  # no n-gram can reach the limit
        counts, _ = repeated_ngrams(view, n)
        if not counts:
            continue
        gram, count = counts.most_common(1)[0]
        ratio = share(sum(map(len, gram)) * count, view.word_chars)
        if ratio > limit:
            measured = f"the {_gram_name(key, view)} '{' '.join(gram)}' ({count} times) holds {ratio:.2f} of the word characters"
            return f"{measured} > {setting('max_top_ngram_chars', limit, key)}"
    return None


def _covered_chars(words: list[str], starts: list[int], n: int) -> int:
    """Characters of the words inside the n-grams that start at `starts` (ascending)."""
    covered, reach = 0, 0
    for start in starts:
        covered += sum(map(len, words[max(start, reach) : start + n]))
        reach = start + n
    return covered


def duplicate_ngram_chars(view: DocView, cfg: QualityConfig) -> str | None:
    for key, limit in sorted(cfg.max_duplicate_ngram_chars.items()):
        n = key * view.gram_scale
        _, starts = repeated_ngrams(view, n)
        if not starts:
            break  # longer n-grams cannot repeat where shorter ones do not
        ratio = share(_covered_chars(view.words, starts, n), view.word_chars)
        if ratio > limit:
            return f"repeated {_gram_name(key, view, 's')} cover {ratio:.2f} of the word characters > " + setting(
                "max_duplicate_ngram_chars", limit, key
            )
    return None


FILTERS = [
    Filter("gopher_duplicate_lines", duplicate_lines),
    Filter("gopher_duplicate_line_chars", duplicate_line_chars),
    Filter("gopher_top_ngram_chars", top_ngram_chars),
    Filter("gopher_duplicate_ngram_chars", duplicate_ngram_chars),
]
