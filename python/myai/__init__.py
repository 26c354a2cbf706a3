"""myai: a local personal-AI engine with a million-token memory.

The public API is re-exported here; ``myai._core`` (the Rust extension) is private.
"""

from __future__ import annotations

from myai import _preload  # noqa: F401  (first: the C++ runtime before any extension)
from myai._core import __version__
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
