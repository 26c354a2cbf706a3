"""Sentence splitting and ranking: the Assistant sends a model the sentences of the retrieved
passages that bear on the question rather than whole chunks, and the extractive backend quotes
them. Ranking is BM25 over the candidate sentences (each sentence a document), which needs no
model and takes about a millisecond for a few thousand tokens of passages.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

from myai import _core

__all__ = ["Sentence", "content_words", "rank_sentences", "split_sentences"]

# A sentence ends at . ! ? (and closing quotes/brackets) followed by space, or at a blank line
# or a line that looks like a heading / list item.
_END = re.compile(
    r"(?<=[.!?])[\"'”’)\]]*\s+(?=[\"'“‘(\[]?[A-Z0-9])|\n\s*\n|\n(?=\s*(?:[-*•#]|\d+[.)]\s))"
)
_ABBREV = re.compile(r"\b(?:Mr|Mrs|Ms|Dr|St|Prof|Sr|Jr|vs|etc|e\.g|i\.e|No|Fig|al)\.$", re.I)

# The BM25 index's own analyzer (Unicode words, lowercased, stopwords dropped, stemmed), so
# sentences are matched the way chunks were retrieved.
_ANALYZER = _core.Bm25Index(stem=True, stopwords=True)


def content_words(text: str) -> list[str]:
    """The terms of ``text`` as the BM25 index sees them (stopwords dropped, stemmed)."""
    return _ANALYZER.analyze(text)


@dataclass
class Sentence:
    passage: int  # index of the passage it came from
    start: int  # character offsets in that passage
    end: int
    text: str
    score: float = 0.0
    terms: list[str] = field(default_factory=list)  # its content words, as analysed


def split_sentences(text: str, max_chars: int = 600) -> list[tuple[int, int]]:
    """(start, end) character spans of the sentences of ``text``, whitespace trimmed. A
    sentence longer than ``max_chars`` is cut at whitespace so no span is unbounded."""
    spans: list[tuple[int, int]] = []
    pos = 0
    for m in _END.finditer(text):
        if _ABBREV.search(text, max(0, m.start() - 6), m.start()):
            continue
        spans.extend(_trimmed(text, pos, m.start(), max_chars))
        pos = m.end()
    spans.extend(_trimmed(text, pos, len(text), max_chars))
    return spans


def _trimmed(text: str, a: int, b: int, max_chars: int) -> list[tuple[int, int]]:
    while a < b and text[a].isspace():
        a += 1
    while b > a and text[b - 1].isspace():
        b -= 1
    out: list[tuple[int, int]] = []
    while b - a > max_chars:
        cut = text.rfind(" ", a + max_chars // 2, a + max_chars)
        cut = cut if cut > a else a + max_chars
        out.append((a, cut))
        a = cut
        while a < b and text[a].isspace():
            a += 1
    if b > a:
        out.append((a, b))
    return out


def rank_sentences(
    question: str,
    passages: Sequence[str],
    passage_weights: Sequence[float] | None = None,
    k1: float = 1.2,
    b: float = 0.75,
) -> list[Sentence]:
    """Every sentence of ``passages``, best first: BM25 of the question's content words over the
    sentences, times a small prior for the passage's retrieval rank (``passage_weights``)."""
    q = set(content_words(question))
    sents: list[Sentence] = []
    toks: list[list[str]] = []
    for i, p in enumerate(passages):
        for a, e in split_sentences(p):
            words = content_words(p[a:e])
            sents.append(Sentence(i, a, e, p[a:e], terms=words))
            toks.append(words)
    if not sents:
        return []
    n = len(sents)
    df: Counter[str] = Counter()
    for t in toks:
        df.update(set(t) & q)
    avgdl = sum(len(t) for t in toks) / n or 1.0
    idf = {w: math.log(1.0 + (n - c + 0.5) / (c + 0.5)) for w, c in df.items()}
    for s, t in zip(sents, toks, strict=True):
        if not idf:
            break
        tf = Counter(w for w in t if w in idf)
        norm = k1 * (1.0 - b + b * len(t) / avgdl)
        s.score = sum(idf[w] * f * (k1 + 1.0) / (f + norm) for w, f in tf.items())
        if passage_weights is not None:
            s.score *= passage_weights[s.passage]
    order = sorted(range(n), key=lambda i: (-sents[i].score, sents[i].passage, sents[i].start))
    return [sents[i] for i in order]
