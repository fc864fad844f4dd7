"""Running one function over many inputs in Ray tasks, on a GPU when the cluster has one free,
or one large step in a Ray worker of its own."""

from __future__ import annotations

import functools
from typing import Callable

from synthq.tasks.core.memory import release_freed


def releasing(fn: Callable) -> Callable:
    """fn, then the heap it freed handed back to the system, for every Ray task of the factory
    (shards and run_each steps): a worker that embedded a shard (about 300 MiB of freed torch
    buffers with the bundled embedder) does not keep that size through the stages after it."""

    @functools.wraps(fn)
    def run(*args):
        try:
            return fn(*args)
        finally:
            release_freed()

    return run


def run_each(fn: Callable, calls: list[tuple], remote: bool, gpu: bool = False) -> list:
    """fn(*call) for every call, results in order. With `remote`, each call is a Ray task of one
    CPU, or of one GPU when `gpu` and the cluster has one free (then fn(*call, "cuda"): its last
    parameter is the device); here, one after another, otherwise."""
    if not calls:
        return []
    if not remote:
        return [fn(*call) for call in calls]
    import ray

    on_gpu = gpu and ray.available_resources().get("GPU", 0) >= 1
    task = ray.remote(releasing(fn)).options(num_gpus=1 if on_gpu else 0, num_cpus=1)
    return ray.get([task.remote(*call, "cuda") if on_gpu else task.remote(*call) for call in calls])


def run_alone(fn: Callable, args: tuple, remote: bool, gpu: bool = False):
    """fn(*args) in a Ray worker of its own that exits after it (`max_calls=1`), so what it held
    (a whole index, every survivor's vector, a loaded model) goes back to the node instead of
    staying with the flow's process or an idle worker through the stages after it; with `gpu`,
    on a GPU of the cluster; here when not `remote`."""
    if not remote:
        return fn(*args)
    import ray

    return ray.get(ray.remote(num_cpus=1, num_gpus=1 if gpu else 0, max_calls=1)(fn).remote(*args))
