"""Language identification: which language a text is in, how sure, and the allow-list."""

import pytest

from synthq.tasks.core.langid import check_language, identify

ENGLISH = (
    "A sourdough starter is a living culture of wild yeast and bacteria. Feed it flour and water "
    "every day, keep it somewhere warm, and it will double in size a few hours after each feeding."
)
GERMAN = (
    "Ein Sauerteig braucht vor allem Zeit und Geduld. Man füttert ihn jeden Tag mit Mehl und Wasser, "
    "stellt ihn an einen warmen Ort und wartet, bis er nach einigen Stunden deutlich aufgegangen ist."
)
FRENCH = (
    "Le levain est une culture vivante de levures sauvages et de bactéries. Il faut le nourrir chaque "
    "jour avec de la farine et de l'eau, le garder au chaud, et il doublera de volume en quelques heures."
)
CHINESE = (
    "酸面团的发酵种是一种由野生酵母和细菌组成的活性培养物。每天用面粉和水喂养它，把它放在温暖的地方，"
    "几个小时后它的体积就会增加一倍。面包师傅常说，耐心比配方更重要。"
)


@pytest.mark.parametrize(
    "text, language", [(ENGLISH, "en"), (GERMAN, "de"), (FRENCH, "fr"), (CHINESE, "zh")]
)
def test_identifies_the_language_with_confidence(text, language):
    found, score = identify(text)
    assert found == language
    assert 0.9 < score <= 1.0


def test_titles_and_bylines_do_not_sway_the_guess():
    page = "Sauerteig\nvon Anna Müller\n12. März 2024\n" + ENGLISH
    assert identify(page)[0] == "en"


def test_long_text_is_sampled_not_read_whole():
    found, score = identify((GERMAN + "\n") * 2000)
    assert found == "de" and score > 0.9


@pytest.mark.parametrize("text", ["", "   \n\t ", "12 34 56 -- 78 %"])
def test_text_without_letters_is_undetermined(text):
    assert identify(text) == ("und", 0.0)
    language, score, rejection = check_language(text, ["en"], 0.5)
    assert (language, score) == ("und", 0.0)
    assert rejection[0] == "language_unsure"


def test_allowed_language_is_kept():
    language, score, rejection = check_language(ENGLISH, ["en"], 0.5)
    assert language == "en" and score > 0.9 and rejection is None


def test_language_outside_the_allow_list_is_rejected():
    language, _, rejection = check_language(GERMAN, ["en", "fr"], 0.5)
    assert language == "de"
    reason, detail = rejection
    assert reason == "language_not_allowed"
    assert "'de'" in detail and "ingest.languages=['en', 'fr']" in detail


def test_empty_allow_list_keeps_every_language():
    for text in (ENGLISH, GERMAN, FRENCH, CHINESE):
        assert check_language(text, [], 0.5)[2] is None


def test_min_score_is_honoured():
    text = "Paris Berlin"  # two names: the model guesses, unsure
    language, score, rejection = check_language(text, [], min_score=0.999)
    assert score < 0.999
    assert rejection[0] == "language_unsure" and "ingest.min_language_score=0.999" in rejection[1]
    assert check_language(text, [], min_score=0.0)[2] is None
    assert check_language(ENGLISH, ["en"], min_score=0.9)[2] is None


def test_unsure_guess_is_unsure_rather_than_not_allowed():
    *_, rejection = check_language("Paris Berlin", ["xx"], min_score=0.999)
    assert rejection[0] == "language_unsure"
