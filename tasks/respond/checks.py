"""Model-free checks of one sampled answer: each answers keep, or drop with a reason.

An answer is dropped when it is empty, cut off at the token limit, only refuses a request
that passed curation (moderation included, so a refusal there is a failure, not caution), or,
for the rationale variant, has no final answer after its reasoning.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# Openings of a bare refusal. Only the start is read: an answer that helps and then adds a
# caveat ("I can't guarantee...") is not a refusal.
_REFUSAL = re.compile(
    r"^\W*(?:(?:i'?m|i am) sorry|sorry|unfortunately|as an ai(?: language model)?)?[,.!]?\s*"
    r"(?:but\s+)?(?:i|we)\s*(?:can(?:'|no)?t|cannot|am unable to|am not able to|won'?t|will not|must decline to)\s+"
    r"(?:help|assist|provide|answer|comply|fulfil|fulfill|do that|write|create|complete)",
    re.IGNORECASE,
)
_ANSWER_MARK = re.compile(r"^\W*(?:final\s+)?answer\s*:(?:\*\*|__)?[ \t]*", re.IGNORECASE | re.MULTILINE)
_REASONING_MARK = re.compile(r"^\W*(?:reasoning|reason)\s*:\s*", re.IGNORECASE)


@dataclass
class Checked:
    reasoning: str = ""
    answer: str = ""
    reason: str | None = None  # set when the answer is dropped
    detail: str = ""


def is_refusal(text: str) -> bool:
    return bool(_REFUSAL.match(text.strip()[:200]))


def split_rationale(text: str) -> tuple[str, str] | None:
    """(reasoning, answer) split at the last 'Answer:' line, or None when there is none."""
    marks = list(_ANSWER_MARK.finditer(text))
    if not marks:
        return None
    last = marks[-1]
    reasoning = _REASONING_MARK.sub("", text[: last.start()].strip(), count=1).strip()
    return reasoning, text[last.end():].strip()


def check_answer(text: str, finish_reason: str | None, rationale: bool, max_tokens: int) -> Checked:
    text = text.strip()
    if not text:
        return Checked(reason="answer_empty", detail="the model returned no text")
    if finish_reason == "length":
        return Checked(reason="answer_truncated", detail=f"cut off at respond.max_answer_tokens={max_tokens}")
    if is_refusal(text):
        return Checked(reason="answer_refusal", detail=f"refuses a request that passed curation: {text[:120]!r}")
    if not rationale:
        return Checked(answer=text)
    parts = split_rationale(text)
    if parts is None or not parts[1]:
        return Checked(reason="rationale_missing", detail="no final answer under an 'Answer:' line after the reasoning")
    if not parts[0]:
        return Checked(reason="rationale_missing", detail="an answer with no reasoning before it")
    return Checked(reasoning=parts[0], answer=parts[1])


def response_text(checked: Checked) -> str:
    """The assistant turn as trained on: the answer, or the reasoning and then the answer."""
    if not checked.reasoning:
        return checked.answer
    return f"{checked.reasoning}\n\nAnswer: {checked.answer}"
