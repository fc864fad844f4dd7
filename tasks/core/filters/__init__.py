"""Quality filters for text: the registry, in the order they run, and `apply`. Ingest runs
them on documents, curation's model-free checks on generated queries, so they live in core.

Each filter is a named rule (see `base.Filter`) that keeps a document or drops it with a
reason (the filter's name) and a readable detail. The rules follow Gopher, C4 and FineWeb;
their thresholds live in `QualityConfig`, and `quality.disabled` names the filters to skip.
Cheap rules run first and the first failing one wins, so most junk costs only a word count.
"""

from __future__ import annotations

from synthq.tasks.core.config import QualityConfig
from synthq.tasks.core.errors import ConfigError
from synthq.tasks.core.filters import gopher, lines, repetition
from synthq.tasks.core.filters.base import DocView, Filter

FILTERS: list[Filter] = [*gopher.FILTERS, *lines.FILTERS, *repetition.FILTERS]
_NAMES = frozenset(f.name for f in FILTERS)

__all__ = ["FILTERS", "DocView", "Filter", "apply", "names"]


def names() -> list[str]:
    """Every filter's name (its rejection reason), in the order they run."""
    return [f.name for f in FILTERS]


def _check_disabled(disabled: list[str]) -> None:
    unknown = set(disabled) - _NAMES
    if unknown:
        raise ConfigError(
            f"ingest.quality.disabled names unknown filters {sorted(unknown)}; "
            f"the filters are: {', '.join(names())}."
        )


def apply(text: str, cfg: QualityConfig, language: str = "en") -> tuple[str, str] | None:
    """None to keep `text`; else (reason, detail) from the first filter it fails.

    `language` is the document's ISO 639-1 code: rules built on English words run only for "en".
    """
    _check_disabled(cfg.disabled)
    view = DocView(text)
    for f in FILTERS:
        if f.name in cfg.disabled or (f.english_only and language != "en") or language in f.skip_languages:
            continue
        detail = f.check(view, cfg)
        if detail:
            return f.name, detail
    return None
