"""Verifiable constraints: rules a program checks on an answer (IFEval's instruction registry).

A constraint is data: an IFEval instruction id and its arguments, e.g.
`{"kind": "length_constraints:number_paragraphs", "args": {"num_paragraphs": 3}}`. synthq
draws them (a seeded draw, no two that IFEval lists as conflicting), the LLM words them into
the query, and every answer is checked with lm-evaluation-harness's own IFEval scorer, so a
constraint passes here exactly when IFEval would score it followed. `constraint_reward` is the
same check in the shape TRL's GRPOTrainer calls a reward function.
"""

from __future__ import annotations

import json
import random
import re
import threading
from collections.abc import Sequence
from functools import cache

from synthq.tasks.core.packaged import nltk_data

# Kinds drawn for a free-text answer, and each one's arguments as IFEval's builders make them.
# Left out: the response language (the query states it), repeating the prompt or answering twice
# (they change what the answer is), a letter's or capital words' frequency (unnatural for a
# grounded request), and JSON (offered only where the answer is structured: STRUCTURED).
FREE_TEXT = (
    "length_constraints:number_words",
    "length_constraints:number_sentences",
    "length_constraints:number_paragraphs",
    "detectable_format:number_bullet_lists",
    "detectable_format:number_highlighted_sections",
    "detectable_format:title",
    "detectable_content:postscript",
    "detectable_content:number_placeholders",
    "keywords:existence",
    "keywords:forbidden_words",
    "startend:end_checker",
    "startend:quotation",
    "punctuation:no_comma",
    "change_case:english_lowercase",
)
STRUCTURED = ("detectable_format:json_format", "keywords:existence", "keywords:forbidden_words")
CODE = ("detectable_content:postscript", "startend:end_checker", "detectable_format:title")
_STRUCTURED_OUTPUT = re.compile(r"\b(json|yaml|csv|table|schema)\b", re.I)
_CODE_OUTPUT = re.compile(r"\b(code|script|function|program|snippet|query|regex|sql|command)\b", re.I)
_LOCK = threading.Lock()  # IFEval's builders draw from the module-level `random`


@cache
def _ifeval():
    """lm-evaluation-harness's IFEval registry and scorer, imported on first use (a stage without
    constraints never loads them)."""
    nltk_data()  # before IFEval's checkers are imported: they look for NLTK's punkt_tab then, and would download it
    from lm_eval.tasks.ifeval import instructions_registry, utils

    return instructions_registry, utils


def fitting(output: str) -> tuple[str, ...]:
    """The kinds that fit an answer whose output the query's compositions describe: JSON only
    where a structured answer is asked for, no length or casing rule on code."""
    if _STRUCTURED_OUTPUT.search(output or ""):
        return STRUCTURED
    if _CODE_OUTPUT.search(output or ""):
        return CODE
    return FREE_TEXT


def _build(kind: str, args: dict | None, seed: str) -> tuple[object, str]:
    checker = _ifeval()[0].INSTRUCTION_DICT[kind](kind)
    with _LOCK:
        state = random.getstate()
        random.seed(seed)
        try:
            text = checker.build_description(**{k: v for k, v in (args or {}).items() if v is not None})
        finally:
            random.setstate(state)
    return checker, text


def draw(rng: random.Random, count: int, kinds: Sequence[str], words: Sequence[str] = ()) -> list[dict]:
    """Up to `count` constraints of different, non-conflicting kinds, with their arguments.
    `words`: words of the document, from which keyword constraints take theirs (IFEval's own
    draw takes random dictionary words, which a grounded query would not ask for)."""
    conflicts = _ifeval()[0].INSTRUCTION_CONFLICTS
    chosen: list[dict] = []
    for kind in rng.sample(list(kinds), len(kinds)):
        if len(chosen) == count:
            break
        if any(kind in conflicts.get(c["kind"], {c["kind"]}) or c["kind"] in conflicts.get(kind, {kind}) for c in chosen):
            continue
        args = None
        if kind.startswith("keywords:"):
            if len(words) < 2:
                continue
            picked = rng.sample(list(words), 2)
            args = {"keywords": picked} if kind == "keywords:existence" else {"forbidden_words": picked}
        checker, _ = _build(kind, args, f"{rng.random()}")
        chosen.append({"kind": kind, "args": {k: v for k, v in (checker.get_instruction_args() or {}).items() if v is not None}})
    return chosen


