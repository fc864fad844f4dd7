"""Training a model on a release: TRL's SFTTrainer (then DPOTrainer, when asked) inside Ray
Train's TorchTrainer, the one place of the factory that uses Ray Train.

The workers sit on the cluster's GPUs (one per GPU, data parallel) when it has them, else one
CPU worker: the same code. Each worker reads its training rows from the lake itself (the
release's subset, cut to the run's share), so nothing large passes through the flow.
Checkpoints go to a scratch folder of the worker's node, keyed by the run, so a killed
training that lands there again resumes from its last checkpoint (elsewhere it starts over).
The finished model (LoRA adapters merged), its tokenizer, the settings and the loss curve are
written into the run's folder of the lake, `_done` last: a folder without it is not a model.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass

from synthq.tasks.core.errors import InputError, ModelError

DONE = "_done"


@dataclass
class TrainJob:
    lake: str  # the lake's URL
    release_path: str
    subset: str
    fraction: float
    base_model: str  # a local folder
    out: str  # the run's folder in the lake
    scratch: str  # node-local checkpoints of this run
    settings: dict  # evaluate.train
    dpo: bool = False
    gpu: bool = False


def check_base_model(path: str) -> None:
    """A Hugging Face causal-LM folder, or a one-line error saying what is wrong."""
    from transformers import AutoConfig
    from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING_NAMES

    if not os.path.isdir(path) or not os.path.isfile(os.path.join(path, "config.json")):
        raise InputError(f"evaluate.base_model {path}: not a model folder (no config.json); give a Hugging Face causal-LM folder.")
    kind = AutoConfig.from_pretrained(path).model_type
    if kind not in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES:
        raise InputError(f"evaluate.base_model {path}: a '{kind}' model is not a causal language model.")


def dtype_name(gpu: bool) -> str:
    """bfloat16 where the device computes it natively, else float16 (GPU) or float32 (CPU:
    bfloat16 is emulated, several times slower, on CPUs without avx512_bf16 or AMX)."""
    import torch

    from synthq.tasks.llm.vllm_engine import cpu_has_native_bf16

    if gpu:
        return "bfloat16" if torch.cuda.is_bf16_supported() else "float16"
    return "bfloat16" if cpu_has_native_bf16() else "float32"


def trainer_args(job: TrainJob, output_dir: str, steps_or_epochs: dict) -> dict:
    s = job.settings
    bf16 = dtype_name(job.gpu) == "bfloat16"
    return dict(
        output_dir=output_dir, per_device_train_batch_size=s["batch_size"], gradient_accumulation_steps=s["gradient_accumulation_steps"],
        learning_rate=s["learning_rate"], lr_scheduler_type="linear", seed=s["seed"], data_seed=s["seed"], logging_steps=1,
        save_strategy="steps", save_steps=s["checkpoint_steps"], save_total_limit=1, report_to=[], use_cpu=not job.gpu,
        bf16=bf16, fp16=job.gpu and not bf16, gradient_checkpointing=False, dataloader_num_workers=0, disable_tqdm=True,
        max_length=s["max_length"], **steps_or_epochs,
    )


def training_length(s: dict) -> dict:
    return {"max_steps": s["max_steps"]} if s.get("max_steps") else {"num_train_epochs": s["epochs"]}


def _resume(output_dir: str) -> str | None:
    from transformers.trainer_utils import get_last_checkpoint

    return get_last_checkpoint(output_dir) if os.path.isdir(output_dir) else None


def _loop(config: dict) -> None:
    """One Ray Train worker: SFT (and DPO) on the job's rows; rank 0 saves the model."""
    import datasets
    import ray.train
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import DPOConfig, DPOTrainer, SFTConfig, SFTTrainer

    from synthq.tasks.core.lake import Lake
    from synthq.tasks.evaluate.data import read_subset, subset_files, training_rows

    job = TrainJob(**config)
    if not job.gpu:  # Ray gives a CPU worker one thread per logical CPU it holds: use the node's cores
        torch.set_num_threads(len(os.sched_getaffinity(0)))
    lake = Lake(job.lake)
    rows = training_rows(lake, job.release_path, job.subset, job.fraction, job.settings["seed"])
    data = datasets.Dataset.from_list(rows.select(["prompt", "completion"]).to_pylist())
    tokenizer = AutoTokenizer.from_pretrained(job.base_model)
    model = AutoModelForCausalLM.from_pretrained(job.base_model, dtype=getattr(torch, dtype_name(job.gpu)))
    peft = None
    if job.settings["lora"]:
        from peft import LoraConfig

        peft = LoraConfig(r=job.settings["lora_r"], lora_alpha=job.settings["lora_alpha"], task_type="CAUSAL_LM", target_modules="all-linear")
    start = time.perf_counter()
    sft_dir = os.path.join(job.scratch, "sft")
    sft = SFTTrainer(model=model, args=SFTConfig(**trainer_args(job, sft_dir, training_length(job.settings))), train_dataset=data,
                     processing_class=tokenizer, peft_config=peft)
    sft.train(resume_from_checkpoint=_resume(sft_dir))
    history = _losses("sft", sft)
    tokens = tokens_seen(sft)
    model = sft.model
    if job.dpo:
        pairs = read_subset(lake, subset_files(lake, job.release_path, "preferences"), ["prompt", "chosen", "rejected"])
        if not pairs.num_rows:
            raise InputError(f"Release {job.release_path}: evaluate.dpo is on but its 'preferences' subset has no rows.")
        dpo_dir = os.path.join(job.scratch, "dpo")
        dpo = DPOTrainer(model=model, args=DPOConfig(**trainer_args(job, dpo_dir, training_length(job.settings))),
                         train_dataset=datasets.Dataset.from_list(pairs.to_pylist()), processing_class=tokenizer)
        dpo.train(resume_from_checkpoint=_resume(dpo_dir))
        history += _losses("dpo", dpo)
        model = dpo.model
    seconds = time.perf_counter() - start
    if ray.train.get_context().get_world_rank() == 0:
        _save(job, model, tokenizer, {"seconds": seconds, "tokens": tokens, "rows": rows.num_rows, "steps": sft.state.global_step,
                                      "history": history})
    ray.train.report({"steps": sft.state.global_step, "tokens": tokens, "seconds": seconds})


