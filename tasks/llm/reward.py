"""A reward model: any Hugging Face sequence-classification model folder (ArmoRM,
Skywork-Reward, ...) scoring chat conversations, in batches, on a GPU when there is one.

The score is the model's first logit, or its `score` output when it has one (ArmoRM's
custom head returns the preference score there).
"""

from __future__ import annotations

from synthq.tasks.core.errors import ConfigError


class RewardModel:
    def __init__(self, folder: str, batch_size: int = 8, max_length: int = 4096, trust_remote_code: bool = False):
        import torch
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        try:
            self.tokenizer = AutoTokenizer.from_pretrained(folder, trust_remote_code=trust_remote_code)
            gpu = torch.cuda.is_available()
            self.model = AutoModelForSequenceClassification.from_pretrained(
                folder, dtype=torch.bfloat16 if gpu else torch.float32, trust_remote_code=trust_remote_code
            )
        except (OSError, ValueError) as e:
            raise ConfigError(f"respond.reward_model={folder} is not a sequence-classification model folder: {e}") from e
        self.device = "cuda" if gpu else "cpu"
        self.model.to(self.device).eval()
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.model.config.pad_token_id = self.tokenizer.pad_token_id
        self.batch_size, self.max_length = batch_size, max_length

    def _text(self, conversation: list[dict]) -> str:
        if self.tokenizer.chat_template:
            return self.tokenizer.apply_chat_template(conversation, tokenize=False)
        return "\n\n".join(f"{m['role']}: {m['content']}" for m in conversation)

    def score(self, conversations: list[list[dict]]) -> list[float]:
        import torch

        out: list[float] = []
        for start in range(0, len(conversations), self.batch_size):
            texts = [self._text(c) for c in conversations[start : start + self.batch_size]]
            enc = self.tokenizer(texts, return_tensors="pt", padding=True, truncation=True, max_length=self.max_length,
                                 add_special_tokens=False).to(self.device)
            with torch.inference_mode():
                result = self.model(**enc)
            values = getattr(result, "score", None)
            values = result.logits[:, 0] if values is None else values.reshape(len(texts), -1)[:, 0]
            out.extend(float(v) for v in values.float().cpu())
        return out
