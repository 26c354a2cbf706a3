"""Compression: the context-compression transforms and the CompressionMonitor.

Two kinds of compression, reported apart:

- **storage** (lossless): chunk text stored once (overlaps not repeated), duplicates skipped,
  zstd-compressed. ``storage_ratio = original bytes / compressed bytes on disk``.
- **context** (what stays searchable): ``conservative`` indexes every non-duplicate chunk as
  it is; ``adaptive`` also collapses lines repeated within a document (a log line seen before,
  timestamps and counters aside, is indexed once with its repeat count); ``aggressive`` also
  masks every number when comparing lines, and replaces old, unimportant documents by their
  summary and keywords (the full text stays on disk and can be restored).
  ``context_ratio = original tokens / tokens kept searchable``.

The quality score (0-100) rewards ratio and penalises lost retrievability::

    ratio_term   = min(1, log10(storage_ratio * context_ratio) / log10(20))
    quality      = 100 * retrievability * (0.7 + 0.3 * ratio_term)

where retrievability is the share of a sample of the document's own sentences (up to 8, spread
over the text) that still find the document after compression: in a store, its chunk is in the
top 5 of the store's search; standalone, every content term of the sentence is still in the
searchable text.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Sequence
from typing import Any

from myai import _core
from myai.summarize import split_sentences

__all__ = [
    "CompressionMonitor",
    "collapse_repeated_lines",
    "get_compression_monitor",
    "quality_score",
]


def collapse_repeated_lines(
    texts: Sequence[str], mask_numbers: bool = False
) -> tuple[list[str], int]:
    """The searchable form of a document's chunks: a line seen before in the document (same
    text once a leading timestamp is dropped, and numbers too when ``mask_numbers``) is left
    out, and its first occurrence is marked with how often it repeats. Returns the new texts
    and the number of lines left out (the work is done by the core)."""
    out, dropped = _core.collapse_repeated_lines(list(texts), mask_numbers)
    return [o if o is not None else t for o, t in zip(out, texts, strict=True)], dropped


def quality_score(retrievability: float, storage_ratio: float, context_ratio: float) -> float:
    """The documented quality score; see the module docstring."""
    product = max(storage_ratio, 1.0) * max(context_ratio, 1.0)
    if math.isinf(product):
        product = 20.0
    ratio_term = min(1.0, math.log10(product) / math.log10(20))
    return round(100.0 * max(0.0, min(1.0, retrievability)) * (0.7 + 0.3 * ratio_term), 1)


def sample_sentences(text: str, n: int = 8, min_words: int = 5) -> list[str]:
    """Up to ``n`` sentences of at least ``min_words`` words, spread evenly over the text."""
    sents = [s for s in split_sentences(text) if len(s.split()) >= min_words]
    if len(sents) <= n:
        return sents
    step = len(sents) / n
    return [sents[int(i * step)] for i in range(n)]


def term_retrievability(text: str, searchable: Sequence[str]) -> float:
    """Standalone retrievability: the share of sampled sentences whose content terms all
    remain in the searchable text."""
    samples = sample_sentences(text)
    if not samples:
        return 1.0
    index = _core.Bm25Index(stem=True, stopwords=True)
    vocab: set[str] = set()
    for s in searchable:
        vocab.update(index.analyze(s))
    ok = sum(1 for s in samples if set(index.analyze(s)) <= vocab)
    return ok / len(samples)


class CompressionMonitor:
    """Watches every add_document: per-document analyses, a history, and summaries by content
    type. Thread-safe; persisted with the context store (``to_state`` / ``from_state``)."""

    def __init__(self, history_limit: int = 1000) -> None:
        self._lock = threading.Lock()
        self._history: deque[dict[str, Any]] = deque(maxlen=history_limit)
        # Running totals survive the history's limit.
        self._totals: dict[str, dict[str, float]] = {}

    def analyze_compression(
        self,
        original_text: str,
        chunks: Sequence[str] | Sequence[tuple[int, int, int]],
        document_name: str = "",
        content_type: str = "text",
        metadata: dict[str, Any] | None = None,
        *,
        duplicates: Sequence[bool] | None = None,
        searchable_texts: Sequence[str] | None = None,
        searchable_tokens: int | None = None,
        retrievability: float | None = None,
        tokenizer: _core.Tokenizer | None = None,
        record: bool = True,
        core_stats: dict[str, Any] | None = None,
        stored_bytes: int | None = None,
    ) -> dict[str, Any]:
        """Analyses one document cut into ``chunks`` (chunk texts, or the core's
        ``(start, end, tokens)`` byte spans) and records it. The store passes what it kept
        searchable and its own retrievability; standalone, the chunks are what is kept."""
        spans = _as_spans(original_text, chunks, tokenizer)
        core = core_stats or _core.compression_stats(
            original_text, spans, list(duplicates or []), tokenizer
        )
        if stored_bytes is not None:
            core = {**core, "zstd_bytes": stored_bytes}
            core["storage_ratio"] = (
                core["original_bytes"] / stored_bytes if stored_bytes else float("inf")
            )
        if searchable_tokens is None and searchable_texts is not None:
            searchable_tokens = sum(_core.count_tokens_batch(list(searchable_texts), tokenizer))
        if searchable_tokens is None:
            searchable_tokens = core["stored_tokens"]
        context_ratio = (
            core["original_tokens"] / searchable_tokens if searchable_tokens else float("inf")
        )
        if retrievability is None:
            kept = searchable_texts
            if kept is None:
                dup = list(duplicates or [False] * len(spans))
                raw = original_text.encode()
                kept = [raw[s:e].decode() for (s, e, _), d in zip(spans, dup, strict=True) if not d]
            retrievability = term_retrievability(original_text, kept)
        storage_ratio = core["storage_ratio"]
        saved = core["original_bytes"] - core["zstd_bytes"]
        a: dict[str, Any] = {
            "document_name": document_name,
            "content_type": content_type,
            "metadata": dict(metadata or {}),
            "timestamp": time.time(),
            "original_bytes": core["original_bytes"],
            "original_tokens": core["original_tokens"],
            "stored_bytes": core["zstd_bytes"],
            "searchable_tokens": searchable_tokens,
            "chunk_count": core["chunks"],
            "duplicate_chunks": core["duplicate_chunks"],
            "overlap_tokens": core["overlap_tokens"],
            "dedup_saved_tokens": core["dedup_saved_tokens"],
            "storage_ratio": storage_ratio,
            "context_ratio": context_ratio,
            "compression_ratio": storage_ratio,
            "compression_ratio_formatted": _fmt(storage_ratio),
            "context_ratio_formatted": _fmt(context_ratio),
            "overhead_percent": round(core["overhead_percent"], 2),
            "efficiency": round(core["efficiency"], 2),
            "space_saved_bytes": saved,
            "space_saved_percent": round(100.0 * saved / core["original_bytes"], 2)
            if core["original_bytes"]
            else 0.0,
            "retrievability": retrievability,
            "quality_score": quality_score(retrievability, storage_ratio, context_ratio),
        }
        if record:
            self.record(a)
        return a

    def record(self, analysis: dict[str, Any]) -> None:
        with self._lock:
            self._history.append(analysis)
            t = self._totals.setdefault(
                analysis["content_type"],
                {
                    "documents": 0,
                    "original_bytes": 0,
                    "stored_bytes": 0,
                    "original_tokens": 0,
                    "searchable_tokens": 0,
                    "quality_sum": 0.0,
                },
            )
            t["documents"] += 1
            for k in ("original_bytes", "stored_bytes", "original_tokens", "searchable_tokens"):
                t[k] += analysis[k]
            t["quality_sum"] += analysis["quality_score"]

    @property
    def history(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self._history)

    def get_stats(self) -> dict[str, Any]:
        """Average, best and worst ratios over the history, and totals by content type."""
        with self._lock:
            hist = list(self._history)
            totals = {k: dict(v) for k, v in self._totals.items()}
        by_type = {}
        for ct, t in sorted(totals.items()):
            by_type[ct] = {
                "documents": int(t["documents"]),
                "original_bytes": int(t["original_bytes"]),
                "stored_bytes": int(t["stored_bytes"]),
                "storage_ratio": _safe_ratio(t["original_bytes"], t["stored_bytes"]),
                "context_ratio": _safe_ratio(t["original_tokens"], t["searchable_tokens"]),
                "average_quality": round(t["quality_sum"] / t["documents"], 1),
            }
        all_t = {
            k: sum(t[k] for t in totals.values())
            for k in (
                "documents",
                "original_bytes",
                "stored_bytes",
                "original_tokens",
                "searchable_tokens",
            )
        }
        ratios = [h["storage_ratio"] for h in hist if math.isfinite(h["storage_ratio"])]
        return {
            "documents_analyzed": int(all_t["documents"]),
            "storage_ratio": _safe_ratio(all_t["original_bytes"], all_t["stored_bytes"]),
            "context_ratio": _safe_ratio(all_t["original_tokens"], all_t["searchable_tokens"]),
            "average_ratio": round(sum(ratios) / len(ratios), 3) if ratios else 0.0,
            "best_ratio": round(max(ratios), 3) if ratios else 0.0,
            "worst_ratio": round(min(ratios), 3) if ratios else 0.0,
            "average_quality": round(sum(h["quality_score"] for h in hist) / len(hist), 1)
            if hist
            else 0.0,
            "by_content_type": by_type,
        }

    def get_compression_report(self) -> str:
        """A readable table of the ratios by content type."""
        s = self.get_stats()
        rows = [
            f"{'content type':<14}{'docs':>6}{'original':>12}{'on disk':>12}{'storage':>9}"
            f"{'context':>9}{'quality':>9}"
        ]
        for ct, t in s["by_content_type"].items():
            rows.append(
                f"{ct:<14}{t['documents']:>6}{_size(t['original_bytes']):>12}"
                f"{_size(t['stored_bytes']):>12}{_fmt(t['storage_ratio']):>9}"
                f"{_fmt(t['context_ratio']):>9}{t['average_quality']:>9.1f}"
            )
        rows.append(
            f"{'all':<14}{s['documents_analyzed']:>6}{'':>12}{'':>12}{_fmt(s['storage_ratio']):>9}"
            f"{_fmt(s['context_ratio']):>9}{s['average_quality']:>9.1f}"
        )
        return "\n".join(rows)

    def to_state(self) -> dict[str, Any]:
        with self._lock:
            return {"history": list(self._history), "totals": self._totals}

    def load_state(self, state: dict[str, Any]) -> None:
        with self._lock:
            self._history.clear()
            self._history.extend(state.get("history", []))
            self._totals = {k: dict(v) for k, v in state.get("totals", {}).items()}


def _as_spans(
    text: str, chunks: Sequence[Any], tokenizer: _core.Tokenizer | None
) -> list[tuple[int, int, int]]:
    if not chunks:
        return []
    if isinstance(chunks[0], tuple):
        return [(int(c[0]), int(c[1]), int(c[2])) for c in chunks]
    # Chunk texts: locate each in order, convert character to byte offsets incrementally.
    spans = []
    pos_char = 0
    pos_byte = 0
    counts = _core.count_tokens_batch([str(c) for c in chunks], tokenizer)
    for c, n in zip(chunks, counts, strict=True):
        i = text.find(c, pos_char)
        if i < 0:
            raise ValueError(f"chunk {c[:40]!r} is not part of the original text (in order)")
        start_byte = pos_byte + len(text[pos_char:i].encode())
        spans.append((start_byte, start_byte + len(c.encode()), n))
        pos_char, pos_byte = i, start_byte
    return spans


def _safe_ratio(a: float, b: float) -> float:
    return round(a / b, 3) if b else 0.0


def _fmt(r: float) -> str:
    return f"{r:.1f}:1" if math.isfinite(r) else "inf:1"


def _size(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GB"


_shared: CompressionMonitor | None = None
_shared_lock = threading.Lock()


def get_compression_monitor() -> CompressionMonitor:
    """The process-wide monitor (the seed documents' accessor)."""
    global _shared
    with _shared_lock:
        if _shared is None:
            _shared = CompressionMonitor()
        return _shared
