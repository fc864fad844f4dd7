"""The engine protocol: requests in, results out, whatever serves the model.

A `Request` carries chat messages, a JSON schema (or none, for free text), sampling settings
and how many samples to draw from one prefill (`n`); a `Result` carries the raw text, why
generation stopped, and token usage (prompt, cached prefix, output), with the further samples
in `more`. `complete()` turns results into validated pydantic objects or counted errors: a
result never silently becomes a row.
"""

from __future__ import annotations

import copy
import functools
import hashlib
import json
from dataclasses import dataclass, field, replace
from typing import Protocol, TypeVar

import annotated_types
from pydantic import BaseModel, ValidationError, create_model

from synthq.tasks.core.records import rejection

M = TypeVar("M", bound=BaseModel)


@dataclass
class Request:
    id: str
    messages: list[dict]
    schema: dict | None  # None: free text (an answer), else JSON constrained to this schema
    max_tokens: int = 512
    temperature: float = 0.7
    seed: int = 0
    frequency_penalty: float = 0.0
    # Requests of one group share a long prompt prefix: engines keep them together and in order
    # (one replica, consecutive), so the prefix is prefilled once. Not part of the output.
    group: str = ""
    n: int = 1  # samples drawn from one prefill of the prompt (vLLM's and OpenAI's `n`)

    def sampling_seed(self) -> int:
        """Seed derived from the request id: the same request samples the same text in any batch."""
        digest = hashlib.sha256(f"{self.seed}:{self.id}".encode()).digest()
        return int.from_bytes(digest[:4], "little") & 0x7FFFFFFF


@dataclass
class Result:
    id: str
    text: str
    finish_reason: str | None
    prompt_tokens: int = 0
    output_tokens: int = 0
    error: str | None = None  # the service failed (after its retries): not the output's fault
    cached_tokens: int = 0  # prompt tokens served from the engine's prefix cache
    latency_s: float = 0.0
    # samples 2..n of a request with n > 1, ids "<id>#1", "<id>#2"...; their prompt tokens
    # are counted once, on this result
    more: list["Result"] = field(default_factory=list)
    permanent: bool = False  # with error: the server refused this request itself (e.g. 400, too long)

    def samples(self) -> list["Result"]:
        """Every sample of the request, the first one included."""
        return [replace(self, more=[]), *self.more]


def sample_id(request_id: str, k: int) -> str:
    """Id of sample k of a request (sample 0 keeps the request's id)."""
    return request_id if k == 0 else f"{request_id}#{k}"


class Engine(Protocol):
    model_name: str

    def generate(self, requests: list[Request]) -> list[Result]: ...


@dataclass
class Parsed:
    """Outcome of one request: exactly one of `value` and `error` is set."""

    id: str
    value: BaseModel | None
    error: str | None
    reason: str | None
    raw: str
    usage: dict = field(default_factory=dict)
    attempts: int = 1  # 2 when a repair attempt was made


def parse_result(result: Result, model: type[M]) -> Parsed:
    usage = {"prompt_tokens": result.prompt_tokens, "cached_tokens": result.cached_tokens, "output_tokens": result.output_tokens}

    def fail(reason: str, error: str) -> Parsed:
        return Parsed(result.id, None, error, reason, result.text, usage)

    if result.error and result.permanent:
        return fail("llm_request_rejected", result.error)
    if result.error:
        return fail("llm_error", result.error)
    if result.finish_reason == "length":
        return fail("llm_truncated", "generation hit max_tokens before the JSON closed")
    try:
        data = json.loads(result.text)
    except json.JSONDecodeError as e:
        return fail("llm_invalid_json", f"not JSON: {e}")
    try:
        return Parsed(result.id, model.model_validate(data), None, None, result.text, usage)
    except ValidationError as e:
        first = e.errors()[0]
        return fail("llm_schema_mismatch", f"{'.'.join(map(str, first['loc']))}: {first['msg']}")


# Outputs worth one more try: the model answered, but not in the shape asked for.
REPAIRABLE = ("llm_invalid_json", "llm_schema_mismatch", "llm_truncated")


def _complete_once(engine: Engine, requests: list[Request], model: type[M]) -> list[Parsed]:
    results = {r.id: r for r in engine.generate(requests)} if requests else {}
    missing = Result("", "", None, error="engine returned no result")
    return [parse_result(results.get(req.id) or replace(missing, id=req.id), model) for req in requests]


def repair_request(req: Request, failed: Parsed) -> Request:
    """The same request with the rejection appended to its last message (a few tokens more,
    so the answer gets 64 tokens less to stay within the context)."""
    note = (
        f"\n\nYour previous answer was rejected: {failed.error}. Answer again with JSON only, "
        "exactly the fields of the schema, every text short and complete."
    )
    last = {**req.messages[-1], "content": req.messages[-1]["content"] + note}
    return replace(req, id=f"{req.id}:repair", messages=[*req.messages[:-1], last], max_tokens=max(64, req.max_tokens - 64))


def complete(engine: Engine, requests: list[Request], model: type[M], repair: bool = True) -> list[Parsed]:
    """Run requests and validate each result against `model`, in request order. An output
    that fails validation gets one repair attempt; if that fails too, the Parsed carries both
    errors and both raw texts, for the rejected (quarantine) dataset."""
    parsed = _complete_once(engine, requests, model)
    todo = [i for i, p in enumerate(parsed) if repair and p.reason in REPAIRABLE]
    fixes = _complete_once(engine, [repair_request(requests[i], parsed[i]) for i in todo], model)
    for i, fix in zip(todo, fixes):
        first = parsed[i]
        usage = {k: first.usage.get(k, 0) + fix.usage.get(k, 0) for k in first.usage}
        if fix.value is not None:
            parsed[i] = replace(fix, id=first.id, usage=usage, attempts=2)
        else:
            parsed[i] = replace(
                fix, id=first.id, usage=usage, attempts=2,
                error=f"{first.error}; after one repair attempt: {fix.error}",
                raw=f"{first.raw}\n--- repair attempt ---\n{fix.raw}",
            )
    return parsed


@functools.cache
def without_caps(model: type[BaseModel]) -> type[BaseModel]:
    """The same output model with no max_length on its string fields (nested models included),
    its validators kept: the method caps outputs only by max tokens."""
    fields = {}
    for name, info in model.model_fields.items():
        annotation = info.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            annotation = without_caps(annotation)
        free = copy.copy(info)
        free.metadata = [m for m in info.metadata if not isinstance(m, annotated_types.MaxLen)]
        fields[name] = (annotation, free)
    return create_model(model.__name__, __base__=model, **fields)


def output_model(model: type[BaseModel], capped: bool) -> type[BaseModel]:
    return model if capped else without_caps(model)


def schema_for(model: type[BaseModel]) -> dict:
    """JSON schema for constrained decoding (string caps come from the model's Field max_length)."""
    return model.model_json_schema()


def rejected_output(stage: str, parsed: Parsed, record_id: str, record: dict) -> dict:
    """A failed LLM output as a rejected row: reason, error and the raw text kept for inspection."""
    record = {**record, "raw_output": parsed.raw, "request_id": parsed.id, "attempts": parsed.attempts}
    return rejection(stage, parsed.reason or "llm_error", parsed.error or "", record_id, record)
