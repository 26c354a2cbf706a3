"""Exact token counting of ~1M tokens of English: ours (SmolLM2's GGUF vocabulary) against tokie
and HuggingFace `tokenizers` given the same vocabulary (a tokenizer.json built from the GGUF).

Groups put ours and the peers side by side; every benchmark asserts the counts are identical
(correctness, not speed). A ratio table is printed at the end of the module.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from myai._core import Tokenizer

RESULTS: dict[str, float] = {}


def _median(benchmark) -> float | None:
    stats = getattr(benchmark, "stats", None)
    return stats.stats.median if stats is not None else None


def _run(benchmark, name: str, fn, rounds: int):
    result = benchmark.pedantic(fn, rounds=rounds, iterations=1, warmup_rounds=1)
    m = _median(benchmark)
    if m is not None:
        RESULTS[name] = m
    return result


def _print_table() -> None:
    if not RESULTS:
        return
    rows = [
        ("whole text: tokie / ours", "tokie_whole", "ours_whole"),
        ("paragraphs: tokie / ours", "tokie_batch", "ours_batch"),
        ("paragraphs: HF tokenizers / ours", "hf_batch", "ours_batch"),
        ("whole text: ours exact / estimator", "ours_whole", "estimate_whole"),
    ]
    print("\ntoken counting, ~1M tokens (medians; ratio > 1 means the second is faster)")
    for key in sorted(RESULTS):
        print(f"  {key:<16} {RESULTS[key] * 1e3:9.2f} ms")
    for label, a, b in rows:
        if a in RESULTS and b in RESULTS:
            print(f"  {label:<36} {RESULTS[a] / RESULTS[b]:7.2f}x")


@pytest.fixture(scope="module", autouse=True)
def ratio_table(request: pytest.FixtureRequest) -> None:
    """Prints the ratio table when pytest exits (after output capture has ended)."""
    request.config.add_cleanup(_print_table)


@pytest.fixture(scope="module")
def tokie_tok(same_vocab_json: Path):
    tokie = pytest.importorskip("tokie")
    return tokie.Tokenizer.from_json(str(same_vocab_json))


@pytest.fixture(scope="module")
def hf_tok(same_vocab_json: Path):
    tk = pytest.importorskip("tokenizers")
    return tk.Tokenizer.from_file(str(same_vocab_json))


@pytest.fixture(scope="module")
def paragraphs(corpus_1m: str) -> list[str]:
    return corpus_1m.split("\n\n")


@pytest.fixture(scope="module")
def exact_whole(ours: Tokenizer, corpus_1m: str) -> int:
    return ours.count_tokens(corpus_1m)


@pytest.fixture(scope="module")
def exact_batch(ours: Tokenizer, paragraphs: list[str]) -> int:
    return sum(ours.count_tokens_batch(paragraphs))


# ------------------------------------------------------------------ one text of ~1M tokens


@pytest.mark.benchmark(group="tokens-count-whole-1m")
def test_ours_count_whole(benchmark, ours: Tokenizer, corpus_1m: str, exact_whole: int) -> None:
    assert _run(benchmark, "ours_whole", lambda: ours.count_tokens(corpus_1m), 15) == exact_whole


@pytest.mark.benchmark(group="tokens-count-whole-1m")
def test_tokie_count_whole(benchmark, tokie_tok, corpus_1m: str, exact_whole: int) -> None:
    assert (
        _run(benchmark, "tokie_whole", lambda: tokie_tok.count_tokens(corpus_1m), 15) == exact_whole
    )


# ------------------------------------------------------------------ the same split in paragraphs


@pytest.mark.benchmark(group="tokens-count-paragraphs-1m")
def test_ours_count_batch(
    benchmark, ours: Tokenizer, paragraphs: list[str], exact_batch: int
) -> None:
    got = _run(benchmark, "ours_batch", lambda: sum(ours.count_tokens_batch(paragraphs)), 15)
    assert got == exact_batch


@pytest.mark.benchmark(group="tokens-count-paragraphs-1m")
def test_tokie_count_batch(benchmark, tokie_tok, paragraphs: list[str], exact_batch: int) -> None:
    got = _run(benchmark, "tokie_batch", lambda: sum(tokie_tok.count_tokens_batch(paragraphs)), 15)
    assert got == exact_batch


@pytest.mark.benchmark(group="tokens-count-paragraphs-1m")
def test_hf_encode_batch(benchmark, hf_tok, paragraphs: list[str], exact_batch: int) -> None:
    def run() -> int:
        return sum(len(e.ids) for e in hf_tok.encode_batch(paragraphs, add_special_tokens=False))

    assert _run(benchmark, "hf_batch", run, 3) == exact_batch


# ------------------------------------------------------------------ the estimator


@pytest.mark.benchmark(group="tokens-estimate-1m")
def test_estimator_whole(benchmark, corpus_1m: str, exact_whole: int, corpus_source: str) -> None:
    est = Tokenizer.estimator()
    got = _run(benchmark, "estimate_whole", lambda: est.count_tokens(corpus_1m), 15)
    error = (got - exact_whole) / exact_whole
    print(f"\nestimator error on the {corpus_source} corpus: {100 * error:+.2f}%")
    if corpus_source == "gutenberg":
        # Calibrated on real English; the generated stand-in's made-up words are not English.
        assert abs(error) < 0.05
