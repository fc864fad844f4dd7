"""What the LLM must return in attribution, as pydantic models (their JSON schemas drive decoding).

String caps keep a small model from rambling until max_tokens cuts the JSON (`output_caps`
in the stage's config; the paper profile turns them off). A scene must be prose (see
`synthq.tasks.core.prose`).
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, Field, StringConstraints, field_validator

from synthq.tasks.core.outputs import Compositions, check_scene

Keyword = Annotated[str, StringConstraints(min_length=1, max_length=48)]


class SeedAnalysis(BaseModel):
    intent: str = Field(min_length=1, max_length=240)
    keywords: list[Keyword] = Field(min_length=1, max_length=5)

    @field_validator("keywords")
    @classmethod
    def _unique(cls, words: list[str]) -> list[str]:
        """Small models repeat keywords; keep the first of each (case-insensitive)."""
        seen: set[str] = set()
        return [w for w in words if not (w.lower() in seen or seen.add(w.lower()))]


class Grounding(BaseModel):
    scene: str = Field(min_length=1, max_length=700)
    query_compositions: Compositions

    _scene_is_prose = field_validator("scene")(check_scene)
