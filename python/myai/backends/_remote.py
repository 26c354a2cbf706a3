"""What the server backends (Ollama, OpenAI-compatible) share: counting a chat prompt's tokens
before it is sent, refusing one that does not fit, and small conversions.

A server applies the chat template itself, so the count is of the template's rendering: ChatML
for SmolLM2 (exact, with the GGUF's tokenizer; the default system prompt of SmolLM2's template
is counted when the messages have none), else the estimator with a margin (another model's
tokenizer is unknown here: better to refuse a prompt a little early than to let the server cut
it without a word).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from myai import _core
from myai.backends.base import BackendError, Message

__all__ = ["ESTIMATE_MARGIN", "PromptCounter", "check_fits", "keep_alive_value"]

# The estimator is calibrated on SmolLM2 over English prose (about 1% off); other vocabularies
# and other text (code, other languages) differ more, hence the margin for unknown models.
ESTIMATE_MARGIN = 1.15
# Template tokens around each message when the template is unknown (role markers, separators).
PER_MESSAGE_OVERHEAD = 8
# SmolLM2's chat template adds this system message when the conversation has none.
SMOLLM2_DEFAULT_SYSTEM = "You are a helpful AI assistant named SmolLM, trained by Hugging Face"


def is_smollm2(model: str) -> bool:
    return "smollm2" in model.lower()


class PromptCounter:
    """Counts tokens for a model served elsewhere: SmolLM2's own tokenizer for a SmolLM2
    model (when its GGUF is installed), else the estimator times :data:`ESTIMATE_MARGIN`."""

    def __init__(self, model: str) -> None:
        self.tokenizer: _core.Tokenizer | None = None
        if is_smollm2(model):
            from myai.tokens import default_tokenizer

            tok = default_tokenizer()
            if tok.kind != "estimate":
                self.tokenizer = tok

    @property
    def exact(self) -> bool:
        return self.tokenizer is not None

    @property
    def name(self) -> str:
        if self.tokenizer is not None:
            return self.tokenizer.name
        return f"estimate x{ESTIMATE_MARGIN}"

    def count(self, text: str) -> int:
        if self.tokenizer is not None:
            return self.tokenizer.count_tokens(text)
        return math.ceil(_core.estimate_tokens(text) * ESTIMATE_MARGIN)

    def prompt_tokens(self, messages: Sequence[Message]) -> int:
        """Tokens of the prompt the server builds from ``messages`` (template included)."""
        if self.tokenizer is not None:
            msgs = list(messages)
            if not any(m["role"] == "system" for m in msgs):
                msgs.insert(0, {"role": "system", "content": SMOLLM2_DEFAULT_SYSTEM})
            chatml = "".join(f"<|im_start|>{m['role']}\n{m['content']}<|im_end|>\n" for m in msgs)
            return self.tokenizer.count_tokens(chatml + "<|im_start|>assistant\n")
        body = sum(self.count(m["content"]) for m in messages)
        return body + PER_MESSAGE_OVERHEAD * (len(messages) + 1)


def check_fits(prompt_tokens: int, max_tokens: int, n_ctx: int, what: str) -> None:
    """BackendError when a prompt and the answer's room do not fit the context window, saying
    by how many tokens it is over (a server would cut the prompt silently)."""
    need = prompt_tokens + max_tokens
    if need > n_ctx:
        raise BackendError(
            f"the prompt does not fit {what}'s context window: {prompt_tokens} prompt tokens "
            f"+ {max_tokens} for the answer (max_tokens) = {need} > n_ctx {n_ctx}, "
            f"over by {need - n_ctx} tokens; shorten the prompt or the history, lower "
            "max_tokens or raise backend.n_ctx"
        )


def keep_alive_value(v: Any) -> str | int | float | None:
    """Ollama's keep_alive: a duration string ("5m", "1h") or a number of seconds; a numeric
    string ("-1", "0", "300") becomes a number (Ollama rejects a unitless duration string)."""
    if v is None or v == "":
        return None
    if isinstance(v, (int, float)):
        return v
    s = str(v).strip()
    try:
        return int(s)
    except ValueError:
        pass
    try:
        return float(s)
    except ValueError:
        return s
