"""Names of on-disk layouts and defaults that the store checks before loading anything: here,
importable without numpy (``myai.vectors`` and ``myai.embedders`` re-use them)."""

from __future__ import annotations

__all__ = ["DTYPES", "FORMATS", "STATIC_DIM"]

DTYPES = ("f32", "f16", "i8")
# The layout of the stored vectors per dtype: an index saved in another layout is rebuilt.
FORMATS = {"f32": "f32", "f16": "f16", "i8": "i8-rot1"}
# The static embedder's dimension (its vectors are keyed "static:STATIC_DIM" in a store).
STATIC_DIM = 256
