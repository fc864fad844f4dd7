"""Token counting and cutting with the model's own tokenizer (budgets are in real tokens)."""

from __future__ import annotations

from functools import lru_cache

from synthq.tasks.core.config import EngineConfig
from synthq.tasks.llm.models import resolve_model


@lru_cache(maxsize=4)
def _load(name: str):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(name)


class Tokens:
    """Counts and cuts text in tokens of the tokenizer the config names (default: the model's)."""

    def __init__(self, cfg: EngineConfig):
        self.tok = _load(resolve_model(cfg.tokenizer or cfg.model))

    def count(self, text: str) -> int:
        return len(self.tok.encode(text, add_special_tokens=False))

    def cut(self, text: str, limit: int) -> str:
        """The longest prefix of `text` within `limit` tokens."""
        ids = self.tok.encode(text, add_special_tokens=False)
        if len(ids) <= limit:
            return text
        return self.tok.decode(ids[:limit]).rstrip() + " …"

    def count_messages(self, messages: list[dict]) -> int:
        """Prompt tokens of a chat, including the chat template's own tokens."""
        ids = self.tok.apply_chat_template(messages, add_generation_prompt=True, tokenize=True)
        if isinstance(ids, dict) or hasattr(ids, "input_ids"):
            ids = ids["input_ids"]
        return len(ids)
