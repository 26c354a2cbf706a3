"""Dense vectors beside the BM25 index: a usearch HNSW index over chunk ids, cosine metric.

The dtype (f32, f16, i8) is how min_ram saves memory; ``view=True`` memory-maps a saved index
instead of loading it.

For i8 the vectors are quantised here: turned by a fixed random rotation (which spreads a
vector's length evenly over the dimensions; cosines do not change), then each scaled so that
its largest component is ±127 (nor does a vector's scale change them). usearch's own
conversion maps a unit vector's components, about ±0.06 in 256 dimensions, to about ±8
levels: recall@10 of the static embeddings 0.922 against f32's 1.0 in an exact search; 0.982
with the scaling alone, 0.989 with the rotation too (benches/bench_vectors.py: within 0.01 of
f32 through the graph). ``FORMATS`` names the layout, stored with the index by its owner. Saves are atomic (temporary file, fsync, rename). A missing or corrupt
file is the caller's cue to rebuild from the stored chunks.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from myai._formats import DTYPES, FORMATS
from myai.errors import CorruptStoreError

__all__ = ["DTYPES", "FORMATS", "VectorIndex", "quantize_i8", "rotation"]

# A filter this small is searched exactly over its own vectors rather than through the graph.
EXACT_FILTER_LIMIT = 4096

_ROTATION_SEED = 20240611


@functools.cache
def rotation(dim: int) -> np.ndarray:
    """A fixed random orthogonal (dim, dim) matrix: the same on every machine and numpy
    release (RandomState's stream is frozen; signs fixed after the QR)."""
    g = np.random.RandomState(_ROTATION_SEED + dim).standard_normal((dim, dim))
    q, r = np.linalg.qr(g)
    q = (q * np.where(np.diag(r) < 0, -1.0, 1.0)).astype(np.float32)
    q.setflags(write=False)
    return q


def _usearch_index() -> Any:
    """usearch's Index class (imported when first needed; ``myai._preload`` has already loaded
    the system C++ runtime that keeps it from clashing with llama.cpp and onnxruntime)."""
    from usearch.index import Index

    return Index


def quantize_i8(vectors: np.ndarray) -> np.ndarray:
    """Rows scaled to a largest magnitude of 127 and rounded to int8 (zero rows stay zero)."""
    v = np.asarray(vectors, dtype=np.float32)
    top = np.abs(v).max(axis=-1, keepdims=True)
    scaled = v * (np.float32(127.0) / np.where(top > 0, top, np.float32(1.0)))
    return np.ascontiguousarray(np.clip(np.rint(scaled), -127, 127).astype(np.int8))


class VectorIndex:
    """Chunk id → unit vector, searchable by cosine similarity."""

    def __init__(self, dim: int, dtype: str = "f32") -> None:
        Index = _usearch_index()
        if dtype not in DTYPES:
            raise ValueError(f"vector dtype must be one of {', '.join(DTYPES)}, got {dtype!r}")
        if dim < 1:
            raise ValueError(f"vector dim must be positive, got {dim}")
        self.dim = dim
        self.dtype = dtype
        self._index = Index(ndim=dim, metric="cos", dtype=dtype)
        self.read_only = False

    def __len__(self) -> int:
        return len(self._index)

    def __contains__(self, key: int) -> bool:
        return bool(self._index.contains(key))

    def add(self, keys: Iterable[int], vectors: np.ndarray) -> None:
        keys_a = np.fromiter(keys, dtype=np.uint64)
        if len(keys_a) == 0:
            return
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        if vectors.shape != (len(keys_a), self.dim):
            raise ValueError(
                f"{len(keys_a)} keys need vectors of shape ({len(keys_a)}, {self.dim}), "
                f"got {vectors.shape}"
            )
        self._writable()
        self._index.add(keys_a, self._stored(vectors), threads=2)

    def remove(self, keys: Iterable[int]) -> None:
        present = [k for k in keys if self._index.contains(k)]
        if present:
            self._writable()
            self._index.remove(np.array(present, dtype=np.uint64))

    def search(
        self, vector: np.ndarray, k: int, allowed: Iterable[int] | None = None
    ) -> list[tuple[int, float]]:
        """The ``k`` nearest chunks as (chunk id, cosine similarity), best first; only chunks
        in ``allowed`` when given (small sets are searched exactly)."""
        if k <= 0 or len(self._index) == 0:
            return []
        q = np.ascontiguousarray(vector, dtype=np.float32).reshape(-1)
        if allowed is not None:
            ids = [int(a) for a in allowed if self._index.contains(int(a))]
            if not ids:
                return []
            if len(ids) <= EXACT_FILTER_LIMIT:
                vecs = self._index.get(np.array(ids, dtype=np.uint64), dtype=np.float32)
                vecs = np.asarray(vecs, dtype=np.float32).reshape(len(ids), self.dim)
                if self.dtype == "i8":  # stored turned by the rotation: turn the query too
                    q = q @ rotation(self.dim)
                norms = np.linalg.norm(vecs, axis=1) * max(float(np.linalg.norm(q)), 1e-12)
                sims = vecs @ q / np.maximum(norms, 1e-12)
                order = np.argsort(-sims, kind="stable")[:k]
                return [(ids[i], float(sims[i])) for i in order]
            wanted = set(ids)
            fetch = k * 8
            while True:
                m = self._index.search(self._stored(q), min(fetch, len(self._index)))
                hits = [(int(c), 1.0 - float(d)) for c, d in zip(m.keys, m.distances, strict=True)
                        if int(c) in wanted]  # fmt: skip
                if len(hits) >= k or fetch >= len(self._index):
                    return hits[:k]
                fetch *= 4
        m = self._index.search(self._stored(q), min(k, len(self._index)))
        return [(int(c), 1.0 - float(d)) for c, d in zip(m.keys, m.distances, strict=True)]

    @property
    def format(self) -> str:
        """The layout of the stored vectors (``FORMATS``), to be saved beside the index."""
        return FORMATS[self.dtype]

    def _stored(self, vectors: np.ndarray) -> np.ndarray:
        """Vectors as handed to usearch: rotated and quantised here for i8, else float32."""
        if self.dtype != "i8":
            return vectors
        v = np.asarray(vectors, dtype=np.float32)
        return quantize_i8(v @ rotation(self.dim))

    def save(self, path: Path) -> None:
        """Writes the index atomically."""
        tmp = path.with_name(path.name + ".tmp")
        self._index.save(str(tmp))
        fd = os.open(tmp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)

    @classmethod
    def load(cls, path: Path, dim: int, dtype: str, view: bool = False) -> VectorIndex:
        """A saved index (memory-mapped read-only with ``view``); CorruptStoreError when the
        file is unreadable or holds vectors of another shape."""
        Index = _usearch_index()
        try:
            index = Index.restore(str(path), view=view)
        except Exception as e:  # usearch raises RuntimeError/ValueError on damaged files
            raise CorruptStoreError(
                f"{path}: unreadable vector index ({e})", path=str(path)
            ) from None
        if index is None or index.ndim != dim:
            raise CorruptStoreError(
                f"{path}: vector index of dimension {getattr(index, 'ndim', '?')}, expected {dim}",
                path=str(path),
            )
        self = cls.__new__(cls)
        self.dim = dim
        self.dtype = dtype
        self._index = index
        self.read_only = view
        return self

    def memory_bytes(self) -> int:
        return int(getattr(self._index, "memory_usage", 0) or 0)

    def _writable(self) -> None:
        if self.read_only:
            # A memory-mapped view cannot change: load it into RAM on first write.
            Index = _usearch_index()
            copy = Index(ndim=self.dim, metric="cos", dtype=self.dtype)
            keys = np.fromiter(iter(self._index.keys), dtype=np.uint64)
            if len(keys):
                raw = np.int8 if self.dtype == "i8" else np.float32  # i8: no second rounding
                copy.add(keys, np.asarray(self._index.get(keys, dtype=raw)))
            self._index = copy
            self.read_only = False
