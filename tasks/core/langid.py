"""Language identification of extracted text with py3langid (its model ships in the package).

`identify` names the language of a text with a confidence between 0 and 1; `check_language`
turns that into a rejection when the language is not on the allow-list or too uncertain.
The model is loaded once per process, on first use (about a second, 57 MB). Only a sample of
the text is read: the model walks its UTF-8 bytes one by one in Python, and a few sentences
of prose name a language as surely as a whole page. The sample comes from the first prose
lines, skipping titles, bylines, captions, table rows and code, mostly names and numbers.
"""

from __future__ import annotations

import functools
import re

from py3langid.langid import MODEL_FILE, LanguageIdentifier

SAMPLE_BYTES = 500  # UTF-8 bytes read: about 80 English words, 160 Chinese characters
PROSE_LINE_CHARS = 40  # shorter lines are headings, bylines, captions or list items
SENTENCE_ENDS = tuple(".!?。！？")  # a prose line ends a sentence; table rows and code do not
UNDETERMINED = "und"  # ISO 639 for "no language": the text has no letters to go by
_LETTER = re.compile(r"[^\W\d_]")


@functools.cache
def _identifier() -> LanguageIdentifier:
    """The bundled model with normalized probabilities, loaded the way py3langid documents."""
    return LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)


def _is_prose(line: str) -> bool:
    line = line.rstrip()
    return len(line) >= PROSE_LINE_CHARS and line.endswith(SENTENCE_ENDS)


def _sample(text: str) -> bytes:
    """Up to SAMPLE_BYTES of the first prose lines (the text's start when it has none), in UTF-8,
    cut back to the last space so no word is split (py3langid drops a split character's bytes)."""
    head = text[: SAMPLE_BYTES * 8]
    prose = "\n".join(filter(_is_prose, head.split("\n")))
    sample = (prose or head).encode("utf-8", errors="replace")
    if len(sample) <= SAMPLE_BYTES:
        return sample
    cut = sample.rfind(b" ", SAMPLE_BYTES // 2, SAMPLE_BYTES)
    return sample[: cut if cut > 0 else SAMPLE_BYTES]


def identify(text: str) -> tuple[str, float]:
    """(ISO 639-1 code, confidence 0-1); ("und", 0.0) when the text has no letters."""
    if not _LETTER.search(text[:SAMPLE_BYTES * 8]):
        return UNDETERMINED, 0.0
    language, score = _identifier().classify(_sample(text))
    return language, round(float(score), 4)


def check_language(
    text: str, languages: list[str], min_score: float
) -> tuple[str, float, tuple[str, str] | None]:
    """(language, score, None) to keep the text, else a rejection (reason, detail) as the third item.

    An uncertain guess is reported as unsure before it is judged against the allow-list: a
    text the model cannot place is not known to be in a language the user excluded.
    """
    language, score = identify(text)
    if score < min_score:
        return language, score, (
            "language_unsure",
            f"best guess '{language}' at {score:.2f} < ingest.min_language_score={min_score:g}",
        )
    if languages and language not in languages:
        return language, score, (
            "language_not_allowed",
            f"identified as '{language}' ({score:.2f}), not in ingest.languages={languages}",
        )
    return language, score, None
