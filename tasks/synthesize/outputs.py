"""What the LLM must return in synthesis: thought, scene, compositions, then the query."""

from __future__ import annotations

from pydantic import BaseModel, Field

from tasks.attribute.outputs import Compositions


class Synthesis(BaseModel):
    thought: str = Field(min_length=1, max_length=400, description="How the scenario is designed.")
    scene: str = Field(min_length=1, max_length=700, description="User identity and motivation.")
    query_compositions: Compositions
    query: str = Field(min_length=20, max_length=1500, description="The self-contained request.")
