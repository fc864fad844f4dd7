"""Model-free checks of sampled answers, and how a rationale answer is split."""

import pytest

from synthq.tasks.respond.checks import check_answer, is_refusal, response_text, split_rationale


@pytest.mark.parametrize("text", [
    "I'm sorry, but I can't help with that.",
    "Sorry, I cannot assist with this request.",
    "As an AI language model, I cannot provide that.",
    "I am unable to help with writing this.",
    "Unfortunately, I can't help with that request.",
])
def test_refusals_are_seen(text):
    assert is_refusal(text)


@pytest.mark.parametrize("text", [
    "Here is a function that does it. I can't guarantee it is the fastest.",
    "I can help with that: first, feed the starter twice a day.",
    "Sorry to hear the starter smells! Feed it more often.",
])
def test_helpful_answers_are_not_refusals(text):
    assert not is_refusal(text)


def test_each_reason():
    assert check_answer("  \n", "stop", False, 512).reason == "answer_empty"
    assert check_answer("A long answer that goes on", "length", False, 512).reason == "answer_truncated"
    assert check_answer("I cannot help with that.", "stop", False, 512).reason == "answer_refusal"
    assert check_answer("Feed it twice a day.", "stop", True, 512).reason == "rationale_missing"
    assert check_answer("Answer: feed it.", "stop", True, 512).reason == "rationale_missing"  # no reasoning
    ok = check_answer("Feed it twice a day.", "stop", False, 512)
    assert ok.reason is None and ok.answer == "Feed it twice a day." and response_text(ok) == ok.answer


def test_rationale_is_split_at_the_last_answer_line():
    text = "Reasoning: acetone means hunger.\nSo feed more: the answer: is not here.\n\nAnswer: Feed it twice a day."
    assert split_rationale(text) == ("acetone means hunger.\nSo feed more: the answer: is not here.", "Feed it twice a day.")
    checked = check_answer(text, "stop", True, 512)
    assert checked.reason is None
    assert response_text(checked) == "acetone means hunger.\nSo feed more: the answer: is not here.\n\nAnswer: Feed it twice a day."
    assert split_rationale("**Final answer:** 42")[1] == "42"
