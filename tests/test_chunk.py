"""Token-aware chunking through the bindings, with the model's own tokenizer."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from myai import _core
from myai.corpus import generated_corpus
from myai.tokens import default_tokenizer


@pytest.fixture(scope="module")
def tok() -> _core.Tokenizer:
    return default_tokenizer()


def check(text: str, size: int, overlap: int, tok: _core.Tokenizer | None) -> list:
    chunks = _core.chunk_text(text, size, overlap, tok, return_text=True)
    raw = text.encode("utf-8")
    if not text:
        assert chunks == []
        return chunks
    assert chunks[0][0] == 0 and chunks[-1][1] == len(raw)
    for (s0, e0, _, _), (s1, e1, _, _) in itertools.pairwise(chunks):
        assert s0 < s1 <= e0 < e1, "in order, no gaps, progress"
        shared = raw[s1:e0].decode("utf-8")
        assert _core.count_tokens(shared, tok) <= overlap
    for s, e, n, t in chunks:
        assert raw[s:e].decode("utf-8") == t  # offsets on character boundaries
        exact = _core.count_tokens(t, tok)
        assert n == exact
        assert n <= size or len(t) == 1
    return chunks


def test_english_512_with_overlap(tok) -> None:
    text = generated_corpus(20_000)
    chunks = check(text, 512, 51, tok)
    sizes = [c[2] for c in chunks]
    assert max(sizes) <= 512
    assert sum(sizes) / len(sizes) > 300, "chunks are reasonably full"


def test_boundaries_prefer_paragraphs_then_sentences(tok) -> None:
    para = "The harbour was quiet that morning. Gulls circled the masts. " * 3
    text = "\n\n".join(f"# Part {i}\n\n{para.strip()}" for i in range(12))
    chunks = check(text, 100, 0, tok)
    for _s, _e, _n, t in chunks[:-1]:
        assert t.rstrip().endswith("."), repr(t[-40:])


def test_no_overlap_partitions_the_text(tok) -> None:
    text = generated_corpus(3000)
    chunks = check(text, 128, 0, tok)
    assert "".join(c[3] for c in chunks) == text


def test_offsets_without_text(tok) -> None:
    spans = _core.chunk_text("one two three. four five six.", 4, 1, tok)
    assert all(len(s) == 3 for s in spans)


def test_deterministic(tok) -> None:
    text = generated_corpus(5000)
    assert _core.chunk_text(text, 200, 20, tok) == _core.chunk_text(text, 200, 20, tok)


@pytest.mark.parametrize(
    ("size", "overlap", "message"),
    [(0, 0, "chunk_size"), (-5, 0, "chunk_size"), (10, -1, "chunk_overlap"), (10, 10, "smaller")],
)
def test_bad_sizes(size, overlap, message) -> None:
    with pytest.raises(ValueError, match=message):
        _core.chunk_text("text", size, overlap)


def test_wrong_types() -> None:
    with pytest.raises(TypeError):
        _core.chunk_text(b"bytes", 10)  # type: ignore[call-overload]


def test_hostile_inputs(tok) -> None:
    check("", 10, 0, tok)
    check("\x00\x00 nul", 4, 1, tok)
    check("שלום עולם. مرحبا بالعالم. 中文字符测试。🎉👩‍👩‍👧 emoji " * 50, 32, 8, tok)
    check("a\u0301" * 2000, 16, 4, tok)


def test_fifty_megabyte_line_without_whitespace(tok) -> None:
    text = "abcdefghij" * 5_000_000
    chunks = _core.chunk_text(text, 4096, 0, tok)
    assert chunks[0][0] == 0 and chunks[-1][1] == len(text)
    assert all(n <= 4096 for _s, _e, n in chunks)
    assert all(a[1] == b[0] for a, b in itertools.pairwise(chunks))


def test_batch_matches_single(tok) -> None:
    texts = [generated_corpus(500, seed=s) for s in range(5)]
    batch = _core.chunk_text_batch(texts, 64, 8, tok)
    assert batch == [_core.chunk_text(t, 64, 8, tok) for t in texts]


@settings(max_examples=60, deadline=None)
@given(st.text(max_size=400), st.integers(1, 60), st.floats(0, 0.9))
def test_invariants_hypothesis(text: str, size: int, frac: float) -> None:
    overlap = min(size - 1, int(size * frac))
    check(_core.normalize(text), size, overlap, default_tokenizer())


@settings(max_examples=30, deadline=None)
@given(st.text(max_size=300), st.integers(1, 40))
def test_invariants_estimator(text: str, size: int) -> None:
    check(text.encode("utf-8", "replace").decode("utf-8"), size, size // 3, None)
