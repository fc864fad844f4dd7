"""The respond stage's configuration (answers, judge, pairs): a section of `FactoryConfig`,
kept in its own file; import it from `synthq.tasks.core.config` like every other section."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class Section(BaseModel):
    """Base of every config section: unknown keys are errors, not silently ignored."""

    model_config = ConfigDict(extra="forbid")


class RespondConfig(Section):
    enabled: bool = Field(True, description="Answer every curated query and pair its answers: releases get sft and preferences subsets.")
    expert: bool = Field(
        True,
        description="ExpertPrompting: first write a second-person description of the ideal expert for the "
        "query, then answer as that expert (the description is the answering call's system message).",
    )
    samples: int = Field(
        2, ge=1, le=16,
        description="Answers drawn per query and variant, in one request (one prefill of the prompt): 2 is "
        "the least that gives a preference pair.",
    )
    rationale: Literal["none", "with", "both"] = Field(
        "none",
        description="none: direct answers; with: explicit reasoning, then the answer; both: each query gets "
        "both variants, published as separate subsets (sft, sft_rationale, ...) to compare in the ledger.",
    )
    judge: Literal["llm", "reward_model"] = Field(
        "llm",
        description="llm: the engine's model rates each answer on instruction following, helpfulness, "
        "truthfulness and honesty (1-10, reason first; overall = their mean). reward_model: a Hugging Face "
        "sequence-classification reward model (respond.reward_model).",
    )
    reward_model: str | None = Field(
        None, description="Folder of a sequence-classification reward model (ArmoRM, Skywork-Reward, ...), for judge=reward_model."
    )
    reward_trust_remote_code: bool = Field(
        False, description="Run the reward model folder's own modelling code (ArmoRM needs it): only for folders you trust."
    )
    reward_batch_size: int = Field(8, ge=1, description="Conversations scored per forward pass of the reward model.")
    reward_max_length: int = Field(4096, ge=16, description="Conversations are cut to this many tokens for the reward model.")
    pair_rule: Literal["lowest", "random_lower"] = Field(
        "lowest", description="Rejected answer: the lowest-scored, or one drawn at random among those scored lower than the chosen."
    )
    min_margin: float = Field(
        0.5, ge=0,
        description="Pairs whose chosen and rejected scores differ by less are not made (counted as 'tie' or "
        "'margin_below_min'): a judge's noise is not a preference. 0.5 is two points over the LLM judge's four aspects.",
    )
    temperature: float = Field(0.8, ge=0, description="Answer sampling temperature: samples must differ to be ranked.")
    max_answer_tokens: int = Field(
        512, ge=16,
        description="Token limit of an answer; a cut answer is rejected as 'answer_truncated'. The bundled "
        "model ends about 5 of 6 answers within 512 tokens (the demo cut 11 of 65); raise it for models that write long answers.",
    )
    expert_max_tokens: int = Field(256, ge=16, description="Headroom over the expert identity's 600-character cap.")
    judge_max_tokens: int = Field(512, ge=16, description="Headroom over the judge's four reasons (200 characters each) and scores.")

    def variants(self) -> tuple[str, ...]:
        """The answer variants each query gets: direct, rationale, or both."""
        return {"none": ("direct",), "with": ("rationale",), "both": ("direct", "rationale")}[self.rationale]
