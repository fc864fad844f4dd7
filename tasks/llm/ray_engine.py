"""The vLLM engine in a long-lived Ray actor, shared by every shard of every stage.

The actor is named after the engine config, so any task or flow in the same Ray cluster
finds the running engine instead of loading the model again.
"""

from __future__ import annotations

import hashlib

import ray

from tasks.core.config import EngineConfig
from tasks.llm.engine import Request, Result
from tasks.llm.models import display_name
from tasks.llm.vllm_engine import VLLMEngine, cpu_engine_env, has_gpu

NAMESPACE = "synthq"


class EngineActor:
    def __init__(self, cfg: EngineConfig):
        self.engine = VLLMEngine(cfg)

    def ready(self) -> str:
        return self.engine.model_name

    def generate(self, requests: list[Request]) -> list[Result]:
        return self.engine.generate(requests)


class RayEngine:
    """`Engine` protocol over the actor: picklable, so Ray tasks can carry it."""

    def __init__(self, handle, model_name: str):
        self.handle = handle
        self.model_name = model_name

    def generate(self, requests: list[Request]) -> list[Result]:
        return ray.get(self.handle.generate.remote(requests))

    def wait_ready(self) -> str:
        return ray.get(self.handle.ready.remote())


def engine_actor(cfg: EngineConfig) -> RayEngine:
    """Get or start the engine actor for this config (start returns at once; loading goes on)."""
    name = "engine-" + hashlib.sha256(cfg.model_dump_json().encode()).hexdigest()[:12]
    gpu = has_gpu()
    options = dict(name=name, namespace=NAMESPACE, get_if_exists=True, max_restarts=1)
    if gpu:
        options["num_gpus"] = cfg.tensor_parallel_size
    else:
        options["num_cpus"] = 1
        options["runtime_env"] = {"env_vars": cpu_engine_env(cfg)}
    handle = ray.remote(EngineActor).options(**options).remote(cfg)
    return RayEngine(handle, display_name(cfg.model))