def args_of(constraint: dict) -> dict:
    """A constraint's arguments, from a dict or from the JSON a record keeps them in."""
    args = constraint.get("args") or {}
    return json.loads(args) if isinstance(args, str) else dict(args)


def as_record(constraint: dict, stated: str = "model") -> dict:
    """The form the lake and a release keep: the arguments as JSON (their types vary by kind), and
    who stated it in the query: the model, or synthq (`appended`)."""
    return {"kind": constraint["kind"], "args": json.dumps(args_of(constraint), sort_keys=True), "stated": stated}


def describe(constraint: dict) -> str:
    """IFEval's plain statement of the constraint (what the query must say, in its own words)."""
    return _build(constraint["kind"], args_of(constraint), "describe")[1]


def check(constraints: Sequence[dict], response: str, prompt: str = "") -> list[bool]:
    """Whether the response follows each constraint, by IFEval's strict scorer."""
    if not constraints:
        return []
    utils = _ifeval()[1]
    example = utils.InputExample(key=0, instruction_id_list=[c["kind"] for c in constraints], prompt=prompt,
                           kwargs=[args_of(c) for c in constraints])
    return list(utils.test_instruction_following_strict(example, response).follow_instruction_list)


def stated(constraint: dict, query: str) -> bool:
    """Model-free: does the query's text carry the constraint's arguments (each number, keyword,
    marker or phrase it names)? The wording is the model's; the arguments must be there."""
    text = query.lower()
    for value in args_of(constraint).values():
        values = value if isinstance(value, list) else [value]
        for v in values:
            if isinstance(v, bool):
                continue
            if isinstance(v, int):
                if not re.search(rf"\b{v}\b", text) and _NUMBER_WORDS.get(v, "\0") not in text:
                    return False
            elif isinstance(v, str) and v.lower() not in ("less than", "at least") and v.lower().strip() not in text:
                return False
    named = _KIND_WORDS.get(constraint["kind"])
    return named is None or named.search(text) is not None


_NUMBER_WORDS = dict(enumerate("zero one two three four five six seven eight nine ten eleven twelve".split()))
_KIND_WORDS = {  # a kind without arguments is stated when the query names its idea
    "detectable_format:json_format": re.compile(r"json"),
    "detectable_format:title": re.compile(r"title"),
    "punctuation:no_comma": re.compile(r"comma"),
    "change_case:english_lowercase": re.compile(r"lower[- ]?case|small letters"),
    "startend:quotation": re.compile(r"quot"),
    "length_constraints:number_words": re.compile(r"word"),
    "length_constraints:number_sentences": re.compile(r"sentence"),
    "length_constraints:number_paragraphs": re.compile(r"paragraph"),
    "detectable_format:number_bullet_lists": re.compile(r"bullet|point"),
    "detectable_format:number_highlighted_sections": re.compile(r"highlight|\*"),
    "detectable_content:number_placeholders": re.compile(r"placeholder|\["),
}


def verified(answer: dict) -> bool:
    """An answer to a query without constraints, or one that follows every constraint of its query."""
    return not answer.get("constraints") or all(answer["constraints_followed"])


def constraint_reward(completions: list, constraints: list, prompts: list | None = None, **_) -> list[float]:
    """A reward function for TRL's GRPOTrainer on a release's `verifiable` subset: per
    completion, the share of its row's constraints it follows (0 to 1). `completions` are
    strings or conversational (a list of messages, the last one's content is scored);
    `constraints` is the subset's column of the same name."""
    rewards = []
    for completion, row in zip(completions, constraints):
        text = completion[-1]["content"] if isinstance(completion, list) else completion
        passed = check(row or [], text)
        rewards.append(sum(passed) / len(passed) if passed else 0.0)
    return rewards
