"""myai: a local personal-AI engine with a million-token memory.

The public API is re-exported here, loaded on first use (PEP 562) so that a command which
needs only the store does not pay for the assistant, its backends or the vector library;
``myai._core`` (the Rust extension) is private.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from myai import _preload  # noqa: F401  (first: the C++ runtime before any extension)
from myai._core import __version__
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

if TYPE_CHECKING:
    from myai.assistant import Answer, Assistant
    from myai.compression import CompressionMonitor, get_compression_monitor
    from myai.context import ContextManager, MillionTokenContextManager, VectorMemory

# name -> the module that defines it
_LAZY = {
    "Answer": "myai.assistant",
    "Assistant": "myai.assistant",
    "CompressionMonitor": "myai.compression",
    "get_compression_monitor": "myai.compression",
    "ContextManager": "myai.context",
    "MillionTokenContextManager": "myai.context",
    "VectorMemory": "myai.context",
}

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


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'myai' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
