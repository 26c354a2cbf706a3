"""The layouts of saved vectors, importable without numpy: the store checks its saved vectors
against them when it opens, before it knows whether it will load them (``myai.vectors``, which
needs numpy, re-exports them)."""

from __future__ import annotations

__all__ = ["DTYPES", "FORMATS"]

DTYPES = ("f32", "f16", "i8")
# The layout of the stored vectors per dtype: an index saved in another layout is rebuilt.
FORMATS = {"f32": "f32", "f16": "f16", "i8": "i8-rot1"}
