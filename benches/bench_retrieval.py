"""Retrieval quality on BEIR SciFact (../shared/data/retrieval/scifact): nDCG@10, recall@10,
recall@100, MRR@10 per mode, with ingest and query times. Published anchors: BM25 (Anserini)
0.665, BM25 + cross-encoder rerank 0.688, all-MiniLM-L6-v2 alone about 0.645. Hybrid rows use
weighted fusion with the scenarios' BM25 weights (0.8 with static vectors, 0.55 with MiniLM);
the MiniLM rows run with MYAI_BENCH_FULL=1.

Skipped when the data set is absent; the full table prints with ``make bench``.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from myai import ContextManager
from myai.corpus import shared_data_dir
from myai.retrieval import WEIGHT_BM25, WEIGHT_BM25_MINILM, evaluate, load_beir
from myai.tokens import default_tokenizer


@pytest.fixture(scope="module")
def scifact():
    d = shared_data_dir()
    path = d / "retrieval" / "scifact" if d else None
    if path is None or not path.is_dir():
        pytest.skip("../shared/data/retrieval/scifact is not present")
    return load_beir(path)


def _embedder(name: str):
    embedders = pytest.importorskip("myai.embedders")
    home = os.environ.get("MYAI_MODELS") or os.environ.get("MYAI_HOME")
    return embedders.get_embedder(name, Path(home) if home else Path.home() / ".local/share/myai")


@pytest.mark.parametrize(
    ("label", "embedder", "rerank", "modes"),
    [
        ("bm25", None, None, ("bm25",)),
        ("static", "static", None, ("vector", "hybrid")),
        ("static+minilm rerank", "static", "minilm", ("hybrid",)),
        ("minilm", "minilm", None, ("vector", "hybrid")),
    ],
)
def test_scifact(scifact, label: str, embedder: str | None, rerank: str | None, modes) -> None:
    if rerank and os.environ.get("MYAI_BENCH_FULL") != "1":
        pytest.skip(
            "the MiniLM rerank of 300 queries (~9,000 chunk passes) needs MYAI_BENCH_FULL=1"
        )
    if embedder == "minilm" and os.environ.get("MYAI_BENCH_FULL") != "1":
        pytest.skip("MiniLM vectors of 5,183 abstracts (about 2 minutes) need MYAI_BENCH_FULL=1")
    emb = _embedder(embedder) if embedder else None
    rr = _embedder(rerank) if rerank else None
    tok = default_tokenizer()

    def store() -> ContextManager:
        return ContextManager(
            max_tokens=10_000_000, chunk_size=512, chunk_overlap=32, dedup=False,
            tokenizer=tok, embedder=emb, rerank_embedder=rr, fusion="weighted",
            bm25_weight=WEIGHT_BM25_MINILM if embedder == "minilm" else WEIGHT_BM25,
        )  # fmt: skip

    for r in evaluate(scifact, store, modes=modes):
        s = r.scores
        print(
            f"\nSciFact {label:<22} {r.mode:<7} nDCG@10 {s['ndcg@10']:.4f}  R@10 {s['recall@10']:.4f}"
            f"  R@100 {s['recall@100']:.4f}  MRR@10 {s['mrr@10']:.4f}  ingest {r.ingest_s:.2f} s"
            f"  query p50 {r.query_ms_p50:.2f} ms"
        )
        assert 0.0 < s["ndcg@10"] <= 1.0
