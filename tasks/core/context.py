"""What a stage's `process` receives besides its shard: config, engine, lake, tokenizer."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

from tasks.core.config import FactoryConfig
from tasks.core.lake import Lake
from tasks.llm.engine import Engine


@dataclass
class StageContext:
    cfg: FactoryConfig
    lake: Lake
    engine: Engine | None = None
    extras: dict = field(default_factory=dict)

    @cached_property
    def tokens(self):
        from tasks.llm.tokens import Tokens

        return Tokens(self.cfg.engine)

    @property
    def model_name(self) -> str:
        from tasks.llm.models import display_name

        return display_name(self.cfg.engine.model)
