"""The engines the benches measure, started once and shared.

`engine_pool(cfg)` is the factory's own engine pool (vLLM in Ray actors). With RAY_ADDRESS set
a bench joins that Ray cluster and finds the pool already loaded when one runs there for the
same engine settings (the test suite's smoke runs join its session's engine this way; on a
cluster, the engine a factory run left up); otherwise it starts a local Ray and loads the model.

The bare baselines (`LLM.chat` on the very prompts a stage sent) run inside the pool's actor
with `on_engine`, on the same loaded model, its prefix cache emptied first: the ratio compares
the stage's path with the bare engine, never two loads of the model.

`openai_server(cfg, url)` is a vLLM OpenAI-compatible server: the one at `url` when given
(`--server`), else one started for the bench with the engine's settings.
"""

from __future__ import annotations

import json
import sys
import time
import urllib.request
from contextlib import contextmanager
from typing import Iterator

from synthq.tasks.core.config import EngineConfig, FactoryConfig


def engine_pool(cfg: FactoryConfig):
    """The engine pool for cfg.engine, loaded and warm; Ray joined (RAY_ADDRESS) or started."""
    from synthq.flows.runtime import ensure_ray
    from synthq.tasks.llm.ray_engine import engine_actor

    ensure_ray(cfg)
    engine = engine_actor(cfg.engine)
    engine.wait_ready()
    return engine


def on_engine(pool, fn, *args):
    """fn(engine, *args) in the pool's actor, beside the loaded model (`engine.llm` is vLLM's
    `LLM`). A function of a bench module travels by value: the actor cannot import the bench."""
    from ray import cloudpickle

    for name in {fn.__module__, __name__} - {"__main__"}:  # __main__'s functions travel by value anyway
        if not name.startswith("synthq."):
            cloudpickle.register_pickle_by_value(sys.modules[name])
    return pool.call(fn, *args)


def reset_prefix_cache(engine) -> None:
    """Empty the engine's prefix cache, so the next measure starts cold (use with on_engine)."""
    engine.llm.reset_prefix_cache()


def bare_chat(engine, requests) -> dict:
    """`LLM.chat` on the requests with their sampling, timed (run it with on_engine)."""
    start = time.perf_counter()
    outputs = engine.llm.chat([r.messages for r in requests], sampling(requests), use_tqdm=False)
    return {
        "seconds": time.perf_counter() - start, "requests": len(requests),
        "prompt_tokens": sum(len(o.prompt_token_ids) for o in outputs),
        "cached_tokens": sum(o.num_cached_tokens or 0 for o in outputs),
        "output_tokens": sum(len(c.token_ids) for o in outputs for c in o.outputs),
        "truncated": sum(c.finish_reason == "length" for o in outputs for c in o.outputs),
    }


def sampling(requests):
    """vLLM sampling parameters for the requests, as the engine builds them."""
    from vllm import SamplingParams
    from vllm.sampling_params import StructuredOutputsParams

    return [
        SamplingParams(max_tokens=r.max_tokens, temperature=r.temperature, frequency_penalty=r.frequency_penalty, n=r.n,
                       structured_outputs=StructuredOutputsParams(json=r.schema) if r.schema is not None else None)
        for r in requests
    ]


def served_model(url: str) -> str:
    """The model name an OpenAI-compatible server serves (the first it lists)."""
    with urllib.request.urlopen(f"{url}/models", timeout=30) as r:
        return json.loads(r.read())["data"][0]["id"]


@contextmanager
def openai_server(cfg: EngineConfig, url: str | None, log_path: str) -> Iterator[tuple[str, str]]:
    """(base URL, served model name) of the server at `url`, or of one started for the block."""
    if url:
        yield url, served_model(url)
        return
    from synthq.tasks.llm.serve import local_server

    with local_server(cfg, log_path, served_name="bench") as started:
        yield started, "bench"

