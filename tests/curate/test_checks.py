"""The model-free query checks: real user requests pass, each kind of degenerate output is
dropped with its own reason and a detail naming the setting."""

import json

import pytest

from synthq.tasks.core.method_config import QueryChecks
from synthq.tasks.curate.checks import QueryChecker, copied_share, document_overlap
from synthq.tasks.core.filters import DocView
from synthq.tasks.sample import PAGES, SEEDS

PAGE = PAGES / "01-sourdough-starter.html"


@pytest.fixture(scope="module")
def document() -> str:
    import trafilatura

    return trafilatura.extract(PAGE.read_text())


def test_every_seed_instruction_of_the_sample_passes():
    checker = QueryChecker(QueryChecks())
    seeds = [json.loads(line) for line in SEEDS.read_text().splitlines() if line.strip()]
    failed = [(s["id"], checker.check(s["prompt"], "", None)) for s in seeds]
    assert [f for f in failed if f[1]] == []


@pytest.mark.parametrize("query, reason, setting", [
    ("it doesnt matter how many people utter", "query_too_short", "min_words"),
    ("please stop that now. the answer is here, the answer is here, the answer is here, the answer is here",
     "query_repetitive", "max_top_ngram_chars"),
    ("query d'età e vitòra a tutto il spettacole di l'amore. Par la fin da Mediolà amore, ma la morte de l'amore.",
     "query_language", "languages"),
    ("{{#TRAVERSE}} query a place.}{{#TRAVERSE}} {#TRAVERSE}} {#TRAVERSE}} {#TRAVERSE}} {#A question} # # # # # answer",
     "query_not_prose", "curate.checks."),
    ("Your thoughts are as sage as those of a wise old shepherd who watches the valley at night.",
     "query_off_document", "min_document_overlap"),
    # a released query once began with the synthesis prompt's placeholder
    ("{{query}}} Question: how long should a sourdough starter rest before feeding it again?",
     "query_template_leak", "{{query}"),
    ("## New document\nHow long should a sourdough starter rest before it is fed again?", "query_template_leak", "## New document"),
])
def test_degenerate_queries_are_dropped_by_reason(query, reason, setting, document):
    failed = QueryChecker(QueryChecks()).check(query, "doc-1", document)
    assert failed and failed[0] == reason, failed
    assert setting in failed[1]


def test_a_pasted_excerpt_is_an_extraction_task(document):
    excerpt = " ".join(document.split()[40:160])
    failed = QueryChecker(QueryChecks()).check(f"Summarize this: {excerpt}", "doc-1", document)
    assert failed and failed[0] == "query_copied" and "max_copied_share" in failed[1]


def test_a_grounded_request_with_an_excerpt_passes(document):
    excerpt = " ".join(document.split()[40:70])
    query = (f"My sourdough starter smells like nail polish and barely rises. The guide I follow says: \"{excerpt}\" "
             "Given my kitchen is cold (17 C), work out a feeding schedule and ratios for the next five days, "
             "and explain what each change does to the yeast and bacteria.")
    assert QueryChecker(QueryChecks()).check(query, "doc-1", document) is None
    words = DocView(query).words
    assert document_overlap(words, set(DocView(document).words))[0] > 0.5
    assert 0.2 < copied_share(words, DocView(document).words, 8) < 0.9


def test_thresholds_are_settings(document):
    loose = QueryChecks(min_words=3, min_document_overlap=0.0)
    assert QueryChecker(loose).check("Your thoughts are wise.", "d", document) is None
    assert QueryChecker(QueryChecks(languages=[])).check("Ma la morte de l'amore est una strato morto para l'ambiency di terapia.", "d", None) is None
