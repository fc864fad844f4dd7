"""Checks of a synthesized query that need no model: length, language, prose, repetition, and
how the query relates to the document it was grounded in.

A judge model, small or large, can pass a word loop or text about nothing on the page. These
checks run before scoring (so no scoring call is spent on such a query), each with a reason a
user can count and a detail naming the setting to change:

- query_too_short / query_too_long: words outside `curate.checks.min_words..max_words`;
- query_not_prose: mean word length, symbols or letterless words as the document filters
  measure them (looser thresholds: queries carry code and tables);
- query_repetitive: the most frequent n-gram, or n-grams seen more than once, cover too many
  characters (the document filters' Gopher rules);
- query_language: not in `curate.checks.languages`, or identified too uncertainly;
- query_off_document: too few of the query's content words occur in its document;
- query_copied: most of the query is runs of words pasted verbatim from the document;
- query_template_leak: the query carries template markup (`{{query}}`, `{% ... %}`) or echoes
  the synthesis prompt's own frame (its document tags, section headings, JSON instructions).
"""

from __future__ import annotations

import re

from synthq.tasks.core.config import QualityConfig
from synthq.tasks.core.method_config import QueryChecks
from synthq.tasks.core.filters import FILTERS, DocView
from synthq.tasks.core.langid import identify
from synthq.tasks.core.words import FUNCTION_WORDS

# Rules of the document filters that also judge a query, by the reason they report there.
PROSE_RULES = ("gopher_mean_word_length", "gopher_symbol_ratio", "gopher_alpha_words")
REPETITION_RULES = ("gopher_top_ngram_chars", "gopher_duplicate_ngram_chars")
_RULES = {f.name: f for f in FILTERS}
MIN_CONTENT_CHARS = 4
REASONS = (
    "query_too_short", "query_too_long", "query_language", "query_not_prose",
    "query_repetitive", "query_off_document", "query_copied", "query_template_leak",
)
# the prompts' own placeholders ({{query}}, {{ document | fence }}; a user's question about a
# template language keeps its own), a placeholder opening the query, and the synthesis prompt's
# frame: a query that shows them leaked the prompt
TEMPLATE_LEAK = re.compile(
    r"\{\{\s*(query|document|title|scene|demo|demonstrations|rules?|ability|knowledge|extra_information|output)\s*[|}]"
    r"|^\s*\{\{[^}]*\}\}|</?document\b|^\s*##\s*(new document|example)\b|reply with json|\"query_compositions\"",
    re.I | re.M,
)


def _quality(cfg: QueryChecks) -> QualityConfig:
    """The document filters' thresholds replaced by the query checks' own."""
    return QualityConfig(
        min_mean_word_length=cfg.min_mean_word_length,
        max_mean_word_length=cfg.max_mean_word_length,
        max_symbol_word_ratio=cfg.max_symbol_word_ratio,
        min_alpha_words=cfg.min_alpha_words,
        max_top_ngram_chars=cfg.max_top_ngram_chars,
        max_duplicate_ngram_chars=cfg.max_duplicate_ngram_chars,
    )


def _rule(view: DocView, names: tuple[str, ...], quality: QualityConfig) -> str | None:
    for name in names:
        detail = _RULES[name].check(view, quality)
        if detail:
            return detail.replace("ingest.quality.", "curate.checks.")
    return None


def content_words(words: list[str]) -> set[str]:
    return {w for w in words if len(w) >= MIN_CONTENT_CHARS and w.isalpha() and w not in FUNCTION_WORDS}


def document_overlap(query_words: list[str], document_words: set[str]) -> tuple[float, int]:
    """(share of the query's distinct content words found in the document, how many it has)."""
    mine = content_words(query_words)
    return (len(mine & document_words) / len(mine) if mine else 1.0), len(mine)


def copied_share(query_words: list[str], document_words: list[str], n: int) -> float:
    """Share of the query's words inside a run of n words that also occurs in the document."""
    if len(query_words) < n:
        return 0.0
    grams = {tuple(document_words[i : i + n]) for i in range(len(document_words) - n + 1)}
    covered = [False] * len(query_words)
    for i in range(len(query_words) - n + 1):
        if tuple(query_words[i : i + n]) in grams:
            covered[i : i + n] = [True] * n
    return sum(covered) / len(query_words)


class QueryChecker:
    """The checks with their thresholds, reused for every query of a shard."""

    def __init__(self, cfg: QueryChecks):
        self.cfg = cfg
        self.quality = _quality(cfg)
        self._documents: dict[str, tuple[list[str], set[str]]] = {}

    def _document(self, doc_id: str, text: str) -> tuple[list[str], set[str]]:
        if doc_id not in self._documents:
            words = DocView(text).words
            self._documents[doc_id] = (words, set(words))
        return self._documents[doc_id]

    def check(self, query: str, document_id: str, document: str | None) -> tuple[str, str] | None:
        """None to keep the query, else (reason, detail)."""
        c = self.cfg
        view = DocView(query)
        n = len(view.words)
        if n < c.min_words:
            return "query_too_short", f"{n} words < curate.checks.min_words={c.min_words}"
        if n > c.max_words:
            return "query_too_long", f"{n} words > curate.checks.max_words={c.max_words}"
        for reason, rules in (("query_not_prose", PROSE_RULES), ("query_repetitive", REPETITION_RULES)):
            detail = _rule(view, rules, self.quality)
            if detail:
                return reason, detail
        if leak := TEMPLATE_LEAK.search(query):
            return "query_template_leak", f"the query carries '{leak.group(0).strip()}' from the prompt's template"
        if c.languages:
            language, score = identify(query)
            if score < c.min_language_score or language not in c.languages:
                return "query_language", (
                    f"identified as '{language}' ({score:.2f}); curate.checks.languages={c.languages}, "
                    f"curate.checks.min_language_score={c.min_language_score:g}"
                )
        if document is None:
            return None
        doc_words, doc_vocab = self._document(document_id, document)
        overlap, content = document_overlap(view.words, doc_vocab)
        if overlap < c.min_document_overlap:
            return "query_off_document", (
                f"{overlap:.0%} of its {content} content words occur in document {document_id} "
                f"< curate.checks.min_document_overlap={c.min_document_overlap:g}"
            )
        copied = copied_share(view.words, doc_words, c.copy_ngram)
        if copied > c.max_copied_share:
            return "query_copied", (
                f"{copied:.0%} of its words are {c.copy_ngram}-word runs of document {document_id} "
                f"> curate.checks.max_copied_share={c.max_copied_share:g}"
            )
        return None
