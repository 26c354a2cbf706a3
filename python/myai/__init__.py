"""myai: a local personal-AI engine with a million-token memory.

The public API is re-exported here; ``myai._core`` (the Rust extension) is private.
"""

from __future__ import annotations

from myai._core import __version__
from myai.errors import (
    CapacityError,
    ConfigError,
    CorruptDataError,
    CorruptStoreError,
    MyaiError,
    StoreLockedError,
    TokenizerError,
)

__all__ = [
    "CapacityError",
    "ConfigError",
    "CorruptDataError",
    "CorruptStoreError",
    "MyaiError",
    "StoreLockedError",
    "TokenizerError",
    "__version__",
]
