"""Needles in a 1M-token haystack: facts planted at 10 depths must come back in the top 5.

The haystack is the generated corpus (real prose from ../shared/data is used by the benchmark);
questions are phrased as a person would ask, not copied from the needle.
"""

from __future__ import annotations

import pytest

from myai import ContextManager
from myai.corpus import english_corpus

NEEDLES = [
    ("crimson", "4711", "What is the access code of the crimson vault?"),
    ("cobalt", "2093", "Which code opens the cobalt vault?"),
    ("amber", "8842", "Tell me the amber vault's access code."),
    ("violet", "1357", "access code for the violet vault"),
    ("saffron", "6620", "What code unlocks the saffron vault?"),
    ("indigo", "3184", "the indigo vault code, please"),
    ("scarlet", "9051", "Do you know the scarlet vault access code?"),
    ("jade", "7426", "What is the jade vault's code?"),
    ("ochre", "5398", "access code of the ochre vault?"),
    ("teal", "2765", "Remind me of the teal vault access code."),
]


@pytest.fixture(scope="module")
def haystack() -> str:
    text, _ = english_corpus(1_048_576, real=False)
    paras = text.split("\n\n")
    for depth, (color, code, _q) in enumerate(NEEDLES):
        at = int(len(paras) * depth / len(NEEDLES)) + 1
        paras.insert(at, f"Note for the archive: the access code of the {color} vault is {code}.")
    return "\n\n".join(paras)


@pytest.mark.parametrize("chunk_size", [512, 2048])
def test_needles_found_in_top5(haystack: str, chunk_size: int) -> None:
    with ContextManager(
        max_tokens=2_000_000, chunk_size=chunk_size, chunk_overlap=chunk_size // 10
    ) as cm:
        r = cm.add_document(haystack, "haystack.txt")
        assert r["tokens_added"] > 1_000_000
        missed = []
        for color, code, question in NEEDLES:
            hits = cm.search_context(question, top_k=5)
            if not any(f"{color} vault is {code}" in h["text"] for h in hits):
                missed.append(color)
        assert missed == []
