"""What the LLM must return in synthesis: thought, scene, compositions, then the query."""

from __future__ import annotations

from pydantic import BaseModel, Field, field_validator

from synthq.tasks.core.outputs import Compositions, check_scene
from synthq.tasks.core.prose import prose_problem


MIN_QUERY_WORDS = 5


class Synthesis(BaseModel):
    thought: str = Field(min_length=1, max_length=400, description="How the scenario is designed.")
    scene: str = Field(min_length=1, max_length=700, description="User identity and motivation.")
    query_compositions: Compositions
    query: str = Field(min_length=20, max_length=1500, description="The self-contained request.")

    _scene_is_prose = field_validator("scene")(check_scene)

    @field_validator("query")
    @classmethod
    def _is_a_request(cls, query: str) -> str:
        """A request is written in words: a lone token, a run of symbols or a phrase said over
        and over is a failed output."""
        problem = prose_problem(query, MIN_QUERY_WORDS)
        if problem:
            raise ValueError(f"query {problem}")
        return query
