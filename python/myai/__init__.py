"""myai: a local personal-AI engine with a million-token memory.

The public API is re-exported here; ``myai._core`` (the Rust extension) is private.

The names are imported on first use (PEP 562), so ``python -m myai ingest`` does not pay for the
assistant, the backends or the vectors (numpy, usearch) it does not use. ``myai._preload`` still
runs first, at ``import myai``: every ``myai.*`` module, and so every C++ extension that myai
imports (usearch, llama.cpp, onnxruntime), comes after it.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from myai import _preload  # noqa: F401  (first: the C++ runtime before any extension)
from myai._core import __version__

if TYPE_CHECKING:
    from myai.assistant import Answer, Assistant
    from myai.compression import CompressionMonitor, get_compression_monitor
    from myai.context import ContextManager, MillionTokenContextManager, VectorMemory
    from myai.errors import (
        CapacityError,
        ConfigError,
        CorruptDataError,
        CorruptStoreError,
        EmbedderMismatchError,
        MyaiError,
        StoreLockedError,
        TokenizerError,
    )

__all__ = [
    "Answer",
    "Assistant",
    "CapacityError",
    "CompressionMonitor",
    "ConfigError",
    "ContextManager",
    "CorruptDataError",
    "CorruptStoreError",
    "EmbedderMismatchError",
    "MillionTokenContextManager",
    "MyaiError",
    "StoreLockedError",
    "TokenizerError",
    "VectorMemory",
    "__version__",
    "get_compression_monitor",
]

# Each lazily exported name and the module it lives in.
_LAZY = {
    "Answer": "myai.assistant",
    "Assistant": "myai.assistant",
    "CompressionMonitor": "myai.compression",
    "get_compression_monitor": "myai.compression",
    "ContextManager": "myai.context",
    "MillionTokenContextManager": "myai.context",
    "VectorMemory": "myai.context",
    "CapacityError": "myai.errors",
    "ConfigError": "myai.errors",
    "CorruptDataError": "myai.errors",
    "CorruptStoreError": "myai.errors",
    "EmbedderMismatchError": "myai.errors",
    "MyaiError": "myai.errors",
    "StoreLockedError": "myai.errors",
    "TokenizerError": "myai.errors",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'myai' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # the next lookup does not come here
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
