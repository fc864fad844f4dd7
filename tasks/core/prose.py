"""Is an LLM's text field prose? Validators of the output schemas use this to refuse a scene or a
query that is not written in sentences: a timestamp, a lone word, a run of symbols or one phrase
said over and over. A refused field gets the engine's one repair attempt, then the row is
rejected with this message as its detail.
"""

from __future__ import annotations

import re
from collections import Counter

_LETTER = re.compile(r"[^\W\d_]")
MIN_LETTER_WORDS = 0.6  # share of words with a letter: lower is numbers, dates or symbols
MAX_PHRASE_SHARE = 0.3  # share of the words taken by the most repeated 3-word phrase
MIN_DISTINCT = 0.3  # distinct words / words, for texts of 12 words or more


def prose_problem(text: str, min_words: int) -> str | None:
    """None when `text` reads as prose of at least `min_words` words, else what is wrong."""
    words = text.lower().split()
    if len(words) < min_words:
        return f"has {len(words)} words, fewer than {min_words}: write full sentences"
    lettered = sum(1 for w in words if _LETTER.search(w)) / len(words)
    if lettered < MIN_LETTER_WORDS:
        return f"only {lettered:.0%} of its words have a letter: write sentences, not numbers or symbols"
    if len(words) >= 12 and len(set(words)) / len(words) < MIN_DISTINCT:
        return f"only {len(set(words))} distinct words in {len(words)}: it repeats itself"
    grams = Counter(zip(words, words[1:], words[2:]))
    if grams:
        (gram, count), = grams.most_common(1)
        if count > 1 and 3 * count / len(words) > MAX_PHRASE_SHARE:
            return f"repeats '{' '.join(gram)}' {count} times: it repeats itself"
    return None
