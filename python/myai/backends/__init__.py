"""Generation backends: llama.cpp (embedded, the default model), Ollama, HuggingFace,
OpenAI-compatible servers and the extractive fallback, chosen by ``backend.name``.

Each backend lives in its own module with a class speaking :class:`Backend`, a
``from_config(cfg)`` that builds it from the ``backend`` config group (raising
:class:`BackendUnavailable` naming what is missing) and a cheap ``probe(cfg) -> (ok, reason)``
used by ``auto``. Modules are imported only when used, so a missing optional runtime (torch,
llama-cpp-python, the ollama client) costs nothing until asked for.
"""

from __future__ import annotations

import importlib
import logging
from typing import Any

from myai.backends.base import (
    Backend,
    BackendError,
    BackendUnavailable,
    ChatOptions,
    ChatResult,
    Message,
    check_messages,
)

__all__ = [
    "AUTO_ORDER",
    "BACKENDS",
    "Backend",
    "BackendError",
    "BackendUnavailable",
    "ChatOptions",
    "ChatResult",
    "Message",
    "check_messages",
    "make_backend",
    "probe_backend",
]

log = logging.getLogger(__name__)

# name -> module (relative to myai.backends)
BACKENDS: dict[str, str] = {
    "llamacpp": "llamacpp",
    "ollama": "ollama",
    "hf": "hf",
    "openai": "openai_compat",
    "extractive": "extractive",
}
# The order in which ``auto`` tries them (the seed's selection), and falls back at run time.
AUTO_ORDER = ("ollama", "hf", "llamacpp", "extractive")


def _module(name: str) -> Any:
    if name not in BACKENDS:
        raise ValueError(f"unknown backend {name!r}: expected auto or one of {', '.join(BACKENDS)}")
    return importlib.import_module(f"myai.backends.{BACKENDS[name]}")


def _name(v: Any) -> str:
    return str(getattr(v, "value", v))


def make_backend(name: str, cfg: Any) -> Backend:
    """The backend called ``name`` built from the ``backend`` config group ``cfg`` (a
    DictConfig or BackendConfig). BackendUnavailable when its runtime or model is missing."""
    try:
        mod = _module(_name(name))
    except ImportError as e:  # a module that itself imports an optional runtime at top level
        raise BackendUnavailable(f"backend {name} cannot be loaded: {e}") from e
    backend: Backend = mod.from_config(cfg)
    return backend


def probe_backend(name: str, cfg: Any) -> tuple[bool, str]:
    """Whether backend ``name`` can be used now, and why (or why not), cheaply: no model is
    loaded. Never raises."""
    try:
        ok, reason = _module(_name(name)).probe(cfg)
        return bool(ok), str(reason)
    except Exception as e:
        return False, f"{type(e).__name__}: {e}"
