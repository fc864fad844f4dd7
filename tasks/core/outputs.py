"""Output parts that attribution and synthesis both ask the LLM for: the query compositions
(what a query needs, what it expects back) and a scene written as prose. One definition for
both stages' schemas (the Arrow side of compositions is `records.COMPOSITIONS`).

String caps keep a small model from rambling until max_tokens cuts the JSON.
"""

from __future__ import annotations

from pydantic import BaseModel, Field

from synthq.tasks.core.prose import prose_problem

SCENE_MIN_WORDS = 8  # a user, a situation and a motive take a sentence at least


class Compositions(BaseModel):
    ability: str = Field(max_length=240, description="Skills the query needs.")
    knowledge: str = Field(max_length=240, description="Knowledge domains the query draws on.")
    extra_information: str = Field(max_length=400, description="Concrete details from the document.")
    output: str = Field(max_length=200, description="The kind of answer expected.")


def check_scene(scene: str) -> str:
    """A field validator: the scene, or ValueError saying why it is not prose."""
    problem = prose_problem(scene, SCENE_MIN_WORDS)
    if problem:
        raise ValueError(f"scene {problem}")
    return scene
