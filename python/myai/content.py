"""Content types: detection from a name and the content, and conversion of rich formats to text.

The context store keeps text; pdf, docx and html arrive as bytes (or html as text) and are
turned into their visible text here. The full loaders for files and folders build on this.
"""

from __future__ import annotations

import html.parser
import io
import re
import zipfile
from pathlib import PurePath
from xml.etree import ElementTree

from myai.errors import MyaiError

__all__ = ["CONTENT_TYPES", "UnsupportedContentError", "detect_content_type", "to_text"]

CONTENT_TYPES = (
    "text",
    "markdown",
    "code",
    "conversation",
    "log",
    "data",
    "pdf",
    "docx",
    "html",
)

CODE_EXTENSIONS = frozenset(
    [
        ".py",
        ".pyi",
        ".rs",
        ".c",
        ".h",
        ".cc",
        ".cpp",
        ".hpp",
        ".cs",
        ".java",
        ".kt",
        ".scala",
        ".go",
        ".js",
        ".mjs",
        ".ts",
        ".tsx",
        ".jsx",
        ".rb",
        ".php",
        ".swift",
        ".m",
        ".sh",
        ".bash",
        ".zsh",
        ".ps1",
        ".sql",
        ".r",
        ".jl",
        ".lua",
        ".pl",
        ".hs",
        ".ml",
        ".ex",
        ".exs",
        ".erl",
        ".clj",
        ".dart",
        ".vue",
        ".toml",
        ".yaml",
        ".yml",
        ".ini",
        ".cfg",
        ".mk",
        ".cmake",
        ".proto",
        ".zig",
        ".nim",
    ]
)
_EXT = {
    ".md": "markdown",
    ".markdown": "markdown",
    ".rst": "text",
    ".txt": "text",
    ".log": "log",
    ".json": "data",
    ".jsonl": "data",
    ".ndjson": "data",
    ".csv": "data",
    ".tsv": "data",
    ".pdf": "pdf",
    ".docx": "docx",
    ".html": "html",
    ".htm": "html",
    ".xhtml": "html",
}

_LOG_LINE = re.compile(
    r"^(\[?\d{4}-\d\d-\d\d[T ]\d\d:\d\d|\[?\d\d:\d\d:\d\d|[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d)"
    r"|\b(DEBUG|INFO|WARN|WARNING|ERROR|CRITICAL|TRACE)\b"
)
_TURN = re.compile(r"^(user|assistant|system|human|ai|bot|me|you)\s*:", re.I)
_MD = re.compile(r"^(#{1,6} |[-*] |\d+\. |```|> )", re.M)


class UnsupportedContentError(MyaiError, ValueError):
    """The content cannot be turned into text (binary, corrupt, or an unknown format)."""


