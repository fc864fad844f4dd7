"""What a stage's `process` receives besides its shard: config, engine, lake, tokenizer."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

from synthq.tasks.core.config import FactoryConfig
from synthq.tasks.core.errors import ServiceError
from synthq.tasks.core.lake import Lake
from synthq.tasks.llm.engine import Engine, Parsed, Request, Result, complete
from synthq.tasks.llm.models import display_name
from synthq.tasks.llm.tokens import Tokens

# What a shard's manifest records of its LLM calls: outputs, repairs, and tokens (prompt, the
# part of it served from the engine's prefix cache, output), repair attempts included.
LLM_COUNTS = ("calls", "repaired", "repair_failed", "prompt_tokens", "cached_tokens", "output_tokens")


@dataclass
class StageContext:
    cfg: FactoryConfig
    lake: Lake
    engine: Engine | None = None
    extras: dict = field(default_factory=dict)
    shard: str = ""  # the name of the shard being processed
    llm: dict = field(default_factory=lambda: dict.fromkeys(LLM_COUNTS, 0))

    @cached_property
    def tokens(self) -> Tokens:
        return Tokens(self.cfg.engine)

    @property
    def model_name(self) -> str:
        return display_name(self.cfg.engine.model)

    def request(self, rid: str, messages: list[dict], schema: dict | None, max_tokens: int, temperature: float, n: int = 1) -> Request:
        """A request with the engine-wide sampling settings (seed, frequency penalty) filled in."""
        e = self.cfg.engine
        return Request(rid, messages, schema, max_tokens, temperature, e.seed, e.frequency_penalty, n=n)

    def complete(self, requests: list[Request], model) -> list[Parsed]:
        """`complete` on this stage's engine, counting calls, repairs and tokens for the shard's manifest."""
        out = complete(self.engine, requests, model)
        _raise_for_service([p.error for p in out if p.reason == "llm_error"], len(out))
        self.llm["repaired"] += sum(p.attempts == 2 and p.value is not None for p in out)
        self.llm["repair_failed"] += sum(p.attempts == 2 and p.value is None for p in out)
        self._count([p.usage for p in out])
        return out

    def generate(self, requests: list[Request]) -> list[Result]:
        """Free text (no schema, no repair) on this stage's engine, counted like `complete`;
        every sample's output tokens count."""
        out = self.engine.generate(requests) if requests else []
        _raise_for_service([r.error for r in out if r.error and not r.permanent], len(out))
        self._count([
            {"prompt_tokens": r.prompt_tokens, "cached_tokens": r.cached_tokens,
             "output_tokens": sum(s.output_tokens for s in r.samples())}
            for r in out
        ])
        return out

    def _count(self, usages: list[dict]) -> None:
        self.llm["calls"] += len(usages)
        for key in ("prompt_tokens", "cached_tokens", "output_tokens"):
            self.llm[key] += sum(u.get(key, 0) for u in usages)


def _raise_for_service(errors: list[str], total: int) -> None:
    """Failures of the service are not the data's: the shard fails, to be rerun, instead of
    quarantining rows whose output never came."""
    if errors:
        raise ServiceError(
            f"the LLM service failed {len(errors)} of {total} requests after retries (first: {errors[0][:300]}); "
            "answers that came back are cached: rerun to retry exactly the failed ones"
        )
