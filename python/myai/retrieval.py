"""Hybrid retrieval: fusing BM25 and vector rankings, and measuring retrieval quality.

Fusion (``retrieval.fusion``):

- ``rrf`` (default): reciprocal rank fusion, ``score = Σ 1 / (RRF_K + rank)`` over the lists
  a chunk appears in (rank from 1); robust to the two scores' different scales.
- ``weighted``: each list's scores min-max normalised to [0, 1], then
  ``w * bm25 + (1 - w) * vector`` with ``w`` = ``retrieval.bm25_weight`` (``WEIGHT_BM25``
  for the static embedder, 0.55 for MiniLM in max_quality).

Rerank (``retrieval.rerank``, with an embedder stronger than the vectors'): the fused top
``RERANK_DEPTH`` are re-scored by ``blend``: BM25 and the stronger embedder's cosine, each
min-max normalised over those candidates, BM25 weighing ``RERANK_BM25_WEIGHT``.

The importance prior of the context store multiplies the fused score afterwards.

Quality (``python -m myai eval retrieval PATH``): a BEIR-layout folder (corpus.jsonl,
queries.jsonl, qrels/test.tsv) is ingested into a fresh in-memory store, one document per
corpus entry, and each test query is answered at document level (a document ranks where its
best chunk ranks): nDCG@10, recall@10, recall@100, MRR@10, ingest and query times.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "RERANK_BM25_WEIGHT",
    "RERANK_DEPTH",
    "RRF_K",
    "WEIGHT_BM25",
    "WEIGHT_BM25_MINILM",
    "BeirSet",
    "blend",
    "evaluate",
    "fuse",
    "labelled_set_store",
    "load_beir",
    "metrics",
]

RRF_K = 60
# Measured on SciFact with the static embedder: 0.5 → 0.672, 0.7 → 0.688, 0.8 → 0.696,
# 0.9 → 0.695 nDCG@10 (BM25 alone 0.690, RRF 0.573).
WEIGHT_BM25 = 0.8
# With MiniLM vectors (max_quality), chosen on SciFact's train queries (809; the test queries
# only reported): 0.45 → 0.727, 0.5 → 0.732, 0.55 → 0.733, 0.6 → 0.732, 0.65 → 0.730,
# 0.8 → 0.719 nDCG@10 (RRF 0.718; BM25 alone 0.697, MiniLM alone 0.659).
WEIGHT_BM25_MINILM = 0.55
# Rerank: the fused top 30 of the static embedder's hybrid (train nDCG@10 0.698) re-scored by
# MiniLM's cosine alone 0.681; blended with BM25 at 0.3 → 0.724, 0.4 → 0.732, 0.5 → 0.728,
# 0.6 → 0.725 (blended with the fused score instead: at best 0.730).
RERANK_DEPTH = 30
RERANK_BM25_WEIGHT = 0.4


def fuse(
    lists: Sequence[Sequence[tuple[int, float]]],
    method: str = "rrf",
    k: int = 10,
    bm25_weight: float = WEIGHT_BM25,
) -> list[tuple[int, float]]:
    """Fuses ranked ``(id, score)`` lists into one of length ``k``, best first. ``weighted``
    with two lists gives the first (BM25's) ``bm25_weight`` and the second the rest."""
    if method not in ("rrf", "weighted"):
        raise ValueError(f"fusion must be rrf or weighted, got {method!r}")
    _check_weight(bm25_weight)
    total: dict[int, float] = {}
    if method == "rrf":
        for ranked in lists:
            for rank, (cid, _) in enumerate(ranked, start=1):
                total[cid] = total.get(cid, 0.0) + 1.0 / (RRF_K + rank)
    else:
        weights = [bm25_weight, 1.0 - bm25_weight] if len(lists) == 2 else [1.0] * len(lists)
        for w, ranked in zip(weights, lists, strict=True):
            if not ranked:
                continue
            scores = [s for _, s in ranked]
            lo, hi = min(scores), max(scores)
            span = hi - lo
            for cid, s in ranked:
                norm = (s - lo) / span if span > 0 else 1.0
                total[cid] = total.get(cid, 0.0) + w * norm
    return sorted(total.items(), key=lambda x: (-x[1], x[0]))[:k]


def blend(
    ids: Sequence[int], first: dict[int, float], second: dict[int, float], weight: float
) -> list[float]:
    """``weight * a + (1 - weight) * b`` for each id, where ``a`` and ``b`` are its scores in
    ``first`` and ``second`` min-max normalised over ``ids`` (an id missing from a dict gets
    that dict's lowest score among ``ids``; all equal: 1)."""
    _check_weight(weight)

    def scaled(d: dict[int, float]) -> list[float]:
        known = [d[i] for i in ids if i in d]
        if not known:
            return [0.0] * len(ids)
        lo, hi = min(known), max(known)
        span = hi - lo
        return [(d.get(i, lo) - lo) / span if span > 0 else 1.0 for i in ids]

    a, b = scaled(first), scaled(second)
    return [weight * x + (1.0 - weight) * y for x, y in zip(a, b, strict=True)]


def _check_weight(w: float) -> None:
    if not 0.0 <= w <= 1.0:
        raise ValueError(f"a fusion weight must be within [0, 1], got {w}")


@dataclass
class BeirSet:
    corpus: dict[str, tuple[str, str]]  # id -> (title, text)
    queries: dict[str, str]
    qrels: dict[str, dict[str, int]]  # query id -> {doc id: relevance}
    name: str = ""


def load_beir(path: str | Path, split: str = "test") -> BeirSet:
    """Reads a BEIR-layout folder; a malformed line is a ValueError naming file and line."""
    root = Path(path)
    for need in ("corpus.jsonl", "queries.jsonl", f"qrels/{split}.tsv"):
        if not (root / need).is_file():
            raise FileNotFoundError(f"{root / need} is missing (expected a BEIR-layout folder)")
    corpus: dict[str, tuple[str, str]] = {}
    queries: dict[str, str] = {}
    for name, sink in (("corpus.jsonl", corpus), ("queries.jsonl", queries)):
        with open(root / name, encoding="utf-8") as f:
            for n, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    rec = json.loads(line)
                    if name == "corpus.jsonl":
                        sink[str(rec["_id"])] = (rec.get("title") or "", rec.get("text") or "")  # type: ignore[assignment]
                    else:
                        sink[str(rec["_id"])] = rec["text"]  # type: ignore[assignment]
                except (json.JSONDecodeError, KeyError, TypeError) as e:
                    raise ValueError(f"{root / name}:{n}: not a BEIR record ({e})") from None
    qrels: dict[str, dict[str, int]] = {}
    with open(root / "qrels" / f"{split}.tsv", encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            parts = line.rstrip("\n").split("\t")
            if n == 1 and parts[0] == "query-id":
                continue
            if len(parts) < 3:
                continue
            try:
                qrels.setdefault(parts[0], {})[parts[1]] = int(parts[2])
            except ValueError:
                raise ValueError(
                    f"{root}/qrels/{split}.tsv:{n}: bad relevance {parts[2]!r}"
                ) from None
    return BeirSet(corpus, queries, qrels, name=root.name)


def metrics(ranked: Sequence[str], relevant: dict[str, int]) -> dict[str, float]:
    """nDCG@10, recall@10, recall@100 and MRR@10 of one ranked list of document ids."""
    gains = [relevant.get(d, 0) for d in ranked]
    dcg = sum(g / math.log2(i + 2) for i, g in enumerate(gains[:10]) if g > 0)
    ideal = sorted(relevant.values(), reverse=True)[:10]
    idcg = sum(g / math.log2(i + 2) for i, g in enumerate(ideal) if g > 0)
    n_rel = sum(1 for v in relevant.values() if v > 0)
    rr = next((1.0 / (i + 1) for i, g in enumerate(gains[:10]) if g > 0), 0.0)
    return {
        "ndcg@10": dcg / idcg if idcg else 0.0,
        "recall@10": sum(1 for g in gains[:10] if g > 0) / n_rel if n_rel else 0.0,
        "recall@100": sum(1 for g in gains[:100] if g > 0) / n_rel if n_rel else 0.0,
        "mrr@10": rr,
    }


@dataclass
class EvalResult:
    mode: str
    scores: dict[str, float] = field(default_factory=dict)
    ingest_s: float = 0.0
    query_ms_p50: float = 0.0
    queries: int = 0


def labelled_set_store(cfg: Any) -> Any:
    """A fresh in-memory store configured like ``cfg`` for scoring a labelled set: the whole set
    is held (capacity is not what is measured) and every passage indexed (no dedup)."""
    from myai.context import ContextManager

    return ContextManager.from_config(cfg, storage_dir=None, dedup=False, max_tokens=1 << 40)


def evaluate(
    data: BeirSet,
    make_store: Callable[[], Any],
    modes: Sequence[str] = ("bm25",),
    max_queries: int | None = None,
) -> list[EvalResult]:
    """Ingests ``data`` into ``make_store()`` and scores each search mode on its test queries."""
    t0 = time.perf_counter()
    cm = make_store()
    for doc_id, (title, text) in data.corpus.items():
        body = f"{title}\n\n{text}" if title else text
        if body.strip():
            cm.add_document(body, document_name=doc_id, content_type="text")
    ingest_s = time.perf_counter() - t0
    qids = [q for q in data.qrels if q in data.queries]
    if max_queries:
        qids = qids[:max_queries]
    results = []
    for mode in modes:
        sums: dict[str, float] = {}
        times = []
        for q in qids:
            t = time.perf_counter()
            hits = cm.search_context(data.queries[q], top_k=100, mode=mode)
            times.append(time.perf_counter() - t)
            ranked: list[str] = []
            seen: set[str] = set()
            for h in hits:
                name = h["document_name"]
                if name not in seen:
                    seen.add(name)
                    ranked.append(name)
            for k, v in metrics(ranked, data.qrels[q]).items():
                sums[k] = sums.get(k, 0.0) + v
        times.sort()
        results.append(
            EvalResult(
                mode=mode,
                scores={k: v / len(qids) for k, v in sums.items()} if qids else {},
                ingest_s=ingest_s,
                query_ms_p50=1000 * times[len(times) // 2] if times else 0.0,
                queries=len(qids),
            )
        )
    return results
