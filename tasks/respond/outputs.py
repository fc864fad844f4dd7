"""What the LLM returns in the respond stage, as pydantic models (their JSON schemas drive
decoding): the expert identity and the judge's rubric. Answers are free text."""

from __future__ import annotations

import re

from pydantic import BaseModel, Field, create_model, field_validator

from synthq.tasks.core.records import ASPECTS

_WORD = re.compile(r"\w+")


class Expert(BaseModel):
    expert: str = Field(min_length=20, max_length=600, description="Second-person description of the ideal expert.")

    @field_validator("expert")
    @classmethod
    def _second_person_prose(cls, text: str) -> str:
        """Small models write a line of chat, a title or a word loop instead: none is an identity."""
        words = [w.lower() for w in _WORD.findall(text)]
        if not {"you", "your"} & set(words):
            raise ValueError("describe the expert in the second person ('You are ...')")
        if len(words) >= 10 and len(set(words)) / len(words) < 0.4:
            raise ValueError("the description repeats itself")
        return text


class Aspect(BaseModel):
    reason: str = Field(min_length=1, max_length=200, description="One short sentence, written before the score.")
    score: int = Field(ge=1, le=10)


Judgement: type[BaseModel] = create_model(
    "Judgement", **{a: (Aspect, Field(description=f"'{a.replace('_', ' ')}' of the answer")) for a in ASPECTS}
)


def overall(judgement: BaseModel) -> float:
    """The overall score is the mean of the aspects: no separate number the model could contradict."""
    return sum(getattr(judgement, a).score for a in ASPECTS) / len(ASPECTS)
