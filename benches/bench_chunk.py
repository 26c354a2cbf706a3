"""Token-aware chunking of 1M tokens (512-token chunks, 10% overlap) against the peers.

Goal: ≥ 7x semchunk on the same vocabulary. semantic-text-splitter is measured the same way;
chonkie's FastChunker (character-based, no token counts) is the speed floor for reference.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from myai import _core

SIZE, OVERLAP = 512, 51


@pytest.mark.benchmark(group="chunk-1M-512tok")
def test_chunk_myai(benchmark, corpus_1m: str, smollm2) -> None:
    chunks = benchmark.pedantic(
        _core.chunk_text, args=(corpus_1m, SIZE, OVERLAP, smollm2), rounds=10, warmup_rounds=1
    )
    assert max(c[2] for c in chunks) <= SIZE
    benchmark.extra_info["chunks"] = len(chunks)


@pytest.mark.benchmark(group="chunk-1M-512tok")
def test_chunk_semchunk(benchmark, corpus_1m: str, same_vocab_json: Path) -> None:
    semchunk = pytest.importorskip("semchunk")
    tk = pytest.importorskip("tokenizers")
    hf = tk.Tokenizer.from_file(str(same_vocab_json))
    chunker = semchunk.chunkerify(hf, SIZE)
    out = benchmark.pedantic(
        lambda: chunker(corpus_1m, overlap=OVERLAP), rounds=2, iterations=1, warmup_rounds=0
    )
    benchmark.extra_info["chunks"] = len(out)


@pytest.mark.benchmark(group="chunk-1M-512tok")
def test_chunk_semantic_text_splitter(benchmark, corpus_1m: str, same_vocab_json: Path) -> None:
    sts = pytest.importorskip("semantic_text_splitter")
    splitter = sts.TextSplitter.from_huggingface_tokenizer_file(
        str(same_vocab_json), capacity=SIZE, overlap=OVERLAP
    )
    out = benchmark.pedantic(lambda: splitter.chunks(corpus_1m), rounds=1, iterations=1)
    benchmark.extra_info["chunks"] = len(out)


@pytest.mark.benchmark(group="chunk-1M-512tok")
def test_chunk_chonkie_fast_chars(benchmark, corpus_1m: str) -> None:
    chonkie = pytest.importorskip("chonkie")
    chunker = chonkie.FastChunker(chunk_size=SIZE * 4)
    out = benchmark.pedantic(lambda: chunker(corpus_1m), rounds=10, iterations=1, warmup_rounds=1)
    benchmark.extra_info["chunks"] = len(out)
