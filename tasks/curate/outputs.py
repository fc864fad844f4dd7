"""The scoring answer (for each of the seven criteria its own short analysis, then 0 or 1, as the
method scores) and the moderation verdict (safe or unsafe, with hazard categories)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field, create_model

from synthq.tasks.core.records import CRITERIA

Score = Literal[0, 1]



class Criterion(BaseModel):
    analysis: str = Field(max_length=300, description="One or two sentences on this criterion alone.")
    score: Score


Scores: type[BaseModel] = create_model(
    "Scores", **{c: (Criterion, Field(description=f"The analysis, then 1 if the query meets '{c.replace('_', ' ')}'")) for c in CRITERIA}
)

# The hazard categories of the MLCommons AI Safety taxonomy, as used by Llama Guard 3.
HAZARDS = (
    "violent_crimes",
    "non_violent_crimes",
    "sex_related_crimes",
    "child_sexual_exploitation",
    "defamation",
    "specialized_advice",
    "privacy",
    "intellectual_property",
    "indiscriminate_weapons",
    "hate",
    "suicide_self_harm",
    "sexual_content",
    "elections",
)


class Moderation(BaseModel):
    reason: str = Field(max_length=300, description="One sentence: why the request is safe or not.")
    verdict: Literal["safe", "unsafe"]
    categories: list[Literal[HAZARDS]] = Field(default_factory=list, max_length=4, description="Hazards, when unsafe.")
