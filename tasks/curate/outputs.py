"""The scoring answer: 0 or 1 on each of the seven criteria, each with a short reason first."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field, create_model

from tasks.core.records import CRITERIA

Score = Literal[0, 1]

Scores: type[BaseModel] = create_model(
    "Scores",
    reason=(str, Field(max_length=400, description="One or two sentences judging the query.")),
    **{c: (Score, Field(description=f"1 if the query meets '{c.replace('_', ' ')}'")) for c in CRITERIA},
)
