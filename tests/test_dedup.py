"""Exact and near-duplicate detection: myai._core.hash64, jaccard, find_duplicates, NearDupIndex."""

from __future__ import annotations

import itertools
import math
import random
import threading

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from myai._core import (
    CorruptDataError,
    MyaiError,
    NearDupIndex,
    find_duplicates,
    hash64,
    jaccard,
)

THRESHOLD = 0.85


def vocabulary(seed: int, size: int = 5000) -> list[str]:
    rng = random.Random(seed)
    letters = "abcdefghijklmnopqrstuvwxyz"
    return ["".join(rng.choices(letters, k=rng.randint(3, 9))) for _ in range(size)]


VOCAB = vocabulary(1)


def random_text(rng: random.Random, n_words: int) -> str:
    return " ".join(rng.choices(VOCAB, k=n_words))


def mutate(rng: random.Random, text: str, changes: int) -> str:
    words = text.split()
    for _ in range(changes):
        words[rng.randrange(len(words))] = f"zq{rng.randrange(10**9)}"
    return " ".join(words)


def planted_copy(rng: random.Random, text: str, lo: float, hi: float) -> str:
    """A copy of ``text`` with a few words changed, whose exact Jaccard with it is in [lo, hi]."""
    n = len(text.split())
    for _ in range(1000):
        changes = rng.randint(1, max(1, n // 4))
        copy = mutate(rng, text, changes)
        if lo <= jaccard(text, copy) <= hi:
            return copy
    raise AssertionError("could not plant a copy in the similarity range")


def grouped_together(groups: list[list[int]], i: int, j: int) -> bool:
    return any(i in g and j in g for g in groups)


# --- hash64 and jaccard ----------------------------------------------------------------------


def test_hash64_is_xxh3_64_of_utf8() -> None:
    assert hash64("") == 0x2D06800538D394C2
    assert hash64("abc") == 0x78AF5F94892F3950
    assert hash64("a") != hash64("b")
    assert hash64("\u00e9") != hash64("e\u0301")  # bytes as given: callers normalise first
    assert 0 <= hash64("x" * 100_000) < 2**64


def test_jaccard_on_word_3_grams() -> None:
    assert jaccard("a b c d", "a b c d") == 1.0
    assert jaccard("a b c d", "a b c e") == pytest.approx(1 / 3)  # {abc,bcd} vs {abc,bce}
    assert jaccard("The cat, sat!", "the CAT sat") == 1.0  # lowercase, punctuation ignored
    assert jaccard("x y", "y x") == 0.0  # short texts: the whole word sequence is one shingle
    assert jaccard("", "") == 1.0
    assert jaccard("", "word") == 0.0
    assert jaccard("東京都", "東京都") == 1.0
    assert jaccard("東京都庁", "東京都") == 0.5  # each ideograph is a word


@settings(max_examples=60, deadline=None)
@given(st.text(max_size=200), st.text(max_size=200))
def test_jaccard_is_a_similarity(a: str, b: str) -> None:
    j = jaccard(a, b)
    assert 0.0 <= j <= 1.0
    assert j == jaccard(b, a)
    assert jaccard(a, a) == 1.0


# --- find_duplicates -------------------------------------------------------------------------


def test_planted_near_duplicates_are_found() -> None:
    rng = random.Random(11)
    bases = [random_text(rng, rng.randint(150, 400)) for _ in range(200)]
    texts = list(bases)
    pairs = []
    for i in rng.sample(range(len(bases)), 50):
        texts.append(planted_copy(rng, bases[i], 0.90, 0.95))
        pairs.append((i, len(texts) - 1))
    groups = find_duplicates(texts)
    found = sum(grouped_together(groups, i, j) for i, j in pairs)
    assert found >= 0.9 * len(pairs), f"{found} of {len(pairs)} planted pairs found"
    # Unrelated texts are never joined: every group holds one base and its copies.
    for g in groups:
        assert sum(1 for i in g if i < len(bases)) == 1


def test_moderately_similar_texts_are_not_grouped() -> None:
    rng = random.Random(12)
    texts = []
    for _ in range(60):
        base = random_text(rng, 300)
        texts += [base, planted_copy(rng, base, 0.60, 0.72)]
    texts += [random_text(rng, 300) for _ in range(300)]
    groups = find_duplicates(texts)
    joined = sum(grouped_together(groups, 2 * k, 2 * k + 1) for k in range(60))
    assert joined <= 1, f"{joined} of 60 pairs below the threshold were grouped"
    assert all(len(g) == 2 for g in groups)


def test_exact_duplicates_and_text_without_words() -> None:
    rng = random.Random(13)
    a, b = random_text(rng, 50), random_text(rng, 50)
    texts = [a, b, "", a, "   ", b, "!!!", "unique words here for once"]
    assert find_duplicates(texts) == [[0, 3], [1, 5], [2, 4, 6]]
    assert find_duplicates([]) == []
    assert find_duplicates(["only one"]) == []
    assert find_duplicates(["same", "same"], threshold=1.0, num_perm=8) == [[0, 1]]


def test_recall_against_brute_force_jaccard() -> None:
    rng = random.Random(14)
    texts = []
    for _ in range(40):
        n = rng.randint(40, 300)
        base = random_text(rng, n)
        texts.append(base)
        for _ in range(rng.randint(1, 5)):
            texts.append(mutate(rng, base, rng.randint(0, n // 25)))
    exact = {
        (i, j): jaccard(texts[i], texts[j]) for i, j in itertools.combinations(range(len(texts)), 2)
    }
    groups = find_duplicates(texts, threshold=THRESHOLD)
    strong = [p for p, s in exact.items() if s >= THRESHOLD + 0.05]
    assert len(strong) >= 50
    found = sum(grouped_together(groups, i, j) for i, j in strong)
    assert found >= 0.9 * len(strong), f"recall {found}/{len(strong)}"

    # Pairwise, through the index: every match is a real near-duplicate.
    index = NearDupIndex(threshold=THRESHOLD)
    index.add_batch(list(range(len(texts))), texts)
    for i, t in enumerate(texts):
        for j in index.query(t):
            if j != i:
                s = exact[(min(i, j), max(i, j))]
                assert s >= THRESHOLD - 0.12, f"query matched a pair of Jaccard {s}"


@settings(max_examples=40, deadline=None)
@given(
    st.lists(
        st.lists(st.sampled_from(["red", "fox", "jumps", "over", "the", "dog", "🙂", "猫"])).map(
            " ".join
        ),
        max_size=25,
    ),
    st.sampled_from([0.3, 0.6, 0.85, 1.0]),
)
def test_groups_are_well_formed(texts: list[str], threshold: float) -> None:
    groups = find_duplicates(texts, threshold=threshold, num_perm=64)
    members = [i for g in groups for i in g]
    assert len(members) == len(set(members))
    assert all(0 <= i < len(texts) for i in members)
    assert all(len(g) >= 2 and g == sorted(g) for g in groups)
    assert [g[0] for g in groups] == sorted(g[0] for g in groups)
    for i, j in itertools.combinations(range(len(texts)), 2):
        if texts[i] == texts[j]:
            assert grouped_together(groups, i, j)
    assert find_duplicates(texts, threshold=threshold, num_perm=64) == groups


@pytest.mark.parametrize(
    ("kwargs", "word"),
    [
        ({"threshold": 0.0}, "threshold"),
        ({"threshold": 1.01}, "threshold"),
        ({"threshold": -0.5}, "threshold"),
        ({"threshold": math.nan}, "threshold"),
        ({"num_perm": 7}, "num_perm"),
        ({"num_perm": 1025}, "num_perm"),
        ({"num_perm": -1}, "num_perm"),
    ],
)
def test_bad_parameters_raise_value_error(kwargs: dict[str, float], word: str) -> None:
    with pytest.raises(ValueError, match=word):
        find_duplicates(["a"], **kwargs)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=word):
        NearDupIndex(**kwargs)  # type: ignore[arg-type]


def test_unicode_and_large_texts() -> None:
    rng = random.Random(15)
    emoji = "🙂 party 🎉 time " * 50
    cjk = "我们今天去公园散步然后回家吃饭" * 20
    assert find_duplicates([emoji, cjk, emoji + "!", cjk + "。"]) == [[0, 2], [1, 3]]
    big = random_text(rng, 170_000)
    assert len(big) > 1_000_000
    edited = mutate(rng, big, 100)
    assert find_duplicates([big, edited, random_text(rng, 1000)]) == [[0, 1]]
    assert jaccard(big, edited) > 0.99
    index = NearDupIndex()
    index.add(1, big)
    assert index.query(edited) == [1]
    assert hash64(big) == hash64(big[:])


# --- NearDupIndex ----------------------------------------------------------------------------


def test_index_add_query_remove() -> None:
    rng = random.Random(16)
    index = NearDupIndex(threshold=0.8, num_perm=64, seed=3)
    assert (index.threshold, index.num_perm, len(index)) == (0.8, 64, 0)
    a, b = random_text(rng, 200), random_text(rng, 200)
    index.add(10, a)
    index.add(20, b)
    with pytest.raises(ValueError, match="already"):
        index.add(10, "again")
    assert len(index) == 2 and 10 in index and 30 not in index
    assert -1 not in index and "10" not in index
    assert index.query(a) == [10]
    assert index.query(mutate(rng, a, 2)) == [10]
    assert index.query(random_text(rng, 200)) == []
    assert index.remove(10) is True
    assert index.remove(10) is False
    assert index.query(a) == []
    index.add(10, a)  # an id is free again once removed
    index.add(2**64 - 1, "largest id")
    assert 2**64 - 1 in index


def test_query_orders_best_first() -> None:
    rng = random.Random(17)
    base = random_text(rng, 400)
    index = NearDupIndex(threshold=0.7)
    index.add(1, mutate(rng, base, 12))
    index.add(2, base)
    index.add(3, mutate(rng, base, 4))
    assert index.query(base) == [2, 3, 1]


def test_bad_ids_raise_value_error() -> None:
    index = NearDupIndex()
    with pytest.raises(ValueError, match="id"):
        index.add(-1, "x")
    with pytest.raises(ValueError, match="id"):
        index.remove(-5)
    with pytest.raises(ValueError, match="ids"):
        index.add_batch([1, -2], ["a", "b"])
    with pytest.raises(ValueError, match="id"):
        index.add(2**64, "x")
    with pytest.raises(ValueError, match="twice"):
        index.add_batch([1, 1], ["a", "b"])
    with pytest.raises(ValueError, match="length"):
        index.add_batch([1, 2], ["a"])
    assert len(index) == 0


def test_add_batch_reports_and_skips_duplicates() -> None:
    rng = random.Random(18)
    bases = [random_text(rng, 200) for _ in range(10)]
    stored = NearDupIndex()
    stored.add(100, bases[0])
    texts = [mutate(rng, bases[0], 1), bases[1], bases[2], mutate(rng, bases[1], 2), bases[2]]
    ids = [1, 2, 3, 4, 5]
    first = NearDupIndex.from_bytes(stored.to_bytes())
    assert first.add_batch(ids, texts) == [100, None, None, 2, 3]
    assert len(first) == 6
    assert stored.add_batch(ids, texts, skip_duplicates=True) == [100, None, None, 2, 3]
    assert len(stored) == 3 and 2 in stored and 3 in stored and 1 not in stored
    # The same as adding one at a time after a query.
    one = NearDupIndex()
    one.add(100, bases[0])
    seq = []
    for i, t in zip(ids, texts, strict=True):
        hits = one.query(t)
        seq.append(hits[0] if hits else None)
        one.add(i, t)
    assert seq == [100, None, None, 2, 3]
    assert one.to_bytes() == first.to_bytes()


@settings(max_examples=40, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.booleans(),
            st.integers(0, 8),
            st.lists(st.sampled_from(["a", "b", "c", "d", "e"]), max_size=12).map(" ".join),
        ),
        max_size=30,
    )
)
def test_incremental_index_equals_rebuild(ops: list[tuple[bool, int, str]]) -> None:
    index = NearDupIndex(threshold=0.6, num_perm=32)
    model: dict[int, str] = {}
    for add, i, text in ops:
        if add:
            if i in model:
                with pytest.raises(ValueError):
                    index.add(i, text)
            else:
                index.add(i, text)
                model[i] = text
                assert i in index.query(text)  # identical texts always match
        else:
            assert index.remove(i) == (model.pop(i, None) is not None)
    rebuilt = NearDupIndex(threshold=0.6, num_perm=32)
    for i, text in sorted(model.items()):
        rebuilt.add(i, text)
    assert index.to_bytes() == rebuilt.to_bytes()
    assert len(index) == len(model)
    for _, _, text in ops:
        assert index.query(text) == rebuilt.query(text)


def test_serialisation_round_trip() -> None:
    rng = random.Random(19)
    index = NearDupIndex(threshold=0.9, num_perm=256, seed=42)
    texts = [random_text(rng, 100) for _ in range(50)]
    index.add_batch(list(range(0, 100, 2)), texts)
    data = index.to_bytes()
    back = NearDupIndex.from_bytes(data)
    assert (back.threshold, back.num_perm, len(back)) == (0.9, 256, 50)
    assert back.to_bytes() == data
    for t in texts[:10]:
        assert back.query(t) == index.query(t)
    empty = NearDupIndex.from_bytes(NearDupIndex().to_bytes())
    assert len(empty) == 0


def test_corrupt_bytes_raise_corrupt_data_error() -> None:
    rng = random.Random(20)
    index = NearDupIndex(num_perm=16)
    index.add_batch([1, 2, 3], [random_text(rng, 30) for _ in range(3)])
    data = index.to_bytes()
    assert issubclass(CorruptDataError, MyaiError)
    bad = [b"", b"MYAIDDUP", data[:-1], data[:20], b"X" + data[1:], data + b"\0"]
    for pos in range(0, len(data), 7):
        flipped = bytearray(data)
        flipped[pos] ^= 0x10
        bad.append(bytes(flipped))
    bad += [bytes(rng.randrange(256) for _ in range(rng.randrange(300))) for _ in range(50)]
    for b in bad:
        with pytest.raises(CorruptDataError):
            NearDupIndex.from_bytes(b)


def test_index_is_shared_between_threads() -> None:
    rng = random.Random(21)
    texts = [random_text(rng, 120) for _ in range(400)]
    index = NearDupIndex()
    errors: list[BaseException] = []

    def worker(k: int) -> None:
        try:
            for i in range(k, len(texts), 4):
                index.add(i, texts[i])
                assert i in index.query(texts[i])
        except BaseException as e:  # surfaced below
            errors.append(e)

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert len(index) == len(texts)
