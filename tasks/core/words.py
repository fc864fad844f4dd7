"""Words of a text, in every script: the unit of word counts, quality rules and shingles (ingest, curate).

Most scripts separate words with spaces, and a whitespace split is their words. Chinese,
Japanese, Thai, Lao, Khmer and Burmese are written without spaces: there a whitespace "word"
is a whole clause, so a full article counts as a dozen words and fails `min_words`. In those
scripts each character (with the vowel signs and tone marks on it) counts as one word. For
Chinese and Japanese that is close to the truth (a word is one to two characters); for Thai,
Lao, Khmer and Burmese it overcounts, so word-count limits are looser there. Their
punctuation (。，「」 and the full-width forms) separates words like a space. Text without
such characters takes the plain split, unchanged.
"""

from __future__ import annotations

import re
import unicodedata

# Thai, Lao, Burmese, Khmer; kana; CJK ideographs (with extension A and compatibility forms)
UNSPACED = "\u0e00-\u0eff\u1000-\u109f\u1780-\u17ff\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
# Vowel signs and tone marks of the Southeast Asian scripts above: they stay on their letter
_MARKS = "".join(
    chr(c) for c in (*range(0x0E00, 0x0F00), *range(0x1000, 0x10A0), *range(0x1780, 0x1800))
    if unicodedata.category(chr(c)).startswith("M")
)
# CJK symbols and punctuation, full-width punctuation: separators, as spaces are elsewhere
_CJK_PUNCTUATION = "\u3000-\u303f\uff01-\uff0f\uff1a-\uff20\uff3b-\uff40\uff5b-\uff65"
_HAS_UNSPACED = re.compile(f"[{UNSPACED}]")
_SOUTHEAST_ASIAN = re.compile("[\u0e00-\u0eff\u1000-\u109f\u1780-\u17ff]")
_TOKEN = re.compile(f"[{UNSPACED}][{_MARKS}]*|[^\\s{UNSPACED}{_CJK_PUNCTUATION}]+")


def has_unspaced(text: str) -> bool:
    """Whether the text holds any character of a script written without spaces."""
    return not text.isascii() and _HAS_UNSPACED.search(text) is not None


def split_words(text: str) -> list[str]:
    """Whitespace-separated words; one word per character in scripts written without spaces."""
    return _TOKEN.findall(text) if has_unspaced(text) else text.split()


def is_unspaced(word: str) -> bool:
    """Whether a word of `split_words` is a character (with its marks) of a script written without spaces."""
    return _HAS_UNSPACED.match(word) is not None


def is_southeast_asian(word: str) -> bool:
    """Whether a word of `split_words` is a Thai, Lao, Burmese or Khmer letter (with its marks)."""
    return _SOUTHEAST_ASIAN.match(word) is not None


# Function words that say nothing about a page's subject (a content word is any other word).
FUNCTION_WORDS = frozenset(
    """about above after again against also among because been before being below between both
    but can cannot could does doing down during each either else even ever every from further
    given good have having here hers herself himself into itself just least less like make many
    maybe might mine more most much must myself need neither never none once only other ought
    ours ourselves over please quite rather really same shall should since some still such than
    that their theirs them themselves then there these they this those though through thus till
    under until upon very want were what whatever when where whether which while whom whose why
    will with within without would write your yours yourself yourselves help tell explain give
    know using used""".split()
)
