"""Line rules from C4 and FineWeb: prose lines end in punctuation, and are not mostly short.

Menus, tag clouds, tables and link lists are made of short lines that end in no punctuation;
paragraphs of prose end in a full stop, a question or an exclamation. C4 dropped every line
without terminal punctuation; FineWeb softened that to a share of lines per document, which is
what these rules measure (a recipe's ingredient list does not sink the recipe).
"""

from __future__ import annotations

from synthq.tasks.core.config import QualityConfig
from synthq.tasks.core.filters.base import DocView, Filter, setting, share

# A sentence's last mark, in Latin, CJK, Arabic, Devanagari, Burmese, Khmer and Ethiopic scripts.
TERMINAL_PUNCTUATION = frozenset(".!?…。！？｡؟।။។።")
# Written without a mark at the end of a sentence (a space ends it): the rule cannot judge them.
NO_SENTENCE_MARK = ("th", "lo")
# Closing marks that may follow the sentence's last mark: 'He said "stop."' ends a sentence.
CLOSERS = "\"'”’»)]*_"
SHORT_LINE_CHARS = 30  # FineWeb's bound for a short line
SHORT_LINE_CJK_CHARS = 12  # the same in Chinese or Japanese, where a character holds about a word


def _ends_sentence(line: str) -> bool:
    end = line.rstrip(CLOSERS)
    return bool(end) and end[-1] in TERMINAL_PUNCTUATION


def terminal_punctuation(view: DocView, cfg: QualityConfig) -> str | None:
    ended = sum(1 for line in view.lines if _ends_sentence(line))
    ratio = share(ended, len(view.lines))
    if ratio < cfg.min_terminal_punctuation_lines:
        return f"{ended} of {len(view.lines)} lines end in terminal punctuation ({ratio:.2f}) < " + setting(
            "min_terminal_punctuation_lines", cfg.min_terminal_punctuation_lines
        )
    return None


def short_lines(view: DocView, cfg: QualityConfig) -> str | None:
    bound = SHORT_LINE_CJK_CHARS if view.script == "cjk" else SHORT_LINE_CHARS
    short = sum(1 for line in view.lines if len(line) < bound)
    ratio = share(short, len(view.lines))
    if ratio > cfg.max_short_lines:
        measured = f"{short} of {len(view.lines)} lines are under {bound} characters ({ratio:.2f})"
        return f"{measured} > {setting('max_short_lines', cfg.max_short_lines)}"
    return None


FILTERS = [
    Filter("fineweb_terminal_punctuation", terminal_punctuation, skip_languages=NO_SENTENCE_MARK),
    Filter("fineweb_short_lines", short_lines),
]
