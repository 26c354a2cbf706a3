"""Shared fixtures of the benchmark suites: deterministic corpora sized in tokens."""

from __future__ import annotations

import pytest
from myai.corpus import english_corpus

ONE_M = 1_048_576


@pytest.fixture(scope="session")
def corpus_1m() -> str:
    """About 1,048,576 tokens of English (Gutenberg when present, else generated)."""
    text, _source = english_corpus(ONE_M)
    return text


@pytest.fixture(scope="session")
def corpus_source() -> str:
    return english_corpus(1000)[1]
