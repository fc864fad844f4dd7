"""The evaluate stage's configuration (train a model on a release, score it on benchmarks): a
section of `FactoryConfig`, kept in its own file; import it from `synthq.tasks.core.config`
like every other section."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from synthq.tasks.core.respond_config import Section


class TrainConfig(Section):
    epochs: float = Field(1.0, gt=0, description="Passes over the training rows (when max_steps is unset).")
    max_steps: int | None = Field(
        None, ge=1, description="Optimizer steps; set, it wins over epochs (short runs: a smoke test, a quick look)."
    )
    learning_rate: float = Field(2e-5, gt=0, description="Peak learning rate (linear decay): TRL's usual for full fine-tuning.")
    max_length: int = Field(2048, ge=32, description="Tokens per training example; longer conversations are cut.")
    batch_size: int = Field(8, ge=1, description="Examples per device and step.")
    gradient_accumulation_steps: int = Field(1, ge=1, description="Steps whose gradients add up before an update.")
    seed: int = Field(0, description="Seed of the data order and of the model's initialisation of new weights.")
    workers: int | None = Field(
        None, ge=1, description="Ray Train workers: unset, one per GPU of the cluster (data parallel), one CPU worker without GPUs."
    )
    lora: bool = Field(False, description="Train LoRA adapters (PEFT) instead of every weight: for base models too large to fine-tune whole.")
    lora_r: int = Field(16, ge=1, description="LoRA rank.")
    lora_alpha: int = Field(32, ge=1, description="LoRA scaling.")
    checkpoint_steps: int = Field(
        200, ge=1, description="Save a checkpoint every this many steps: a killed training resumes from the last one."
    )


class EvaluateConfig(Section):
    base_model: str = Field(
        "bundled", description="The model trained on each release: a Hugging Face causal-LM folder (or 'bundled', the factory's own small model)."
    )
    subset: str = Field("sft", description="The release subset trained on: chat `messages` (sft).")
    dpo: bool = Field(False, description="After supervised fine-tuning, preference-tune on the release's `preferences` subset (TRL's DPOTrainer).")
    fractions: list[float] = Field(
        [1.0],
        description="Train on these nested, seeded shares of the release (0.1 ⊂ 0.3 ⊂ 1.0): each is a point on the scaling curve.",
    )
    baseline: bool = Field(True, description="Also score the base model itself, once: the curve's starting point.")
    benchmarks: list[str] = Field(
        ["ifeval"],
        description="lm-evaluation-harness tasks: 'ifeval' runs offline from a packaged copy of its 541 prompts; "
        "any other lm-eval task name (where the hub is reachable) or a path to a task YAML with local data files.",
    )
    limit: int | None = Field(
        None, ge=1, description="Score only the first N prompts of each benchmark: quick, and marked smoke in the ledger."
    )
    max_gen_toks: int = Field(1280, ge=1, description="Longest answer a benchmark prompt gets (IFEval's own setting).")
    eval_batch_size: int = Field(8, ge=1, description="Prompts generated together by the harness.")
    backend: Literal["auto", "hf", "vllm"] = Field(
        "auto", description="The harness's model backend: auto takes vllm on GPU and hf (transformers) on CPU."
    )
    min_steps_for_ledger: int = Field(
        100, ge=1, description="A training shorter than this is marked smoke: drawn apart and left out of the trend."
    )
    train: TrainConfig = TrainConfig()

    @field_validator("fractions")
    @classmethod
    def _fractions_in_range(cls, value: list[float]) -> list[float]:
        bad = [f for f in value if not 0 < f <= 1]
        if bad or not value:
            raise ValueError(f"evaluate.fractions must be shares in (0, 1], e.g. [0.1, 0.3, 1.0]; got {value}")
        return sorted(set(value))
