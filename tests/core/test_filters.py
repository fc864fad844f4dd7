"""Quality filters: each rule keeps good text, names its reason on bad text, reads its threshold
from the config and can be disabled; the bundled sample articles all pass."""

import random
import re
from collections import Counter

import pytest
import trafilatura

from synthq.tasks.core.config import QualityConfig
from synthq.tasks.core.errors import ConfigError
from synthq.tasks.core import filters
from synthq.tasks.core.filters import repetition
from synthq.tasks.core.filters.base import DocView
from synthq.tasks.sample import PAGES

CFG = QualityConfig()

GOOD = """How to keep a sourdough starter alive
A starter is a living culture of wild yeast and bacteria that raises bread without any packet yeast.
Feed it equal weights of flour and water once a day, and keep the jar somewhere warm but out of direct sun.
A healthy culture doubles within four to eight hours and smells pleasantly sour, a little like yoghurt.
If a grey liquid collects on top, pour it off: the culture is hungry, not dead, and needs feeding sooner.
Whole rye flour speeds things up because it carries more wild microbes than white wheat flour does.
Before a long holiday, stiffen the mix with extra flour and park it in the fridge for up to two weeks.
When you return, two or three feedings at room temperature bring its rhythm back to normal."""

SENTENCES = GOOD.split("\n")[1:]


def without_stop_words() -> str:
    return "\n".join(
        [
            "Bakers love rye because it ferments quickly, smells sweet, plus rises well in warm kitchens.",
            "Many home cooks keep jars on a shelf near an oven, feeding them flour plus water every morning.",
            "Healthy cultures double in size within hours, bubble visibly, then taste pleasantly sour.",
            "Grey liquid on top means hunger, not death; pour it off, then feed again sooner next time.",
            "Cold storage slows everything down, so a fridge works for holidays lasting up to two weeks.",
        ]
    )


def random_prose(vocabulary: str, n_words: int = 120, seed: int = 0) -> str:
    """Word salad from `vocabulary`, in lines of twelve words ending in a full stop."""
    rng = random.Random(seed)
    words = [rng.choice(vocabulary.split()) for _ in range(n_words)]
    return "\n".join(" ".join(words[i : i + 12]) + "." for i in range(0, n_words, 12))


def lengthened(text: str, suffix: str) -> str:
    """Every word of four letters or more gets `suffix`: same sentences, longer words."""
    return re.sub(r"\b(\w{4,})\b", rf"\1{suffix}", text)


TAGS = "bread rye yeast sour bake jar oven flour water crumb crust levain loaf dough proof knead"
SHORT_WORDS = "a i am an as at be by do go he if in is it me my no of oh ok on or so to up us we"
VERBS = (
    "feeds rises sours bubbles thrives sleeps wakes grows ferments doubles sinks spreads settles "
    "smells tastes lingers waits hungers recovers rests works multiplies survives returns"
)
LONG_LINE = " ".join(SENTENCES[:3])
FOUR_WORD_LINES = "\n".join(
    " ".join(GOOD.split()[i : i + 4]) + "." for i in range(0, len(GOOD.split()), 4)
)

