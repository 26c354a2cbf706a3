"""Vectors, fusion and retrieval quality: the vector index, hybrid search in the store, BEIR
evaluation on a labelled set the test generates."""

from __future__ import annotations

import hashlib
import logging
import time
from pathlib import Path

import numpy as np
import pytest
from filemakers import labelled_set

from myai import ContextManager, EmbedderMismatchError
from myai.corpus import generated_corpus
from myai.retrieval import evaluate, fuse, load_beir, metrics
from myai.vectors import VectorIndex


class WordHashEmbedder:
    """A small real embedder for the tests: hashed bag of words with character trigrams, so
    related word forms land near each other. (The static and MiniLM embedders have their own
    tests; these exercise the vector plumbing.)"""

    name = "wordhash"
    dim = 128

    def embed(self, texts: list[str]) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for i, t in enumerate(texts):
            for w in t.lower().split():
                w = w.strip(".,;:!?\"'()")
                for g in {w[j : j + 3] for j in range(max(1, len(w) - 2))}:
                    h = int(hashlib.blake2b(g.encode(), digest_size=4).hexdigest(), 16)
                    out[i, h % self.dim] += 1.0
        n = np.linalg.norm(out, axis=1, keepdims=True)
        return out / np.where(n == 0, 1, n)


def unit(n: int, dim: int, seed: int) -> np.ndarray:
    v = np.random.default_rng(seed).standard_normal((n, dim)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


@pytest.mark.parametrize("dtype", ["f32", "f16", "i8"])
def test_vector_index_recall_and_filters(dtype: str, tmp_path: Path) -> None:
    vecs = unit(2000, 64, 1)
    idx = VectorIndex(64, dtype)
    idx.add(range(2000), vecs)
    queries = unit(50, 64, 2)
    exact = np.argsort(-(queries @ vecs.T), axis=1)[:, :10]
    recall = np.mean(
        [len({c for c, _ in idx.search(q, 10)} & set(exact[i])) / 10 for i, q in enumerate(queries)]
    )
    # The graph is built by several threads, so recall varies a little: 0.958-0.978 in 45 builds.
    assert recall > (0.93 if dtype != "i8" else 0.85)
    allowed = set(range(0, 2000, 7))
    hits = idx.search(queries[0], 10, allowed)
    assert len(hits) == 10 and all(c in allowed for c, _ in hits)
    idx.remove([hits[0][0]])
    assert hits[0][0] not in idx
    idx.save(tmp_path / "v.usearch")
    for view in (False, True):
        again = VectorIndex.load(tmp_path / "v.usearch", 64, dtype, view=view)
        assert len(again) == 1999
        assert again.search(queries[1], 5) == idx.search(queries[1], 5)
    again.add([5000], unit(1, 64, 3))  # a view becomes writable on first change
    assert 5000 in again


def test_vector_index_bad_input(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="dtype"):
        VectorIndex(8, "f64")
    idx = VectorIndex(8)
    with pytest.raises(ValueError, match="shape"):
        idx.add([1, 2], unit(3, 8, 0))
    (tmp_path / "bad.usearch").write_bytes(b"not an index")
    with pytest.raises(Exception, match=r"bad\.usearch"):
        VectorIndex.load(tmp_path / "bad.usearch", 8, "f32")


def test_fusion() -> None:
    a = [(1, 9.0), (2, 5.0), (3, 1.0)]
    b = [(3, 0.9), (1, 0.8), (4, 0.1)]
    rrf = fuse([a, b], "rrf", 4)
    assert rrf[0][0] == 1 and {c for c, _ in rrf} == {1, 2, 3, 4}
    w = fuse([a, b], "weighted", 2)
    assert w[0][0] == 1
    with pytest.raises(ValueError):
        fuse([a], "borda")


def test_metrics() -> None:
    m = metrics(["d1", "x", "d2"], {"d1": 1, "d2": 1})
    assert m["recall@10"] == 1.0 and m["mrr@10"] == 1.0
    assert 0.9 < m["ndcg@10"] < 1.0
    assert metrics(["x"], {"d1": 1})["ndcg@10"] == 0.0


def test_hybrid_search_in_store_and_sync(tmp_path: Path, caplog) -> None:
    path = tmp_path / "s"
    emb = WordHashEmbedder()
    with ContextManager(storage_dir=path, embedder=emb, chunk_size=64, chunk_overlap=0) as cm:
        a = cm.add_document("The lighthouse keeper logs every ship at dawn.", "light.txt")
        cm.add_document("Tomatoes need six hours of sun and warm soil.", "garden.txt")
        # "lighthouses" shares trigrams with "lighthouse" though BM25 stems them apart or not.
        assert (
            cm.search_context("lighthouses keepers", mode="vector")[0]["document_name"]
            == "light.txt"
        )
        assert cm.search_context("tomatoes sun")[0]["document_name"] == "garden.txt"  # hybrid
        assert len(cm._vectors) == 2
        cm.remove_document(a["document_id"])
        assert len(cm._vectors) == 1
    with ContextManager.open(path, embedder=emb) as cm:
        assert len(cm._vectors) == 1
        assert cm.search_context("soil", mode="vector")[0]["document_name"] == "garden.txt"
    # A corrupt vector file is rebuilt from the stored chunks, with a warning.
    (path / "vectors.usearch").write_bytes(b"garbage")
    with (
        caplog.at_level(logging.WARNING, logger="myai.context"),
        ContextManager.open(path, embedder=emb) as cm,
    ):
        assert cm.search_context("soil", mode="vector")[0]["document_name"] == "garden.txt"
    assert any("re-embedding" in m for m in caplog.messages)


def test_embedder_mismatch_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "s"
    with ContextManager(storage_dir=path, embedder=WordHashEmbedder()) as cm:
        cm.add_document("alpha beta gamma", "a.txt")

    class Other(WordHashEmbedder):
        name = "other"

    with pytest.raises(EmbedderMismatchError, match=r"wordhash:128"):
        ContextManager.open(path, embedder=Other())
    with ContextManager.open(path, embedder=Other(), reembed=True) as cm:
        assert len(cm._vectors) == 1
    with ContextManager.open(path, embedder=Other()) as cm:  # the store is now Other's
        assert cm.search_context("gamma", mode="vector")


def test_eviction_keeps_vectors_in_sync() -> None:
    texts = [generated_corpus(60, seed=i) for i in range(5)]
    with ContextManager(max_tokens=10**6, chunk_size=64, chunk_overlap=0) as probe:
        cap = sum(probe.add_document(t, f"p{i}")["tokens_added"] for i, t in enumerate(texts[:3]))
    with ContextManager(max_tokens=cap + 1, chunk_size=64, chunk_overlap=0,
                        embedder=WordHashEmbedder()) as cm:  # fmt: skip
        for i, t in enumerate(texts):
            cm.add_document(t, f"d{i}")
            time.sleep(0.01)
        live = {c for c, ch in cm._chunks.items() if ch.indexed}
        assert len(cm._vectors) == len(live)
        assert all(c in cm._vectors for c in live)


def test_no_vectors_without_embedder() -> None:
    with ContextManager() as cm:
        cm.add_document("alpha", "a.txt")
        with pytest.raises(ValueError, match="embedder"):
            cm.search_context("alpha", mode="hybrid")


def test_beir_evaluation_on_a_generated_set(tmp_path: Path) -> None:
    data = load_beir(labelled_set(tmp_path / "set"))
    assert len(data.corpus) == 300 and len(data.qrels) == 60
    res = evaluate(
        data,
        lambda: ContextManager(
            max_tokens=10**7,
            chunk_size=256,
            chunk_overlap=16,
            dedup=False,
            embedder=WordHashEmbedder(),
        ),
        modes=("bm25", "vector", "hybrid"),
    )
    by = {r.mode: r.scores for r in res}
    assert by["bm25"]["ndcg@10"] > 0.8
    assert by["hybrid"]["recall@100"] >= by["bm25"]["recall@100"] - 0.05
    assert all(0 <= v <= 1 for s in by.values() for v in s.values())


def test_load_beir_errors(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"corpus\.jsonl"):
        load_beir(tmp_path)
    root = labelled_set(tmp_path / "set", 5, 2)
    (root / "corpus.jsonl").write_text('{"_id": "x"\n')
    with pytest.raises(ValueError, match=r"corpus.jsonl:1"):
        load_beir(root)
