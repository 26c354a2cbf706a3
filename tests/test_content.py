"""Content types: detection and conversion of rich formats, through the context store."""

from __future__ import annotations

import io
import zipfile

import pytest

from myai import ContextManager
from myai.content import UnsupportedContentError, detect_content_type, to_text


def _docx(paragraphs: list[tuple[str, str | None]]) -> bytes:
    ns = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"

    def para(text: str, style: str | None) -> str:
        ppr = f'<w:pPr><w:pStyle w:val="{style}"/></w:pPr>' if style else ""
        return f"<w:p>{ppr}<w:r><w:t>{text}</w:t></w:r></w:p>"

    body = "".join(para(t, s) for t, s in paragraphs)
    xml = f'<?xml version="1.0"?><w:document xmlns:w="{ns}"><w:body>{body}</w:body></w:document>'
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("[Content_Types].xml", "<Types/>")
        z.writestr("word/document.xml", xml)
    return buf.getvalue()


@pytest.mark.parametrize(
    ("content", "name", "expected"),
    [
        ("# Title\n\n- a\n- b\n\n## More\n", "notes.md", "markdown"),
        ("def f():\n    return 1\n", "app.py", "code"),
        ("plain words", "a.txt", "text"),
        ("x", "data.csv", "data"),
        ("x", "page.html", "html"),
        ("x", "server.log", "log"),
        (b"%PDF-1.7 ...", None, "pdf"),
        ("<!DOCTYPE html><html><body><p>hi</p></body></html>", None, "html"),
        ('{"messages": [{"role": "user", "content": "hi"}]}', None, "conversation"),
        ('{"a": 1}', None, "data"),
        (
            "User: hello\nAssistant: hi there\nUser: how are you?\nAssistant: fine\n",
            None,
            "conversation",
        ),
        ("".join(f"2024-01-01 10:00:{i:02d} INFO step {i}\n" for i in range(20)), None, "log"),
        ("# A\n\n## B\n\n- item\n- item\n", None, "markdown"),
        ("Just a sentence about the sea.", None, "text"),
    ],
)
def test_detection(content: str | bytes, name: str | None, expected: str) -> None:
    assert detect_content_type(content, name) == expected


def test_html_visible_text_only() -> None:
    page = (
        "<html><head><title>T</title><style>p{color:red}</style><script>var x=1;</script></head>"
        "<body><h1>Harbour</h1><p>The keeper logs &amp; ships.</p><template>no</template></body></html>"
    )
    text = to_text(page, "html")
    assert "# Harbour" in text and "The keeper logs & ships." in text
    assert "var x" not in text and "color" not in text and "no" not in text.split()


def test_docx_paragraphs_and_headings() -> None:
    data = _docx([("Report", "Heading1"), ("The zorblax constant is 42.7.", None)])
    assert to_text(data, "docx") == "# Report\n\nThe zorblax constant is 42.7.\n"
    with ContextManager() as cm:
        r = cm.add_document(data, "report.docx")
        assert cm.list_documents()[0]["content_type"] == "docx"
        assert r["tokens_added"] > 0
        assert "42.7" in cm.search_context("zorblax constant")[0]["text"]


def test_bad_rich_content_is_named() -> None:
    with pytest.raises(UnsupportedContentError, match="docx"):
        to_text(b"PK\x03\x04 not really a zip", "docx")
    with pytest.raises(UnsupportedContentError, match="binary"):
        to_text(b"\x00\x01\x02" * 100, "text")
    with pytest.raises(UnsupportedContentError):
        to_text("a str", "pdf")


def test_pdf_needs_its_reader_or_reads() -> None:
    try:
        import pypdf  # noqa: F401
    except ImportError:
        with pytest.raises(UnsupportedContentError, match="pypdf"):
            to_text(b"%PDF-1.4 broken", "pdf")
    else:
        with pytest.raises(UnsupportedContentError, match="PDF"):
            to_text(b"%PDF-1.4 broken", "pdf")
