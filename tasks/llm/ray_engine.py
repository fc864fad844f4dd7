"""The vLLM engine in a pool of long-lived Ray actors, shared by every shard of every stage.

The reward model of the respond stage (judge=reward_model) lives in an actor of its own, found
the same way: on a GPU when the cluster has one.

The actors are named after the engine config, so any task or flow in the same Ray cluster
finds the running pool instead of loading the model again. The pool has `engine.replicas`
actors, by default one per `tensor_parallel_size` GPUs of the cluster (one without GPUs).
Each batch is split across them, prompt groups kept whole, and the results are gathered in
request order.
"""

from __future__ import annotations

import hashlib

import ray

from synthq.tasks.core.config import EngineConfig, RespondConfig
from synthq.tasks.llm.coalesce import Coalescer
from synthq.tasks.llm.dispatch import gather, split
from synthq.tasks.llm.engine import Request, Result
from synthq.tasks.llm.models import display_name
from synthq.tasks.llm.vllm_engine import VLLMEngine, cpu_engine_env

NAMESPACE = "synthq"


# Calls an engine actor takes at once: every shard task of the cluster may be waiting on it.
# They wait in threads and go in together, one batch (synthq.tasks.llm.coalesce).
ACTOR_CALLS = 64


class EngineActor:
    """One loaded engine; calls that arrive while it is busy are batched together."""

    def __init__(self, cfg: EngineConfig):
        self.engine = VLLMEngine(cfg)
        self.batcher = Coalescer(self.engine.generate)

    def ready(self) -> str:
        return self.engine.model_name

    def stats(self) -> dict:
        """Calls (`batches`) and requests received, and the batches the engine ran for them."""
        return dict(self.batcher.served)

    def generate(self, requests: list[Request]) -> list[Result]:
        return self.batcher.generate(requests)

    def call(self, fn, *args):
        """fn(engine, *args) here, beside the loaded model, between batches: what a benchmark
        runs on the bare engine (`engine.llm`) to compare with a stage on the very same model."""
        with self.batcher.exclusive():
            return fn(self.engine, *args)


class RayEngine:
    """`Engine` protocol over the pool's actors: picklable, so Ray tasks can carry it."""

    def __init__(self, handles: list, model_name: str):
        self.handles = list(handles)
        self.model_name = model_name
        self.calls = 0

    def generate(self, requests: list[Request]) -> list[Result]:
        parts = [p for p in split(requests, len(self.handles)) if p] if requests else []
        # small batches (repairs) fill fewer parts than replicas: start each call one replica on
        first = self.calls % len(self.handles)
        self.calls += 1
        handles = self.handles[first:] + self.handles[:first]
        refs = [h.generate.remote([requests[i] for i in p]) for h, p in zip(handles, parts)]
        return gather(len(requests), parts, ray.get(refs))

    def wait_ready(self) -> str:
        return ray.get([h.ready.remote() for h in self.handles])[0]

    def call(self, fn, *args):
        """fn(engine, *args) in the pool's first actor (see EngineActor.call)."""
        return ray.get(self.handles[0].call.remote(fn, *args))


# Ray destroys a named (non-detached) actor as soon as no handle to it is left, so the
# process keeps one handle per engine: every stage of a run then shares the loaded model.
_HANDLES: dict[tuple[str, str], "RayEngine | RayReward"] = {}


def actor_name(cfg: EngineConfig, replica: int = 0) -> str:
    """Replica 0 carries the pool's name; replica i > 0 the name with '-i'."""
    name = "engine-" + hashlib.sha256(cfg.model_dump_json().encode()).hexdigest()[:12]
    return name if replica == 0 else f"{name}-{replica}"


def pool_size(cfg: EngineConfig, cluster_gpus: float) -> int:
    """engine.replicas when set; else one engine per tensor_parallel_size GPUs; 1 on CPU."""
    if cfg.replicas:
        return cfg.replicas
    return max(1, int(cluster_gpus // cfg.tensor_parallel_size))


def engine_actor(cfg: EngineConfig) -> RayEngine:
    """Get or start the engine pool for this config (start returns at once; loading goes on)."""
    name = actor_name(cfg)
    key = (ray.get_runtime_context().get_job_id(), name)
    if key not in _HANDLES:
        _HANDLES[key] = _start(cfg)
    return _HANDLES[key]


def _start(cfg: EngineConfig) -> RayEngine:
    # the cluster's GPUs, not this process's: in cluster mode the flow runs on a node without any
    gpus = ray.cluster_resources().get("GPU", 0)
    gpu = gpus >= cfg.tensor_parallel_size
    options = dict(namespace=NAMESPACE, get_if_exists=True, max_restarts=1, max_concurrency=ACTOR_CALLS)
    if gpu:
        options["num_gpus"] = cfg.tensor_parallel_size
    else:
        options["num_cpus"] = 1
        options["runtime_env"] = {"env_vars": cpu_engine_env(cfg)}
    actor = ray.remote(EngineActor)
    handles = [actor.options(name=actor_name(cfg, i), **options).remote(cfg) for i in range(pool_size(cfg, gpus))]
    return RayEngine(handles, display_name(cfg.model))


class RewardActor:
    def __init__(self, cfg: RespondConfig):
        from synthq.tasks.llm.reward import RewardModel

        self.model = RewardModel(cfg.reward_model, cfg.reward_batch_size, cfg.reward_max_length, cfg.reward_trust_remote_code)

    def score(self, conversations: list[list[dict]]) -> list[float]:
        return self.model.score(conversations)


class RayReward:
    """`score(conversations)` on the reward actor: picklable, so shard tasks can carry it."""

    def __init__(self, handle):
        self.handle = handle

    def score(self, conversations: list[list[dict]]) -> list[float]:
        return ray.get(self.handle.score.remote(conversations))


def reward_actor(cfg: RespondConfig) -> RayReward:
    """Get or start the reward model's actor (kept alive for the process, like the engine)."""
    name = "reward-" + hashlib.sha256(cfg.model_dump_json(include={"reward_model", "reward_batch_size", "reward_max_length", "reward_trust_remote_code"}).encode()).hexdigest()[:12]
    key = (ray.get_runtime_context().get_job_id(), name)
    if key not in _HANDLES:
        gpu = ray.cluster_resources().get("GPU", 0) >= 1
        # on CPU it shares the cores with the engine and the shard task (a logical half core)
        options = {"num_gpus": 1} if gpu else {"num_cpus": 0.5}
        actor = ray.remote(RewardActor).options(name=name, namespace=NAMESPACE, get_if_exists=True, max_restarts=1, **options)
        _HANDLES[key] = RayReward(actor.remote(cfg))
    return _HANDLES[key]