# (filter name, a text that trips it and no filter before it, a setting under which it passes)
TRIPS = [
    ("gopher_word_count", SENTENCES[0], {"min_words": 10}),
    ("gopher_word_count", GOOD, {"max_words": 1000}),  # tripped under max_words=50, see _trip_cfg
    ("gopher_mean_word_length", lengthened(GOOD, "ificationism"), {"max_mean_word_length": 20}),
    ("gopher_mean_word_length", random_prose(SHORT_WORDS), {"min_mean_word_length": 1}),
    ("gopher_symbol_ratio", GOOD + "\n" + " ".join(f"#{w} #{w}s" for w in TAGS.split()) + ".", {"max_symbol_word_ratio": 0.3}),
    ("gopher_bullet_lines", "\n".join(f"- {s}" for s in SENTENCES), {"max_bullet_lines": 1.0}),
    ("gopher_ellipsis_lines", "\n".join(s[:-1] + "…" if i % 2 else s for i, s in enumerate(SENTENCES)), {"max_ellipsis_lines": 0.6}),
    ("gopher_alpha_words", GOOD + "\n" + " ".join(str(10_000 + 7919 * i) for i in range(60)) + ".", {"min_alpha_words": 0.5}),
    ("gopher_stop_words", without_stop_words(), {"min_stop_words": 0}),
    ("fineweb_terminal_punctuation", GOOD.replace(".", "").replace(":", ""), {"min_terminal_punctuation_lines": 0.0}),
    ("fineweb_short_lines", FOUR_WORD_LINES, {"max_short_lines": 1.0}),
    ("gopher_duplicate_lines", GOOD + ("\n" + SENTENCES[2]) * 4, {"max_duplicate_lines": 0.5}),
    ("gopher_duplicate_line_chars", GOOD + ("\n" + LONG_LINE) * 2, {"max_duplicate_line_chars": 0.5}),
    ("gopher_top_ngram_chars", GOOD + "\n" + ", ".join(f"wild yeast {v}" for v in VERBS.split()) + ".", {"max_top_ngram_chars": {2: 0.5, 3: 0.5}}),
    ("gopher_duplicate_ngram_chars", "\n".join(SENTENCES + [f"{a} {b}" for a, b in zip(SENTENCES, SENTENCES[1:])]), {"max_duplicate_ngram_chars": {5: 1.0}}),
]
IDS = [f"{name}-{i}" for i, (name, *_) in enumerate(TRIPS)]
CHECKS = {f.name: f.check for f in filters.FILTERS}


def _cfg(**overrides) -> QualityConfig:
    return QualityConfig(**{**CFG.model_dump(), **overrides})


def _trip_cfg(text: str) -> QualityConfig:
    return _cfg(max_words=50) if text is GOOD else CFG


def test_good_prose_passes_every_filter():
    assert filters.apply(GOOD, CFG) is None


@pytest.mark.parametrize("name, text, passing", TRIPS, ids=IDS)
def test_filter_names_its_reason(name, text, passing):
    reason, detail = filters.apply(text, _trip_cfg(text))
    assert reason == name, detail
    assert "ingest.quality." in detail


@pytest.mark.parametrize("name, text, passing", TRIPS, ids=IDS)
def test_threshold_comes_from_the_config(name, text, passing):
    cfg = _trip_cfg(text)
    assert CHECKS[name](DocView(text), cfg) is not None
    assert CHECKS[name](DocView(text), cfg.model_copy(update=passing)) is None


@pytest.mark.parametrize("name, text, passing", TRIPS, ids=IDS)
def test_disabled_filter_is_skipped(name, text, passing):
    cfg = _trip_cfg(text).model_copy(update={"disabled": [name]})
    result = filters.apply(text, cfg)
    assert result is None or result[0] != name


def test_detail_names_the_value_and_the_setting():
    glued = GOOD.replace(" ", "")
    reason, detail = filters.apply(glued, _cfg(min_words=1))
    assert reason == "gopher_mean_word_length"
    assert detail.startswith("mean word length ") and detail.endswith("> ingest.quality.max_mean_word_length=10")


def test_stop_words_count_only_for_english():
    text = without_stop_words()
    assert filters.apply(text, CFG, language="en")[0] == "gopher_stop_words"
    assert filters.apply(text, CFG, language="de") is None


def test_first_failing_filter_wins():
    spam = "\n".join(["Buy now"] * 80)  # fails several rules: the earliest one is reported
    failing = [f.name for f in filters.FILTERS if f.check(DocView(spam), CFG)]
    assert len(failing) > 1
    assert filters.apply(spam, CFG)[0] == failing[0]


