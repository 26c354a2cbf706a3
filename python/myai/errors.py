"""The exception hierarchy of myai: every error it raises on purpose is a MyaiError.

The base classes are declared in the Rust core (so core functions raise them directly) and
extended here with the errors that only the Python layer raises.
"""

from __future__ import annotations

from myai._core import CorruptDataError, MyaiError, TokenizerError

__all__ = [
    "CapacityError",
    "ConfigError",
    "CorruptDataError",
    "CorruptStoreError",
    "EmbedderMismatchError",
    "MyaiError",
    "StoreLockedError",
    "TokenizerError",
]


class ConfigError(MyaiError, ValueError):
    """The configuration is invalid: an unknown key, a wrong type, a value out of range."""


class CapacityError(MyaiError):
    """Adding would exceed the context store's max_tokens and auto_cleanup is off."""

    def __init__(self, message: str, *, missing_tokens: int = 0) -> None:
        super().__init__(message)
        self.missing_tokens = missing_tokens


class CorruptStoreError(CorruptDataError):
    """A file of a context store is corrupt or truncated; the message names the file."""

    def __init__(self, message: str, *, path: str = "") -> None:
        super().__init__(message)
        self.path = path


class EmbedderMismatchError(MyaiError):
    """The store's vectors were made by another embedder than the one configured."""


class StoreLockedError(MyaiError):
    """Another process holds the store's writer lock."""
