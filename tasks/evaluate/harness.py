"""Scoring a model folder on benchmarks with lm-evaluation-harness (`lm_eval.simple_evaluate`):
its `vllm` backend on GPU, `hf` (transformers) on CPU, greedy, with the model's chat template.

`score` is what a bare `simple_evaluate` call with the same settings gives: `harness_args`
builds those settings once, so a user can rerun the harness by hand and get the same numbers.
"""

from __future__ import annotations

import os
import time

from synthq.tasks.core.packaged import nltk_data
from synthq.tasks.evaluate.benchmarks import Benchmark, harness_task


def backend(requested: str, gpu: bool) -> str:
    return requested if requested != "auto" else ("vllm" if gpu else "hf")


def harness_args(model_dir: str, benchmarks: list[Benchmark], settings: dict, gpu: bool) -> dict:
    """Keyword arguments of lm_eval.simple_evaluate for a model folder and the evaluate settings."""
    from lm_eval.tasks import TaskManager

    from synthq.tasks.evaluate.train import dtype_name

    kind = backend(settings["backend"], gpu)
    dtype = dtype_name(gpu)
    model_args = f"pretrained={model_dir},dtype={dtype}" + (",gpu_memory_utilization=0.8" if kind == "vllm" else "")
    include = sorted({b.include_path for b in benchmarks if b.include_path})
    return dict(
        model=kind, model_args=model_args, tasks=[harness_task(b, settings["max_gen_toks"]) for b in benchmarks],
        task_manager=TaskManager(include_path=include or None), limit=settings["limit"], apply_chat_template=True,
        gen_kwargs=f"max_gen_toks={settings['max_gen_toks']}", batch_size=settings["eval_batch_size"],
        device="cuda" if gpu else "cpu", log_samples=False, random_seed=0, numpy_random_seed=0, torch_random_seed=0,
        fewshot_random_seed=0,
    )


def result_rows(results: dict, benchmarks: list[Benchmark]) -> list[dict]:
    """(benchmark, metric, value, stderr) for every number the harness reports per benchmark."""
    rows = []
    for b in benchmarks:
        metrics = results["results"].get(b.name, {})
        for key, value in metrics.items():
            metric, _, filt = key.partition(",")
            if metric.endswith("_stderr") or metric == "sample_len" or not isinstance(value, (int, float)):
                continue
            stderr = metrics.get(f"{metric}_stderr,{filt}")
            rows.append({"benchmark": b.name, "metric": metric if filt in ("", "none") else key, "value": float(value),
                         "stderr": float(stderr) if isinstance(stderr, (int, float)) else None})
    return rows


def score(model_dir: str, benchmarks: list[Benchmark], settings: dict, gpu: bool) -> dict:
    """The model's scores: {'rows': [...], 'harness': lm-eval's version, 'seconds': wall time}."""
    nltk_data()  # before the harness imports IFEval's checkers, which look for punkt_tab
    if all(b.data for b in benchmarks):  # every prompt is on disk: the datasets library needs no hub
        os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    import lm_eval
    import torch

    if not gpu:  # a Ray worker gets one thread per logical CPU it holds: use the node's cores
        torch.set_num_threads(len(os.sched_getaffinity(0)))
    start = time.perf_counter()
    results = lm_eval.simple_evaluate(**harness_args(model_dir, benchmarks, settings, gpu))
    return {"rows": result_rows(results, benchmarks), "harness": f"lm-eval {lm_eval.__version__}", "seconds": time.perf_counter() - start}


def score_stored(lake_url: str | None, model: str, scratch: str, benchmarks: list[Benchmark], settings: dict, gpu: bool) -> dict:
    """`score` for a model folder of the lake (`lake_url` set: copied to this node's `scratch`
    first when the lake is remote) or a folder of this node (`lake_url` None: a base model)."""
    from synthq.tasks.core.lake import Lake
    from synthq.tasks.evaluate.train import local_model

    return score(local_model(Lake(lake_url), model, scratch) if lake_url else model, benchmarks, settings, gpu)
