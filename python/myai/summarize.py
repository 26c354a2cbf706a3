"""Extractive summaries: key sentences chosen by centrality, and keywords.

Centrality is the LexRank idea in its cheapest form: a sentence is central when its words are
the document's frequent words. Each sentence is scored by the mean TF-IDF weight (over the
document's sentences) of its distinct content words, damped for very short sentences; the best
sentences are returned in document order, within a token budget counted by the caller's
counter, never one token over.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Callable, Sequence

from myai import _core

__all__ = ["key_sentences", "keywords", "ranked_sentences", "split_sentences"]

# A sentence ends at . ! ? (then closing quotes or brackets) before whitespace, or at a newline;
# "42.7" and "e.g.x" do not end one.
_SENT_END = re.compile(r"(?<=[.!?])\s+|(?<=[.!?][\"')\]])\s+|\n+")
# Words as the core's BM25 analyzer sees them (Unicode-aware, lowercased, English stopwords
# removed), unstemmed so keywords stay readable.
_ANALYZER = _core.Bm25Index(stem=False, stopwords=True)


def split_sentences(text: str) -> list[str]:
    """Sentences (and lines without end punctuation), stripped, empty ones dropped."""
    return [s.strip() for s in _SENT_END.split(text) if s and s.strip()]


def _words(s: str) -> list[str]:
    return [w for w in _ANALYZER.analyze(s) if len(w) > 1 and not w.isdigit()]


def _scores(sentences: Sequence[str]) -> list[float]:
    bags = [set(_words(s)) for s in sentences]
    n = len(bags)
    df: Counter[str] = Counter()
    tf: Counter[str] = Counter()
    for b in bags:
        df.update(b)
    for s in sentences:
        tf.update(_words(s))
    weight = {w: tf[w] * math.log(1 + n / df[w]) for w in df}
    out = []
    for b in bags:
        if not b:
            out.append(0.0)
            continue
        mean = sum(weight[w] for w in b) / len(b)
        out.append(mean * min(1.0, len(b) / 6))
    return out


def ranked_sentences(text: str) -> list[tuple[int, str]]:
    """``(position, sentence)`` pairs, most central first."""
    sentences = split_sentences(text)
    scores = _scores(sentences) if sentences else []
    order = sorted(range(len(sentences)), key=lambda i: (-scores[i], i))
    return [(i, sentences[i]) for i in order]


def key_sentences(
    text: str, budget: int, count: Callable[[str], int], max_sentences: int | None = None
) -> list[str]:
    """The most central sentences of ``text`` in document order, whose token counts (by
    ``count``, plus one separator token each) add up to at most ``budget``."""
    sentences = split_sentences(text)
    if not sentences or budget <= 0:
        return []
    scores = _scores(sentences)
    order = sorted(range(len(sentences)), key=lambda i: (-scores[i], i))
    chosen: list[int] = []
    used = 0
    for i in order:
        if max_sentences is not None and len(chosen) >= max_sentences:
            break
        cost = count(sentences[i]) + 1
        if used + cost <= budget:
            chosen.append(i)
            used += cost
    return [sentences[i] for i in sorted(chosen)]


def keywords(text: str, n: int = 12) -> list[str]:
    """The ``n`` most characteristic content words (frequency damped by spread over sentences)."""
    sentences = split_sentences(text) or [text]
    tf: Counter[str] = Counter()
    df: Counter[str] = Counter()
    for s in sentences:
        ws = _words(s)
        tf.update(ws)
        df.update(set(ws))
    total = len(sentences)
    scored = sorted(tf, key=lambda w: (-tf[w] * math.log(1 + total / df[w]), w))
    return scored[:n]
