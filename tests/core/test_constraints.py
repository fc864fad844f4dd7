"""Verifiable constraints: every kind synthq draws builds its arguments, is stated in words, and
IFEval's own checker passes an answer that follows it and fails one that does not (answers
written here); the draw never pairs conflicting kinds; the reward is the share followed."""

import random

import pytest

from synthq.tasks.core import constraints as C

WORDS = ["sourdough", "starter", "flour", "hydration"]
P = "\n\n***\n\n"
# IFEval checks that a lowercase answer is English with langdetect, which needs a sentence
LOWER = "feed the starter with flour and water every morning and keep the jar somewhere warm."
# kind -> (an answer that follows it, one that does not), for the arguments FIXED gives
FIXED = {
    "length_constraints:number_words": ({"num_words": 10, "relation": "less than"}, "Feed it daily.", "word " * 30),
    "length_constraints:number_sentences": ({"num_sentences": 2, "relation": "at least"}, "Feed it. Wait a day.", "Feed it"),
    "length_constraints:number_paragraphs": ({"num_paragraphs": 2}, f"Mix the flour.{P}Wait a day.", "One paragraph only."),
    "detectable_format:number_bullet_lists": ({"num_bullets": 2}, "* flour\n* water", "* flour"),
    "detectable_format:number_highlighted_sections": ({"num_highlights": 2}, "*one* and *two*", "*one* only"),
    "detectable_format:title": ({}, "<<Starter care>>\nFeed it.", "Starter care: feed it."),
    "detectable_content:postscript": ({"postscript_marker": "P.S."}, "Feed it.\nP.S. Keep it warm.", "Feed it."),
    "detectable_content:number_placeholders": ({"num_placeholders": 2}, "Send [name] to [address].", "Send it to me."),
    "keywords:existence": ({"keywords": ["flour", "starter"]}, "The starter needs flour.", "It needs water."),
    "keywords:forbidden_words": ({"forbidden_words": ["flour", "starter"]}, "It needs water.", "It needs flour."),
    "startend:end_checker": ({"end_phrase": "Any other questions?"}, "Feed it. Any other questions?", "Any other questions? Feed it."),
    "startend:quotation": ({}, '"Feed it daily."', "Feed it daily."),
    "punctuation:no_comma": ({}, "Feed it daily.", "Feed it, daily."),
    "change_case:english_lowercase": ({}, LOWER, LOWER.capitalize()),
    "detectable_format:json_format": ({}, '{"feed": "daily"}', "Feed it daily."),
}


def test_every_kind_drawn_has_answers_that_pass_and_fail():
    assert set(C.FREE_TEXT) | set(C.STRUCTURED) | set(C.CODE) == set(FIXED)


@pytest.mark.parametrize("kind", sorted(FIXED))
def test_a_kind_draws_its_arguments_states_them_and_checks_answers(kind):
    drawn = C.draw(random.Random(kind), 1, [kind], WORDS)
    assert [c["kind"] for c in drawn] == [kind]
    assert C.describe(drawn[0])  # IFEval's statement renders with the drawn arguments
    args, follows, breaks = FIXED[kind]
    constraint = {"kind": kind, "args": args}
    assert C.check([constraint], follows) == [True]
    assert C.check([constraint], breaks) == [False]
    assert C.stated(constraint, C.describe(constraint))  # IFEval's own wording states it


def test_a_draw_is_seeded_and_never_pairs_conflicting_kinds():
    from lm_eval.tasks.ifeval.instructions_registry import INSTRUCTION_CONFLICTS

    for seed in range(40):
        drawn = C.draw(random.Random(seed), 3, C.FREE_TEXT, WORDS)
        assert drawn == C.draw(random.Random(seed), 3, C.FREE_TEXT, WORDS)
        kinds = [c["kind"] for c in drawn]
        assert len(kinds) == 3 and not any(b in INSTRUCTION_CONFLICTS[a] for a in kinds for b in kinds if a != b), kinds
    assert C.draw(random.Random(0), 1, ["keywords:existence"], []) == []  # no document words: no keyword constraint
    assert set(C.fitting("a JSON object with the fields")) == set(C.STRUCTURED)
    assert "length_constraints:number_words" not in C.fitting("a Python function")


def test_a_query_that_leaves_out_an_argument_does_not_state_it():
    paragraphs = {"kind": "length_constraints:number_paragraphs", "args": {"num_paragraphs": 3}}
    assert C.stated(paragraphs, "Explain it in three paragraphs split by ***.")
    assert not C.stated(paragraphs, "Explain it in a few paragraphs.")
    keywords = {"kind": "keywords:existence", "args": {"keywords": ["flour", "starter"]}}
    assert not C.stated(keywords, "Mention the flour you use.")


def test_the_reward_is_the_share_of_constraints_followed():
    row = [{"kind": "punctuation:no_comma", "args": {}}, {"kind": "change_case:english_lowercase", "args": {}}]
    assert C.constraint_reward([LOWER, LOWER.capitalize().replace(" and", ", and"), LOWER.capitalize()], [row, row, row]) == [1.0, 0.0, 0.5]
    conversational = [[{"role": "assistant", "content": LOWER}]]
    assert C.constraint_reward(conversational, [row]) == [1.0]
