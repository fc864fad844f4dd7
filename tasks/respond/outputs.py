"""What the LLM returns in the respond stage, as pydantic models (their JSON schemas drive
decoding): the expert identity and the judge's rubric. Answers are free text."""

from __future__ import annotations

from pydantic import BaseModel, Field, create_model

from tasks.core.records import ASPECTS


class Expert(BaseModel):
    expert: str = Field(min_length=20, max_length=600, description="Second-person description of the ideal expert.")


class Aspect(BaseModel):
    reason: str = Field(min_length=1, max_length=200, description="One short sentence, written before the score.")
    score: int = Field(ge=1, le=10)


Judgement: type[BaseModel] = create_model(
    "Judgement", **{a: (Aspect, Field(description=f"'{a.replace('_', ' ')}' of the answer")) for a in ASPECTS}
)


def overall(judgement: BaseModel) -> float:
    """The overall score is the mean of the aspects: no separate number the model could contradict."""
    return sum(getattr(judgement, a).score for a in ASPECTS) / len(ASPECTS)
