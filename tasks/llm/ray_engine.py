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
from tasks.llm.vllm_engine import VLLMEngine, cpu_engine_env

NAMESPACE = "synthq"


class EngineActor:
    def __init__(self, cfg: EngineConfig):
        self.engine = VLLMEngine(cfg)
        self.served = {"batches": 0, "requests": 0}

    def ready(self) -> str:
        return self.engine.model_name

    def stats(self) -> dict:
        return dict(self.served)

    def generate(self, requests: list[Request]) -> list[Result]:
        self.served["batches"] += 1
        self.served["requests"] += len(requests)
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


# Ray destroys a named (non-detached) actor as soon as no handle to it is left, so the
# process keeps one handle per engine: every stage of a run then shares the loaded model.
_HANDLES: dict[tuple[str, str], RayEngine] = {}


def actor_name(cfg: EngineConfig) -> str:
    return "engine-" + hashlib.sha256(cfg.model_dump_json().encode()).hexdigest()[:12]


def engine_actor(cfg: EngineConfig) -> RayEngine:
    """Get or start the engine actor for this config (start returns at once; loading goes on)."""
    name = actor_name(cfg)
    key = (ray.get_runtime_context().get_job_id(), name)
    if key not in _HANDLES:
        _HANDLES[key] = _start(cfg, name)
    return _HANDLES[key]


def _start(cfg: EngineConfig, name: str) -> RayEngine:
    # the cluster's GPUs, not this process's: in cluster mode the flow runs on a node without any
    gpu = ray.cluster_resources().get("GPU", 0) >= cfg.tensor_parallel_size
    options = dict(name=name, namespace=NAMESPACE, get_if_exists=True, max_restarts=1)
    if gpu:
        options["num_gpus"] = cfg.tensor_parallel_size
    else:
        options["num_cpus"] = 1
        options["runtime_env"] = {"env_vars": cpu_engine_env(cfg)}
    handle = ray.remote(EngineActor).options(**options).remote(cfg)
    return RayEngine(handle, display_name(cfg.model))
