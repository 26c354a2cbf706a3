"""Text normalisation through the bindings."""

from __future__ import annotations

import unicodedata

import pytest
from hypothesis import given
from hypothesis import strategies as st

from myai._core import normalize, normalize_with_stats


def test_bom_crlf_controls_nfc() -> None:
    text, stats = normalize_with_stats("\ufeffa\r\nb\rc\x00d\x07e\x85f\x7fe\u0301")
    assert text == "a\nb\ncdef\u00e9"
    assert stats == {
        "invalid_sequences": 0,
        "bom_removed": True,
        "newlines_converted": 2,
        "controls_removed": 4,
        "nfc_applied": True,
    }


def test_tabs_newlines_and_scripts_kept() -> None:
    s = "tab\there\nשלום עולם مرحبا 中文字符 🎉👩‍👩‍👧 ok"
    assert normalize(s) == s


def test_invalid_utf8_bytes_replaced_and_counted() -> None:
    text, stats = normalize_with_stats(b"ok\xff\xfe then \xc3 end")
    assert text == "ok\ufffd\ufffd then \ufffd end"
    assert stats["invalid_sequences"] == 3
    assert normalize(bytearray(b"\xef\xbb\xbfhi\r\n")) == "hi\n"


def test_lone_surrogates_replaced_and_counted() -> None:
    text, stats = normalize_with_stats("a\ud800b\udfffc \ufffd")
    assert text == "a\ufffdb\ufffdc \ufffd"
    assert stats["invalid_sequences"] == 2


def test_empty_and_wrong_types() -> None:
    assert normalize("") == ""
    assert normalize(b"") == ""
    with pytest.raises(TypeError, match="str or bytes"):
        normalize(42)  # type: ignore[arg-type]


def test_big_single_line() -> None:
    s = "x" * (8 * 1024 * 1024)
    assert normalize(s) == s


@given(st.binary(max_size=300))
def test_bytes_never_fail_and_result_is_stable(data: bytes) -> None:
    text = normalize(data)
    assert normalize(text) == text
    assert unicodedata.is_normalized("NFC", text)
    assert "\r" not in text and "\x00" not in text


@given(st.text(max_size=200))
def test_text_is_nfc_without_controls(s: str) -> None:
    t = normalize(s)
    assert unicodedata.is_normalized("NFC", t)
    assert not any(unicodedata.category(c) == "Cc" and c not in "\t\n" for c in t)