def _losses(stage: str, trainer) -> list[dict]:
    return [{"stage": stage, "step": e["step"], "loss": e["loss"]} for e in trainer.state.log_history if "loss" in e]


def tokens_seen(trainer) -> int:
    """Tokens the model trained on (TRL logs the running count); else one pass over the rows."""
    seen = [e["num_tokens"] for e in trainer.state.log_history if "num_tokens" in e]
    return int(float(seen[-1])) if seen else int(sum(len(ids) for ids in trainer.train_dataset["input_ids"]))


def _save(job: TrainJob, model, tokenizer, summary: dict) -> None:
    """The model and what made it, into the run's folder of the lake (`_done` last)."""
    import tempfile

    from synthq.tasks.core.lake import Lake

    if hasattr(model, "merge_and_unload"):  # LoRA: the adapters merged, so any loader reads a plain model
        model = model.merge_and_unload()
    lake = Lake(job.lake)
    with tempfile.TemporaryDirectory(dir=job.scratch) as tmp:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        with open(os.path.join(tmp, "train.json"), "w") as f:
            json.dump({**asdict(job), "summary": {k: v for k, v in summary.items() if k != "history"}}, f, indent=2, default=str)
        with open(os.path.join(tmp, "loss.json"), "w") as f:
            json.dump(summary["history"], f)
        lake.fs.makedirs(job.out, exist_ok=True)
        for name in sorted(os.listdir(tmp)):
            lake.fs.put_file(os.path.join(tmp, name), f"{job.out}/{name}")
    with lake.fs.open(f"{job.out}/{DONE}", "w") as f:
        f.write(json.dumps(summary | {"history": None}))


def train(job: TrainJob, workers: int) -> dict:
    """Run the job on `workers` Ray Train workers (each on a GPU when job.gpu); returns the
    summary the saved model carries."""
    from ray.train import RunConfig, ScalingConfig
    from ray.train.torch import TorchTrainer

    os.makedirs(job.scratch, exist_ok=True)
    scaling = ScalingConfig(num_workers=workers, use_gpu=job.gpu, resources_per_worker={"GPU": 1} if job.gpu else {"CPU": 1})
    trainer = TorchTrainer(_loop, train_loop_config=asdict(job), scaling_config=scaling,
                           run_config=RunConfig(name=f"synthq-train-{os.path.basename(job.out)}", storage_path=os.path.join(job.scratch, "ray")))
    try:
        trainer.fit()
    except Exception as e:  # Ray wraps the worker's error: name the cause in one line
        cause = _cause(e)
        if isinstance(cause, InputError):
            raise cause from None
        if "out of memory" in str(cause).lower() or isinstance(cause, MemoryError):
            raise ModelError(f"Training ran out of memory ({str(cause).splitlines()[0][:200]}): lower evaluate.train.batch_size "
                             "or evaluate.train.max_length, or turn on evaluate.train.lora.") from None
        raise ModelError(f"Training failed: {type(cause).__name__}: {str(cause).splitlines()[0][:300] if str(cause) else ''}") from None
    return trained_summary(job.lake, job.out)


def trained_summary(lake_url: str, out: str) -> dict | None:
    """What the model in `out` was trained on (steps, rows, tokens, seconds, loss history), or
    None when no finished model is there."""
    from synthq.tasks.core.lake import Lake

    lake = Lake(lake_url)
    if not lake.fs.exists(f"{out}/{DONE}"):
        return None
    summary = json.loads(lake.fs.cat_file(f"{out}/{DONE}"))
    summary["history"] = json.loads(lake.fs.cat_file(f"{out}/loss.json"))
    return summary


def local_model(lake, out: str, scratch: str) -> str:
    """A folder of this node holding the model: the lake's own on a local lake, else a copy."""
    from fsspec.implementations.local import LocalFileSystem

    if isinstance(lake.fs, LocalFileSystem):
        return out
    target = os.path.join(scratch, "model")
    lake.fs.get(f"{out}/", target, recursive=True)
    return target


def _cause(e: BaseException) -> BaseException:
    """The innermost error a Ray Train failure carries."""
    seen = e
    for attr in ("worker_failures", "cause", "__cause__"):
        inner = getattr(seen, attr, None)
        if isinstance(inner, dict) and inner:
            inner = next(iter(inner.values()))
        if isinstance(inner, BaseException):
            seen = _cause(inner)
    return seen