def test_names_are_unique_and_in_run_order():
    names = filters.names()
    assert names == [f.name for f in filters.FILTERS]
    assert len(set(names)) == len(names) == 13
    assert names[0] == "gopher_word_count"


def test_unknown_disabled_name_is_a_config_error():
    with pytest.raises(ConfigError, match="gopher_word_cuont"):
        filters.apply(GOOD, _cfg(disabled=["gopher_word_cuont"]))


@pytest.mark.parametrize("text", ["", "\n\n  \n", "…", "# # #", "a"])
def test_degenerate_text_never_crashes(text):
    for language in ("en", "zh"):
        filters.apply(text, CFG, language=language)
        filters.apply(text, _cfg(min_words=0, min_stop_words=0, min_terminal_punctuation_lines=0.0), language=language)


def _brute_force_repeats(words: list[str], n: int) -> list[int]:
    grams = [tuple(words[i : i + n]) for i in range(len(words) - n + 1)]
    counts = Counter(grams)
    return [i for i, g in enumerate(grams) if counts[g] > 1]


def _brute_force_covered_share(words: list[str], n: int) -> float:
    covered = {p for i in _brute_force_repeats(words, n) for p in range(i, i + n)}
    return sum(len(words[p]) for p in covered) / max(1, sum(map(len, words)))


def _brute_force_top_share(words: list[str], n: int) -> float:
    counts = Counter(tuple(words[i : i + n]) for i in range(len(words) - n + 1))
    if not counts:
        return 0.0
    gram, count = counts.most_common(1)[0]
    return sum(map(len, gram)) * count / sum(map(len, words)) if count > 1 else 0.0


def _word_salads(count: int = 60) -> list[list[str]]:
    rng = random.Random(7)
    vocabulary = "a bb ccc dddd eeeee".split()
    return [
        [rng.choice(vocabulary[: rng.randint(2, 5)]) for _ in range(rng.randint(0, 120))]
        for _ in range(count)
    ]


def test_pruned_ngram_search_finds_every_repeat():
    for words in _word_salads():
        chained = DocView(" ".join(words))  # n derived from n - 1
        for n in range(2, 11):
            expected = _brute_force_repeats(words, n)
            assert repetition.repeated_ngrams(chained, n)[1] == expected
            alone = DocView(" ".join(words))  # counted at every position
            assert repetition.repeated_ngrams(alone, n)[1] == expected


def test_top_ngram_shortcuts_never_miss_a_repeat():
    for words in _word_salads():
        for limit in (0.1, 0.3, 0.5, 0.7):
            cfg = _cfg(max_top_ngram_chars={2: limit, 3: limit, 4: limit})
            expected = any(_brute_force_top_share(words, n) > limit for n in (2, 3, 4))
            got = repetition.top_ngram_chars(DocView(" ".join(words)), cfg)
            assert (got is not None) == expected, (words, limit, got)


def test_covered_characters_match_a_brute_force_count():
    for words in _word_salads():
        for limit in (0.2, 0.5, 0.8, 0.95):
            cfg = _cfg(max_duplicate_ngram_chars={n: limit for n in range(5, 11)})
            expected = any(_brute_force_covered_share(words, n) > limit for n in range(5, 11))
            got = repetition.duplicate_ngram_chars(DocView(" ".join(words)), cfg)
            assert (got is not None) == expected, (words, limit, got)


def _sample_texts() -> dict[str, str]:
    return {p.name: trafilatura.extract(p.read_text(encoding="utf-8")) or "" for p in sorted(PAGES.glob("*.html"))}


def test_sample_articles_pass_and_the_login_wall_does_not():
    texts = _sample_texts()
    assert len(texts) > 30
    verdicts = {name: filters.apply(text, CFG) for name, text in texts.items()}
    assert verdicts.pop("37-login-wall.html") is not None
    assert {name: v for name, v in verdicts.items() if v} == {}
