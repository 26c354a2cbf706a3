"""Deterministic corpora for tests, benchmarks and `myai bench`.

Real English comes from the Gutenberg novels of ``../shared/data/haystack`` when that folder
exists (header and footer stripped); otherwise a generated corpus of pseudo-English with a
Zipf word distribution, sentences and paragraphs stands in, identical on every run.
"""

from __future__ import annotations

import itertools
import os
import random
import re
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

__all__ = [
    "CHARS_PER_TOKEN",
    "english_corpus",
    "generated_corpus",
    "generated_labelled_set",
    "gutenberg_body",
    "gutenberg_dir",
    "shared_data_dir",
]

# Characters per SmolLM2 token, to size corpora before they are cut exactly: Gutenberg prose
# runs at about 3.9; the generated stand-in's made-up words at about 2.7.
CHARS_PER_TOKEN = 3.9
GENERATED_CHARS_PER_TOKEN = 2.7

_START = re.compile(r"^\*\*\* ?START OF (THE|THIS) PROJECT GUTENBERG.*$", re.M)
_END = re.compile(r"^\*\*\* ?END OF (THE|THIS) PROJECT GUTENBERG.*$", re.M)


def shared_data_dir() -> Path | None:
    """The public test data folder (``$MYAI_SHARED_DATA`` or ``../shared/data``), if present."""
    env = os.environ.get("MYAI_SHARED_DATA")
    candidates = [Path(env)] if env else []
    here = Path(__file__).resolve()
    candidates += [p / "shared" / "data" for p in here.parents] + [
        Path.cwd().parent / "shared/data"
    ]
    for c in candidates:
        if (c / "README.md").is_file():
            return c
    return None


def gutenberg_dir() -> Path | None:
    d = shared_data_dir()
    g = d / "haystack" / "gutenberg_novels" if d else None
    return g if g and g.is_dir() else None


def gutenberg_body(path: Path) -> str:
    """A novel's text between the Gutenberg START and END markers, BOM and CRLF removed."""
    text = path.read_text(encoding="utf-8-sig").replace("\r\n", "\n")
    start = _START.search(text)
    end = _END.search(text)
    lo = start.end() if start else 0
    hi = end.start() if end else len(text)
    return text[lo:hi].strip() + "\n"


def _gutenberg_texts() -> Iterator[str]:
    g = gutenberg_dir()
    if g is None:
        return
    for p in sorted(g.glob("*.txt")):
        yield gutenberg_body(p)


_SYLLABLES = [
    "ka",
    "ri",
    "to",
    "ne",
    "sa",
    "lo",
    "mi",
    "du",
    "ve",
    "po",
    "an",
    "el",
    "or",
    "is",
    "un",
    "ber",
    "con",
    "dal",
    "fen",
    "gar",
    "hol",
    "lin",
    "mar",
    "nor",
    "pel",
    "ran",
    "sel",
    "tur",
]
_FUNCTION = ["the", "of", "and", "to", "a", "in", "that", "it", "was", "he", "she", "with"]


@cache
def _vocab() -> tuple[list[str], list[float]]:
    vocab = []
    for i in range(20_000):
        r = random.Random(i * 7919 + 7)
        vocab.append("".join(r.choice(_SYLLABLES) for _ in range(r.randint(1, 4))))
    return vocab, list(itertools.accumulate(1.0 / (i + 1) for i in range(len(vocab))))


def generated_corpus(n_tokens: int, seed: int = 7) -> str:
    """Pseudo-English of about ``n_tokens`` tokens: Zipf-distributed words in sentences (one
    vocabulary for every seed; the seed picks the text)."""
    rng = random.Random(seed)
    vocab, cum = _vocab()
    target_chars = int(n_tokens * GENERATED_CHARS_PER_TOKEN)
    out: list[str] = []
    size = 0
    while size < target_chars:
        para = []
        for _ in range(rng.randint(2, 8)):
            n = rng.randint(6, 24)
            words = rng.choices(vocab, cum_weights=cum, k=n)
            for j in range(n):
                if rng.random() < 0.35:
                    words[j] = rng.choice(_FUNCTION)
            s = " ".join(words)
            if rng.random() < 0.2:
                s += f", {rng.randint(1, 1999)}"
            para.append(s[0].upper() + s[1:] + rng.choice([".", ".", ".", "?", "!"]))
        p = " ".join(para)
        out.append(p)
        size += len(p) + 2
    return "\n\n".join(out) + "\n"


def cut_to_tokens(text: str, n_tokens: int) -> str:
    """The longest run of whole paragraphs from the start of ``text`` with at most
    ``n_tokens`` tokens, as the default model's tokenizer counts them."""
    from myai.tokens import default_tokenizer

    tok = default_tokenizer()
    paras = text.split("\n\n")
    sep = tok.count_tokens("\n\n")
    total = 0
    keep = 0
    for c in tok.count_tokens_batch(paras):
        if total + c + sep > n_tokens:
            break
        total += c + sep
        keep += 1
    out = "\n\n".join(paras[:keep]) + "\n"
    while keep > 1 and tok.count_tokens(out) > n_tokens:
        keep -= 1
        out = "\n\n".join(paras[:keep]) + "\n"
    return out


def english_corpus(n_tokens: int, *, real: bool | None = None) -> tuple[str, str]:
    """At most ``n_tokens`` tokens (and very nearly that many) of English, cut at a paragraph
    boundary, and its source name ("gutenberg" or "generated").

    Real text when the shared data is present (``real=None``), else generated.
    """
    target_chars = int(n_tokens * CHARS_PER_TOKEN * 1.1)
    if real is not False and gutenberg_dir() is not None:
        parts: list[str] = []
        size = 0
        while size < target_chars:
            before = size
            for body in _gutenberg_texts():
                parts.append(body)
                size += len(body)
                if size >= target_chars:
                    break
            if size == before:
                break
        return cut_to_tokens("".join(parts), n_tokens), "gutenberg"
    if real:
        raise FileNotFoundError("../shared/data/haystack/gutenberg_novels is not present")
    return cut_to_tokens(generated_corpus(int(n_tokens * 1.1)), n_tokens), "generated"


def generated_labelled_set(n_docs: int = 300, n_queries: int = 60) -> Any:
    """A small labelled retrieval set (a :class:`myai.retrieval.BeirSet`) made here, so the
    checks that need one run without public data: generated documents, each query a sample of
    four of its target's rarer words."""
    from myai.retrieval import BeirSet

    rng = random.Random(3)
    docs = {f"d{i}": generated_corpus(120, seed=1000 + i) for i in range(n_docs)}
    queries: dict[str, str] = {}
    qrels: dict[str, dict[str, int]] = {}
    for q in range(n_queries):
        target = f"d{rng.randrange(n_docs)}"
        words = [w.strip(".,!?") for w in docs[target].split() if len(w) > 6]
        queries[f"q{q}"] = " ".join(rng.sample(words, 4))
        qrels[f"q{q}"] = {target: 1}
    return BeirSet({k: ("", v) for k, v in docs.items()}, queries, qrels, name="generated")
