"""The core's whole ingest of 1M tokens: normalise, count, chunk, dedup, index (in RAM).

Goal: ≤ 0.1 s on this 2-core machine with ≤ 40 MB extra RSS, and linear to 10M tokens.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from myai import _core
from myai.corpus import generated_corpus
from myai.tokens import default_tokenizer

CHUNK, OVERLAP = 512, 51


def ingest(text: str, tok: _core.Tokenizer) -> tuple[int, int]:
    norm = _core.normalize(text)
    chunks = _core.chunk_text(norm, CHUNK, OVERLAP, tok, True)
    texts = [c[3] for c in chunks]
    ids = list(range(1, len(texts) + 1))
    near = _core.NearDupIndex(threshold=0.85)
    dup = near.add_batch(ids, texts, True)
    keep = [i for i, d in enumerate(dup) if d is None]
    index = _core.Bm25Index()
    index.add_batch([ids[i] for i in keep], [1] * len(keep), [texts[i] for i in keep])
    return len(chunks), len(keep)


@pytest.mark.benchmark(group="ingest-1M")
def test_ingest_1m(benchmark, corpus_1m: str) -> None:
    tok = default_tokenizer()
    n, kept = benchmark.pedantic(ingest, args=(corpus_1m, tok), rounds=7, warmup_rounds=1)
    benchmark.extra_info.update(chunks=n, kept=kept)
    assert kept <= n


@pytest.mark.benchmark(group="ingest-10M")
def test_ingest_10m(benchmark) -> None:
    tok = default_tokenizer()
    text = "\n\n".join(generated_corpus(1_000_000, seed=s) for s in range(10))
    benchmark.pedantic(ingest, args=(text, tok), rounds=2, warmup_rounds=0)


def test_ingest_extra_rss(corpus_1m: str) -> None:
    """Peak RSS added by ingesting 1M tokens, sampled every millisecond in a fresh process
    (printed; recorded in the closing notes)."""
    code = (
        "import sys, threading, time, psutil\n"
        "sys.path.insert(0, 'benches')\n"
        "from bench_ingest import ingest\n"
        "from myai.corpus import english_corpus\n"
        "from myai.tokens import default_tokenizer\n"
        "tok = default_tokenizer(); text, _ = english_corpus(1_048_576)\n"
        "tok.count_tokens('warm up'); import gc; gc.collect()\n"
        "p = psutil.Process(); base = p.memory_info().rss; peak = [base]; done = []\n"
        "def watch():\n"
        "    while not done:\n"
        "        peak[0] = max(peak[0], p.memory_info().rss); time.sleep(0.001)\n"
        "t = threading.Thread(target=watch); t.start()\n"
        "ingest(text, tok); done.append(1); t.join()\n"
        "print((peak[0] - base) / 1e6)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    extra = float(out.stdout.strip())
    print(f"\npeak RSS added by a 1M-token ingest: {extra:.1f} MB")
    assert extra >= 0
