"""What the LLM must return in synthesis: thought, scene, compositions, then the query."""

from __future__ import annotations

from pydantic import BaseModel, Field, field_validator

from tasks.attribute.outputs import Compositions


MIN_QUERY_WORDS = 5


class Synthesis(BaseModel):
    thought: str = Field(min_length=1, max_length=400, description="How the scenario is designed.")
    scene: str = Field(min_length=1, max_length=700, description="User identity and motivation.")
    query_compositions: Compositions
    query: str = Field(min_length=20, max_length=1500, description="The self-contained request.")

    @field_validator("query")
    @classmethod
    def _is_a_request(cls, query: str) -> str:
        """A request is written in words: a lone token or a run of symbols is a failed output."""
        words = len(query.split())
        if words < MIN_QUERY_WORDS:
            raise ValueError(f"query has {words} words, fewer than {MIN_QUERY_WORDS}")
        return query
