"""Compression statistics and zstd helpers through the bindings."""

from __future__ import annotations

import pytest

from myai import _core
from myai.corpus import generated_corpus
from myai.tokens import default_tokenizer


def test_figures_add_up() -> None:
    tok = default_tokenizer()
    text = generated_corpus(4000)
    chunks = _core.chunk_text(text, 256, 32, tok)
    dups = [i % 5 == 3 for i in range(len(chunks))]
    st = _core.compression_stats(text, chunks, dups, tok)
    assert st["original_bytes"] == len(text.encode())
    assert st["original_tokens"] == _core.count_tokens(text, tok)
    assert st["chunked_tokens"] == sum(c[2] for c in chunks)
    assert st["chunked_tokens"] - st["overlap_tokens"] == st["original_tokens"]
    assert st["stored_tokens"] + st["dedup_saved_tokens"] == st["original_tokens"]
    assert st["duplicate_chunks"] == sum(dups)
    assert 0 < st["overhead_percent"] < 15
    assert st["efficiency"] == pytest.approx(100 - st["overhead_percent"])
    assert st["storage_ratio"] == pytest.approx(st["original_bytes"] / st["zstd_bytes"])
    assert st["storage_ratio"] > 2.0


def test_repetitive_log_compresses_hard() -> None:
    text = "2024-01-01 12:00:00 INFO heartbeat ok from node-7\n" * 2000
    chunks = _core.chunk_text(text, 512, 0)
    st = _core.compression_stats(text, chunks)
    assert st["storage_ratio"] > 50


def test_bad_spans() -> None:
    with pytest.raises(ValueError, match="not a span"):
        _core.compression_stats("abc", [(0, 10, 1)])
    with pytest.raises(ValueError, match="duplicate flags"):
        _core.compression_stats("abc", [(0, 3, 1)], [True, False])
    with pytest.raises(ValueError, match="level"):
        _core.compression_stats("abc", [(0, 3, 1)], None, None, 99)
    with pytest.raises(ValueError, match="not a span"):
        _core.compression_stats("é", [(0, 1, 1)])  # inside a character


def test_zstd_round_trip_and_corruption() -> None:
    data = b"memory " * 1000
    z = _core.zstd_compress(data)
    assert len(z) < len(data) // 20
    assert _core.zstd_decompress(z) == data
    with pytest.raises(_core.CorruptDataError, match="over the limit"):
        _core.zstd_decompress(z, max_size=100)
    with pytest.raises(_core.CorruptDataError):
        _core.zstd_decompress(z[: len(z) // 2])
    with pytest.raises(_core.CorruptDataError):
        _core.zstd_decompress(b"")
    with pytest.raises(ValueError, match="level"):
        _core.zstd_compress(data, 0)