def detect_content_type(content: str | bytes, name: str | None = None) -> str:
    """The content type from the name's extension, else from the content itself."""
    if name:
        ext = PurePath(name).suffix.lower()
        if ext in _EXT:
            return _EXT[ext]
        if ext in CODE_EXTENSIONS:
            return "code"
    if isinstance(content, bytes):
        head = content[:8]
        if head.startswith(b"%PDF"):
            return "pdf"
        if head.startswith(b"PK\x03\x04"):
            return "docx"
        try:
            sample = content[:65536].decode("utf-8")
        except UnicodeDecodeError:
            sample = content[:65536].decode("utf-8", "replace")
    else:
        sample = content[:65536]
    stripped = sample.lstrip()
    low = stripped[:512].lower()
    if low.startswith(("<!doctype html", "<html")) or ("<body" in low and "</" in low):
        return "html"
    if stripped.startswith(("{", "[")):
        if re.search(r'"(role|messages|conversations)"\s*:', sample[:4096]):
            return "conversation"
        return "data"
    lines = [ln for ln in sample.splitlines()[:200] if ln.strip()]
    if lines:
        if sum(bool(_TURN.match(ln)) for ln in lines) >= max(2, len(lines) // 4):
            return "conversation"
        if sum(bool(_LOG_LINE.search(ln)) for ln in lines) >= max(3, len(lines) // 2):
            return "log"
        if len(_MD.findall(sample)) >= 3:
            return "markdown"
        codey = sum(ln.rstrip().endswith(("{", "}", ";", ":", ")")) for ln in lines)
        if codey >= max(4, len(lines) // 2) and re.search(
            r"\b(def|fn|class|function|return|import)\b", sample
        ):
            return "code"
    return "text"


class _VisibleText(html.parser.HTMLParser):
    _SKIP = frozenset({"script", "style", "head", "noscript", "template", "svg"})
    _BLOCK = frozenset(
        [
            "p",
            "div",
            "br",
            "li",
            "ul",
            "ol",
            "h1",
            "h2",
            "h3",
            "h4",
            "h5",
            "h6",
            "tr",
            "table",
            "section",
            "article",
            "header",
            "footer",
            "pre",
            "blockquote",
            "title",
            "dt",
            "dd",
        ]
    )

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self._SKIP:
            self._skip += 1
        elif tag in self._BLOCK:
            self.parts.append("\n")
            if tag in {"h1", "h2", "h3", "h4", "h5", "h6"}:
                self.parts.append("#" * int(tag[1]) + " ")

    def handle_endtag(self, tag: str) -> None:
        if tag in self._SKIP:
            self._skip = max(0, self._skip - 1)
        elif tag in self._BLOCK:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.parts.append(data)


def html_to_text(doc: str) -> str:
    """The visible text of an HTML document, headings kept as markdown headings."""
    p = _VisibleText()
    p.feed(doc)
    p.close()
    text = "".join(p.parts)
    text = re.sub(r"[ \t\r\f\v]+", " ", text)
    text = re.sub(r" *\n *", "\n", text)
    return re.sub(r"\n{3,}", "\n\n", text).strip() + "\n"


_W = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"


def docx_to_text(data: bytes) -> str:
    """The paragraphs of a .docx file (headings kept as markdown headings)."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as z:
            xml = z.read("word/document.xml")
        root = ElementTree.fromstring(xml)
    except (zipfile.BadZipFile, KeyError, ElementTree.ParseError, OSError) as e:
        raise UnsupportedContentError(f"not a readable .docx file: {e}") from None
    paras: list[str] = []
    for p in root.iter(f"{_W}p"):
        style = p.find(f"{_W}pPr/{_W}pStyle")
        level = ""
        if style is not None:
            m = re.match(r"Heading(\d)", style.get(f"{_W}val", ""))
            if m:
                level = "#" * int(m.group(1)) + " "
        text = "".join(t.text or "" for t in p.iter(f"{_W}t"))
        if text.strip():
            paras.append(level + text)
    return "\n\n".join(paras) + "\n"


def pdf_to_text(data: bytes) -> str:
    """The text of a PDF (needs the optional ``pypdf`` package)."""
    try:
        import pypdf  # type: ignore[import-not-found]
    except ImportError:
        raise UnsupportedContentError(
            "reading PDF needs the pypdf package: pip install pypdf"
        ) from None
    try:
        reader = pypdf.PdfReader(io.BytesIO(data))
        pages = [page.extract_text() or "" for page in reader.pages]
    except Exception as e:  # pypdf raises many types on corrupt files
        raise UnsupportedContentError(f"not a readable PDF: {e}") from None
    return "\n\n".join(p.strip() for p in pages if p.strip()) + "\n"


def looks_binary(data: bytes) -> bool:
    """True for bytes that are not text: NULs, or mostly undecodable."""
    head = data[:8192]
    if b"\x00" in head:
        return True
    try:
        head.decode("utf-8")
        return False
    except UnicodeDecodeError as e:
        # A multi-byte character cut at the sample's end is still text.
        if e.start >= len(head) - 3:
            return False
    bad = head.decode("utf-8", "replace").count("\ufffd")
    return bad > len(head) // 20


def to_text(content: str | bytes, content_type: str) -> str | bytes:
    """Text for the store: rich formats converted, text formats passed through (bytes are
    left for the core's normaliser, which replaces and counts invalid UTF-8)."""
    if content_type == "pdf":
        if not isinstance(content, bytes):
            raise UnsupportedContentError("pdf content must be bytes")
        return pdf_to_text(content)
    if content_type == "docx":
        if not isinstance(content, bytes):
            raise UnsupportedContentError("docx content must be bytes")
        return docx_to_text(content)
    if isinstance(content, bytes) and looks_binary(content):
        raise UnsupportedContentError(
            f"binary content ({len(content)} bytes) is not {content_type}; "
            "give text, or a pdf or docx file"
        )
    if content_type == "html":
        s = content.decode("utf-8", "replace") if isinstance(content, bytes) else content
        return html_to_text(s)
    return content
