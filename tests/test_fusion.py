"""Weighted fusion's BM25 weight (retrieval.bm25_weight), the rerank blend of BM25 with a
stronger embedder's cosine, and the max_quality wiring (MiniLM vectors, no reranker above
them)."""

from __future__ import annotations

import pytest
from test_retrieval import WordHashEmbedder

from myai import ContextManager
from myai.config import load_config
from myai.retrieval import RERANK_BM25_WEIGHT, WEIGHT_BM25, blend, fuse

BM25 = [(1, 9.0), (2, 5.0), (3, 1.0)]
VEC = [(3, 0.9), (4, 0.8), (1, 0.1)]


def test_fuse_weight_moves_between_the_lists() -> None:
    assert [c for c, _ in fuse([BM25, VEC], "weighted", 4, bm25_weight=1.0)][:3] == [1, 2, 3]
    assert [c for c, _ in fuse([BM25, VEC], "weighted", 4, bm25_weight=0.0)][:3] == [3, 4, 1]
    half = dict(fuse([BM25, VEC], "weighted", 4, bm25_weight=0.5))
    assert half[3] == pytest.approx(0.5) and half[1] == pytest.approx(0.5)
    assert fuse([BM25, VEC], "weighted", 4) == fuse([BM25, VEC], "weighted", 4, WEIGHT_BM25)
    with pytest.raises(ValueError, match=r"within \[0, 1\]"):
        fuse([BM25, VEC], "weighted", 4, bm25_weight=1.5)


def test_blend() -> None:
    ids = [1, 2, 3]
    first = {1: 10.0, 2: 5.0}  # 3 missing: it gets the lowest score
    second = {1: 0.2, 2: 0.6, 3: 0.4}
    got = blend(ids, first, second, 0.4)
    assert got == pytest.approx([0.4 * 1 + 0.6 * 0.0, 0.4 * 0 + 0.6 * 1, 0.4 * 0 + 0.6 * 0.5])
    assert blend([7], {7: 3.0}, {7: 1.0}, 0.5) == [1.0]  # one candidate: both at the top
    assert blend([1, 2], {}, {1: 0.0, 2: 1.0}, 0.5) == [0.0, 0.5]  # no BM25 hit at all


class Oracle(WordHashEmbedder):
    """A "stronger" embedder for the rerank: another hashing of the same words."""

    name = "oracle"
    dim = 64


DOCS = {
    "tides.txt": "The tide tables for the harbour list high water at dawn and at dusk.",
    "boats.txt": "Harbour boats leave at dawn; the fishermen check the tide before leaving.",
    "bread.txt": "Rye bread needs a long proof and a very hot oven for a dark crust.",
    "moon.txt": "The moon pulls the sea, and the tide follows it around the harbour.",
}


def test_rerank_blends_bm25_with_the_stronger_cosine() -> None:
    oracle = Oracle()
    with ContextManager(
        chunk_size=64, chunk_overlap=0, embedder=WordHashEmbedder(), rerank_embedder=oracle,
        fusion="weighted",
    ) as cm:  # fmt: skip
        for name, text in DOCS.items():
            cm.add_document(text, name)
        query = "harbour tide at dawn"
        hits = cm.search_context(query, top_k=4, mode="hybrid")
        # Expected: BM25 and the oracle's cosine over the same candidates, blended.
        bm = {h["chunk_id"]: h["score"] for h in cm.search_context(query, 10, mode="bm25")}
        ids = [h["chunk_id"] for h in hits]
        m = oracle.embed([query, *(h["text"] for h in hits)])
        cos = dict(zip(ids, (m[1:] @ m[0]).tolist(), strict=True))
        want = blend(ids, bm, cos, RERANK_BM25_WEIGHT)
        assert [h["score"] for h in hits] == pytest.approx([1.0 + w for w in want], abs=1e-6)
        assert [h["score"] for h in hits] == sorted((h["score"] for h in hits), reverse=True)
        assert hits[0]["document_name"] != "bread.txt"


def test_bm25_weight_checked_and_configured() -> None:
    with pytest.raises(ValueError, match="bm25_weight"):
        ContextManager(bm25_weight=-0.1)
    mq = load_config(["scenario=max_quality"])
    assert mq.retrieval.fusion.value == "weighted" and mq.retrieval.bm25_weight == 0.55
    assert load_config([]).retrieval.bm25_weight == WEIGHT_BM25
    cm = ContextManager.from_config(mq, storage_dir=None, embedder=WordHashEmbedder())
    assert cm.fusion == "weighted" and cm.bm25_weight == 0.55
    cm.close()


def test_max_quality_has_minilm_vectors_and_no_reranker(monkeypatch, tmp_path) -> None:
    """Rerank asks for an embedder stronger than the vectors'; above MiniLM there is none, so
    max_quality fuses BM25 with MiniLM and re-scores nothing."""
    embedders = pytest.importorskip("myai.embedders")
    made: list[str] = []

    def fake(name: str, data_dir, **opts):  # type: ignore[no-untyped-def]
        made.append(name)
        e = WordHashEmbedder()
        e.name = name  # type: ignore[misc]
        return e

    monkeypatch.setattr(embedders, "get_embedder", fake)
    cm = ContextManager.from_config(load_config(["scenario=max_quality"]), storage_dir=None)
    assert made == ["minilm"] and cm.rerank_embedder is None
    cm.close()
    made.clear()
    cm = ContextManager.from_config(
        load_config(["scenario=production", "retrieval.rerank=true"]), storage_dir=None
    )
    assert made == ["static", "minilm"] and cm.rerank_embedder is not None
    cm.close()
