"""The protocol every generation backend speaks, and the records it returns.

``chat(messages, options, stream)``: ``messages`` are ``{"role", "content"}`` dicts (system,
user, assistant). With ``stream=False`` it returns a :class:`ChatResult`; with ``stream=True``
an iterator that yields the answer's text pieces (``str``) as they are generated and then, last,
the :class:`ChatResult` (whose ``text`` is the whole answer).

``info()`` describes the backend (name, model, device, context window, quantisation);
``health()`` says whether it can answer now, and why not. ``count_tokens(text)`` counts with
the model's own tokenizer where the backend knows it (packing relies on it), else estimates.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol, TypeVar, runtime_checkable

from myai.errors import MyaiError

__all__ = [
    "Backend",
    "BackendError",
    "BackendUnavailable",
    "ChatOptions",
    "ChatResult",
    "Message",
    "Timer",
    "cfg_get",
    "check_messages",
    "final_result",
]

Message = dict[str, str]
T = TypeVar("T")
ROLES = ("system", "user", "assistant")


class BackendError(MyaiError):
    """A backend failed while answering (a server died mid-stream, a timeout, a bad reply)."""


class BackendUnavailable(BackendError):
    """A backend cannot answer at all: its runtime, model file or server is missing. The
    message says what to install, start or pull."""


@dataclass
class ChatOptions:
    """Generation settings of one call (None: the backend's configured value)."""

    temperature: float | None = None
    max_tokens: int | None = None
    top_p: float | None = None
    stop: list[str] = field(default_factory=list)
    seed: int | None = None
    # Generate exactly max_tokens (the end-of-turn token suppressed): for benchmarks.
    ignore_eos: bool = False
    # For the extractive backend (and any that can use them): the retrieved passages the
    # prompt quotes, as the Assistant's source records ({"text", "document_name", ...});
    # None when the caller retrieved nothing itself (a bare chat call).
    sources: list[dict[str, Any]] | None = None
    question: str | None = None


@dataclass
class ChatResult:
    """One answer: its text, who made it, the token usage and the timings (milliseconds)."""

    text: str
    backend: str
    model: str
    device: str = "cpu"
    finish_reason: str = "stop"  # stop | length | error
    prompt_tokens: int = 0
    completion_tokens: int = 0
    # Time to the first token, prompt processing, generation and the whole call.
    ttft_ms: float = 0.0
    prompt_ms: float = 0.0
    generation_ms: float = 0.0
    total_ms: float = 0.0

    @property
    def usage(self) -> dict[str, int]:
        return {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": self.prompt_tokens + self.completion_tokens,
        }

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["usage"] = self.usage
        return d


@runtime_checkable
class Backend(Protocol):
    name: str  # llamacpp | ollama | hf | openai | extractive
    model: str
    device: str
    n_ctx: int  # the model's context window in tokens (prompt and answer together)

    def chat(
        self,
        messages: Sequence[Message],
        options: ChatOptions | None = None,
        stream: bool = False,
    ) -> ChatResult | Iterator[str | ChatResult]: ...

    def info(self) -> dict[str, Any]: ...

    def health(self) -> dict[str, Any]:  # {"ok": bool, "detail": str}
        ...

    def count_tokens(self, text: str) -> int: ...


def check_messages(messages: Sequence[Message]) -> list[Message]:
    """The messages as plain dicts; TypeError/ValueError naming the first bad one."""
    if isinstance(messages, (str, bytes)) or not isinstance(messages, Sequence):
        raise TypeError(f"messages must be a list of dicts, got {type(messages).__name__}")
    if not messages:
        raise ValueError("messages is empty: nothing to answer")
    out: list[Message] = []
    for i, m in enumerate(messages):
        if not isinstance(m, dict):
            raise TypeError(f"messages[{i}] must be a dict, got {type(m).__name__}")
        role, content = m.get("role"), m.get("content")
        if role not in ROLES:
            raise ValueError(f"messages[{i}].role must be one of {', '.join(ROLES)}, got {role!r}")
        if not isinstance(content, str):
            raise TypeError(f"messages[{i}].content must be a str, got {type(content).__name__}")
        out.append({"role": role, "content": content})
    return out


def cfg_get(cfg: Any, key: str, default: Any = None) -> Any:
    """``cfg.key`` of a DictConfig, a dataclass or a plain dict (enums as their value)."""
    if cfg is None:
        return default
    v = cfg.get(key, default) if isinstance(cfg, dict) else getattr(cfg, key, default)
    if v is None:
        return default
    return getattr(v, "value", v)


def final_result(stream: Iterable[str | T], kind: type[T]) -> T:
    """The record that ends a stream of text pieces (``ChatResult``, the Assistant's
    ``Answer``): how a non-streamed call is served by the streamed one."""
    for piece in stream:
        if isinstance(piece, kind):
            return piece
    raise BackendError("the answer's stream ended without its final record")


class Timer:
    """Times a generation: ``first()`` at the first token, ``done()`` at the end."""

    def __init__(self) -> None:
        self.t0 = time.perf_counter()
        self.t_first: float | None = None

    def first(self) -> None:
        if self.t_first is None:
            self.t_first = time.perf_counter()

    def fill(self, r: ChatResult) -> ChatResult:
        end = time.perf_counter()
        first = self.t_first if self.t_first is not None else end
        r.ttft_ms = (first - self.t0) * 1e3
        r.total_ms = (end - self.t0) * 1e3
        if not r.prompt_ms:
            r.prompt_ms = r.ttft_ms
        if not r.generation_ms:
            r.generation_ms = (end - first) * 1e3
        return r
