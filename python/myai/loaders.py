"""Loaders: files and folders into the context store.

``load_file(path)`` turns one file into records (text, content type, metadata, importance);
``ingest_paths(cm, paths, ...)`` walks files and folders into a ContextManager, incrementally.

Formats, by extension (anything else is sniffed: text is loaded, binary skipped):

* ``.txt .rst .log``, markdown, source code (content type ``code``): the file's text, one record.
* ``.pdf``, ``.docx``, ``.html``: their visible text (headings kept as markdown headings).
* ``.json``: the seed's structured format when the top level is an object holding a
  ``conversations`` and/or a ``facts`` list (below); any other JSON becomes one record of
  ``key.path[0]: value`` lines, one per scalar value.
* ``.jsonl`` / ``.ndjson``: one record per line (a structured entry, or flattened as above).
* ``.csv`` / ``.tsv``: with question and answer columns, one Q/A memory per row; any other
  table one record with one ``column: value; column: value`` line per row.

Structured memories (json ``conversations`` / ``facts``, jsonl lines, Q/A csv rows) each
become their own document, named ``PATH#conversations[3]``, ``PATH#facts[0]``,
``PATH#L12`` (jsonl line) or ``PATH#row5`` (csv data row):

* a conversation is ``{"question" | "user" | "prompt": Q, "answer" | "assistant" |
  "response": A, ...}`` → text ``"Question: Q\\nAnswer: A"``, content type ``conversation``;
* a fact is ``{"fact" | "text" | "content": F, ...}`` → text ``F``, content type ``text``;
* ``importance`` (a number in [0, 1]) becomes the memory's importance, ``tags`` (a list, or a
  string split on ``,`` / ``;``) its ``metadata["tags"]``; other scalar fields are copied into
  the metadata; ``metadata["kind"]`` is ``conversation`` or ``fact``.

Importance: a record's own importance wins, then the ``importance`` given to the call, then
the store's default for documents (0.5).

Text is decoded by its BOM (UTF-8, UTF-16, UTF-32), else as UTF-8, else as BOM-less UTF-16,
Windows-1252 or latin-1 (noted in the record's ``metadata["encoding_note"]``); line endings are left to the core's normaliser.
A bad file raises LoadError naming the file and the reason.
"""

from __future__ import annotations

import codecs
import csv
import fnmatch
import hashlib
import io
import json
import logging
import os
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from myai.content import (
    CODE_EXTENSIONS,
    UnsupportedContentError,
    detect_content_type,
    docx_to_text,
    html_to_text,
    looks_binary,
    pdf_to_text,
)
from myai.errors import MyaiError

__all__ = [
    "IngestProgress",
    "LoadError",
    "Record",
    "decode_text",
    "file_hash",
    "ingest_paths",
    "load_file",
]

_TEXT_EXT = {".txt": "text", ".rst": "text", ".log": "log", ".md": "markdown"}
_TEXT_EXT[".markdown"] = "markdown"
_JSON_EXT = {".json"}
_JSONL_EXT = {".jsonl", ".ndjson"}
_CSV_EXT = {".csv", ".tsv"}
_RICH_EXT = {".pdf": "pdf", ".docx": "docx", ".html": "html", ".htm": "html", ".xhtml": "html"}
# Never read: known binary formats are skipped by name.
_BINARY_EXT = frozenset(
    [
        ".png",
        ".jpg",
        ".jpeg",
        ".gif",
        ".bmp",
        ".ico",
        ".webp",
        ".tif",
        ".tiff",
        ".mp3",
        ".wav",
        ".flac",
        ".ogg",
        ".mp4",
        ".mkv",
        ".avi",
        ".mov",
        ".zip",
        ".gz",
        ".tgz",
        ".bz2",
        ".xz",
        ".zst",
        ".7z",
        ".rar",
        ".tar",
        ".exe",
        ".dll",
        ".so",
        ".dylib",
        ".o",
        ".a",
        ".class",
        ".jar",
        ".pyc",
        ".whl",
        ".bin",
        ".dat",
        ".db",
        ".sqlite",
        ".npy",
        ".npz",
        ".pt",
        ".safetensors",
        ".gguf",
        ".onnx",
        ".woff",
        ".woff2",
        ".ttf",
        ".otf",
        ".doc",
        ".xls",
        ".xlsx",
        ".ppt",
        ".pptx",
        ".odt",
    ]
)
_QUESTION_KEYS = ("question", "user", "prompt", "q", "input")
_ANSWER_KEYS = ("answer", "assistant", "response", "a", "output")
_FACT_KEYS = ("fact", "text", "content")
_RESERVED = frozenset(
    (*_QUESTION_KEYS, *_ANSWER_KEYS, *_FACT_KEYS, "importance", "tags", "kind", "source")
)


class LoadError(MyaiError, ValueError):
    """A file could not be loaded; the message names the file and the reason."""

    def __init__(self, path: str | os.PathLike[str], reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = str(path)
        self.reason = reason


class _Skip(Exception):
    """A file that is not loaded on purpose (binary, empty); the message is the reason."""


@dataclass
class Record:
    """One memory or document loaded from a file.

    ``key`` is empty for a whole file, else the record's place in it (``facts[0]``, ``L3``);
    ``importance`` is None when the file does not say."""

    text: str
    content_type: str
    metadata: dict[str, Any] = field(default_factory=dict)
    key: str = ""
    importance: float | None = None

    def name(self, source: str) -> str:
        """The document name of this record when loaded from ``source``."""
        return f"{source}#{self.key}" if self.key else source


# ---------------------------------------------------------------------------- decoding


def decode_text(data: bytes) -> tuple[str, str, str | None]:
    """``(text, encoding, note)``: by BOM (UTF-8, UTF-32, UTF-16), else strict UTF-8, else
    UTF-16 without a BOM (by its NUL pattern), else Windows-1252 (when it has the bytes only
    that code page gives printable meaning), else latin-1, the last three with a note saying
    so. The BOM itself is dropped."""
    for bom, enc in (
        (codecs.BOM_UTF8, "utf-8"),
        (codecs.BOM_UTF32_LE, "utf-32-le"),
        (codecs.BOM_UTF32_BE, "utf-32-be"),
        (codecs.BOM_UTF16_LE, "utf-16-le"),
        (codecs.BOM_UTF16_BE, "utf-16-be"),
    ):
        if data.startswith(bom):
            try:
                return data[len(bom) :].decode(enc), enc, None
            except UnicodeDecodeError as e:
                raise UnicodeError(f"invalid {enc} after its byte-order mark: {e.reason}") from None
    try:
        return data.decode("utf-8"), "utf-8", None
    except UnicodeDecodeError:
        pass
    wide = _utf16_without_bom(data)
    if wide is not None:
        try:
            return data.decode(wide), wide, f"no byte-order mark: decoded as {wide}"
        except UnicodeDecodeError:
            pass
    # Bytes 0x80-0x9F are control codes in latin-1 but curly quotes, dashes and the euro sign
    # in Windows-1252, which is what such files almost always are.
    if any(0x80 <= b <= 0x9F for b in data):
        try:
            return data.decode("cp1252"), "cp1252", "not valid UTF-8: decoded as Windows-1252"
        except UnicodeDecodeError:
            pass
    return data.decode("latin-1"), "latin-1", "not valid UTF-8: decoded as latin-1"


def _utf16_without_bom(data: bytes) -> str | None:
    """``utf-16-le``/``utf-16-be`` when ``data`` looks like mostly-ASCII UTF-16 written without
    a byte-order mark (a NUL in every other byte, on one side only), else None."""
    head = data[:8192]
    if len(head) < 4 or len(data) % 2:
        return None
    even, odd = head[0::2].count(0), head[1::2].count(0)
    half = len(head) // 2
    if odd >= 0.6 * half and even <= 0.05 * half:
        return "utf-16-le"
    if even >= 0.6 * half and odd <= 0.05 * half:
        return "utf-16-be"
    return None


def _has_bom(data: bytes) -> bool:
    return data.startswith((codecs.BOM_UTF8, codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE))


_CONTROL = bytes(b for b in range(32) if b not in (9, 10, 12, 13, 27)) + b"\x7f"


def _binary(data: bytes) -> bool:
    """Not text: NULs, or many control bytes (latin-1 text has high bytes but no controls,
    so it stays text where the UTF-8-based content.looks_binary would call it binary)."""
    head = data[:8192]
    if b"\x00" in head:
        return True
    if not looks_binary(head):
        return False
    controls = len(head) - len(head.translate(None, _CONTROL))
    return controls * 20 > len(head)


def file_hash(data: bytes) -> str:
    """The content hash a file is tracked by in the store (hex, 128 bits of BLAKE2b)."""
    return hashlib.blake2b(data, digest_size=16).hexdigest()


# ---------------------------------------------------------------------------- loaders


def load_file(path: str | os.PathLike[str], data: bytes | None = None) -> list[Record]:
    """The records of one file (an empty list for an empty file).

    Raises LoadError (file named, reason given) for an unreadable, binary or corrupt file."""
    p = Path(path)
    try:
        return _load(p, data)
    except _Skip as e:
        raise LoadError(p, str(e)) from None


def _read(p: Path) -> bytes:
    try:
        return p.read_bytes()
    except IsADirectoryError:
        raise LoadError(p, "is a directory") from None
    except OSError as e:
        raise LoadError(p, f"cannot read: {e.strerror or e}") from None


def _load(p: Path, data: bytes | None) -> list[Record]:
    ext = p.suffix.lower()
    if ext in _BINARY_EXT:
        raise _Skip(f"binary file ({ext})")
    if data is None:
        data = _read(p)
    if not data.strip():
        return []
    if ext in _RICH_EXT:
        kind = _RICH_EXT[ext]
        try:
            if kind == "pdf":
                # pypdf logs its repairs of damaged files as warnings; the outcome is ours
                # to report (an error naming the file, or the text).
                pdf_log = logging.getLogger("pypdf")
                level = pdf_log.level
                pdf_log.setLevel(logging.ERROR + 1)
                try:
                    text = pdf_to_text(data)
                finally:
                    pdf_log.setLevel(level)
                ctype = "text"
            elif kind == "docx":
                text = docx_to_text(data)
                ctype = "markdown"
            else:
                s, _enc, _note = _decode(p, data)
                text = html_to_text(s)
                ctype = "markdown"
        except UnsupportedContentError as e:
            raise LoadError(p, str(e)) from None
        if not text.strip():
            raise LoadError(p, f"no text found in this {kind} file")
        return [Record(text, ctype, {"format": kind})]
    if not _has_bom(data) and _utf16_without_bom(data) is None and _binary(data):
        raise _Skip("binary file (not text)")
    text, enc, note = _decode(p, data)
    meta: dict[str, Any] = {}
    if enc != "utf-8":
        meta["encoding"] = enc
    if note:
        meta["encoding_note"] = note
    if ext in _JSON_EXT:
        recs = _load_json(p, text)
    elif ext in _JSONL_EXT:
        recs = _load_jsonl(p, text)
    elif ext in _CSV_EXT:
        recs = _load_csv(p, text, "\t" if ext == ".tsv" else None)
    elif ext in _TEXT_EXT:
        recs = [Record(text, _TEXT_EXT[ext])]
    elif ext in CODE_EXTENSIONS:
        recs = [Record(text, "code", {"language": ext[1:]})]
    else:
        recs = [Record(text, detect_content_type(text, None))]
    for r in recs:
        r.metadata.update(meta)
    return [r for r in recs if r.text.strip()]


def _decode(p: Path, data: bytes) -> tuple[str, str, str | None]:
    try:
        return decode_text(data)
    except UnicodeError as e:
        raise LoadError(p, str(e)) from None


def _flatten(value: Any, path: str = "") -> Iterator[str]:
    """``key.path[0]: value`` for each scalar value (nulls left out)."""
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _flatten(v, f"{path}.{k}" if path else str(k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _flatten(v, f"{path}[{i}]")
    elif value is not None:
        s = value if isinstance(value, str) else json.dumps(value)
        if isinstance(value, str) and not value.strip():
            return
        yield f"{path}: {s}" if path else s


def _first(d: dict[str, Any], keys: Sequence[str]) -> str | None:
    low = {str(k).lower(): v for k, v in d.items()}
    for k in keys:
        v = low.get(k)
        if isinstance(v, str) and v.strip():
            return v
    return None


def _importance(p: Path, where: str, v: Any) -> float | None:
    if v is None or v == "":
        return None
    try:
        x = float(v)
    except (TypeError, ValueError):
        raise LoadError(p, f"{where}: importance must be a number in [0, 1], got {v!r}") from None
    if not 0.0 <= x <= 1.0:
        raise LoadError(p, f"{where}: importance must be within [0, 1], got {x}")
    return x


def _tags(v: Any) -> list[str]:
    if v is None:
        return []
    if isinstance(v, str):
        parts = v.replace(";", ",").split(",")
    elif isinstance(v, list):
        parts = [str(x) for x in v if x is not None]
    else:
        parts = [str(v)]
    return [t.strip() for t in parts if t.strip()]


def _memory(p: Path, key: str, entry: dict[str, Any], kind: str | None = None) -> Record | None:
    """A conversation or fact entry as a record; None when it is neither."""
    q, a = _first(entry, _QUESTION_KEYS), _first(entry, _ANSWER_KEYS)
    fact = _first(entry, _FACT_KEYS)
    meta: dict[str, Any] = {}
    if q is not None and a is not None and kind != "fact":
        text, ctype, meta["kind"] = (
            f"Question: {q.strip()}\nAnswer: {a.strip()}\n",
            "conversation",
            "conversation",
        )
    elif fact is not None and kind != "conversation":
        text, ctype, meta["kind"] = fact, "text", "fact"
    else:
        return None
    low = {str(k).lower(): v for k, v in entry.items()}
    tags = _tags(low.get("tags"))
    if tags:
        meta["tags"] = tags
    for k, v in entry.items():
        if str(k).lower() not in _RESERVED and isinstance(v, str | int | float | bool):
            meta[str(k)] = v
    return Record(text, ctype, meta, key, _importance(p, key, low.get("importance")))


def _load_json(p: Path, text: str) -> list[Record]:
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as e:
        raise LoadError(p, f"invalid JSON: {e.msg} at line {e.lineno} column {e.colno}") from None
    structured = isinstance(doc, dict) and any(
        isinstance(doc.get(k), list) for k in ("conversations", "facts")
    )
    if not structured:
        return [Record("\n".join(_flatten(doc)) + "\n", "data")]
    out: list[Record] = []
    rest: dict[str, Any] = {}
    for section, kind in (("conversations", "conversation"), ("facts", "fact")):
        items = doc.get(section)
        if not isinstance(items, list):
            continue
        for i, entry in enumerate(items):
            key = f"{section}[{i}]"
            rec = None
            if isinstance(entry, dict):
                rec = _memory(p, key, entry, kind)
            elif isinstance(entry, str) and entry.strip() and kind == "fact":
                rec = Record(entry, "text", {"kind": "fact"}, key)
            if rec is None:
                want = "question and answer" if kind == "conversation" else "fact or text"
                raise LoadError(p, f"{key}: expected an object with {want}")
            out.append(rec)
    for k, v in doc.items():
        if k not in ("conversations", "facts"):
            rest[k] = v
    lines = list(_flatten(rest))
    if lines:
        out.append(Record("\n".join(lines) + "\n", "data", {}, "rest"))
    return out


def _load_jsonl(p: Path, text: str) -> list[Record]:
    out: list[Record] = []
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            v = json.loads(line)
        except json.JSONDecodeError as e:
            raise LoadError(p, f"invalid JSON on line {n}: {e.msg} at column {e.colno}") from None
        key = f"L{n}"
        rec = _memory(p, key, v) if isinstance(v, dict) else None
        if rec is None:
            body = "\n".join(_flatten(v))
            if not body.strip():
                continue
            rec = Record(body + "\n", "data", {}, key)
        out.append(rec)
    return out


def _load_csv(p: Path, text: str, delimiter: str | None) -> list[Record]:
    sample = text[:16384]
    if delimiter is None:
        try:
            delimiter = csv.Sniffer().sniff(sample, delimiters=",;\t|").delimiter
        except csv.Error:
            delimiter = ","
    try:
        rows = list(csv.reader(io.StringIO(text), delimiter=delimiter))
    except csv.Error as e:
        raise LoadError(p, f"invalid CSV: {e}") from None
    rows = [r for r in rows if any(c.strip() for c in r)]
    if not rows:
        return []
    header = [h.strip() or f"column{i + 1}" for i, h in enumerate(rows[0])]
    low = [h.lower() for h in header]
    qa = any(h in _QUESTION_KEYS for h in low) and any(h in _ANSWER_KEYS for h in low)
    if qa:
        out: list[Record] = []
        for n, row in enumerate(rows[1:], 1):
            entry = {h: c for h, c in zip(header, row, strict=False) if c.strip()}
            rec = _memory(p, f"row{n}", entry, "conversation")
            if rec is None:
                raise LoadError(p, f"row {n}: the question or the answer is empty")
            out.append(rec)
        return out
    lines = []
    for row in rows[1:]:
        cells = [f"{h}: {c.strip()}" for h, c in zip(header, row, strict=False) if c.strip()]
        cells += [c.strip() for c in row[len(header) :] if c.strip()]
        lines.append("; ".join(cells))
    if not lines:  # a header alone
        lines = ["; ".join(header)]
    return [Record("\n".join(lines) + "\n", "data", {"columns": header})]


# ---------------------------------------------------------------------------- ingestion


@dataclass
class IngestProgress:
    """What ``ingest_paths`` reports to its progress callback after each file."""

    files_done: int
    files_total: int
    bytes_done: int
    bytes_total: int
    tokens_added: int
    path: str
    status: str  # added | replaced | unchanged | skipped | failed
    elapsed_s: float


def _hidden(rel: Path) -> bool:
    return any(part.startswith(".") and part not in (".", "..") for part in rel.parts)


def _matches(rel: str, name: str, globs: Sequence[str]) -> bool:
    return any(fnmatch.fnmatch(rel, g) or fnmatch.fnmatch(name, g) for g in globs)


def _walk(
    root: Path, include: Sequence[str], exclude: Sequence[str], skipped: list[dict[str, str]]
) -> list[Path]:
    files: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(root, onerror=None):
        d = Path(dirpath)
        keep = []
        for dn in sorted(dirnames):
            rel = (d / dn).relative_to(root).as_posix()
            if dn.startswith("."):
                skipped.append({"path": str(d / dn), "reason": "hidden folder"})
            elif exclude and _matches(rel, dn, exclude):
                skipped.append({"path": str(d / dn), "reason": "excluded"})
            else:
                keep.append(dn)
        dirnames[:] = keep
        for fn in sorted(filenames):
            f = d / fn
            rel = f.relative_to(root).as_posix()
            if fn.startswith("."):
                skipped.append({"path": str(f), "reason": "hidden file"})
            elif include and not _matches(rel, fn, include):
                continue  # not asked for: not reported
            elif exclude and _matches(rel, fn, exclude):
                skipped.append({"path": str(f), "reason": "excluded"})
            elif f.is_symlink() and not f.exists():
                skipped.append({"path": str(f), "reason": "broken symbolic link"})
            else:
                files.append(f)
    return files


def _manifest(cm: Any) -> dict[str, list[dict[str, Any]]]:
    """The documents loaded from files, by source path (the store is the manifest)."""
    by_source: dict[str, list[dict[str, Any]]] = {}
    for d in cm.list_documents():
        src = d["metadata"].get("source")
        if isinstance(src, str):
            by_source.setdefault(src, []).append(d)
    return by_source


def ingest_paths(
    cm: Any,
    paths: Iterable[str | os.PathLike[str]],
    include: Sequence[str] = (),
    exclude: Sequence[str] = (),
    importance: float | None = None,
    progress: Callable[[IngestProgress], None] | None = None,
) -> dict[str, Any]:
    """Adds files and folders (recursively) to the store ``cm``, incrementally.

    Each document remembers its source file (``metadata``: source, file_hash, mtime, size,
    records), so the store is its own manifest: an unchanged file (same path and hash) is
    skipped, a changed one replaced, and files deleted from an ingested folder since they
    were ingested are removed. Hidden files and folders, binary files and files matching an
    ``exclude`` glob are skipped and reported; with ``include`` globs only matching files are
    read. A file that fails is reported with its reason and the others go on.

    Returns a summary: files_added, files_replaced, files_unchanged, files_removed,
    documents_added, skipped and failed ([{path, reason}]), files_seen, bytes, tokens_added,
    duplicates_skipped, evicted, compression_ratio and seconds."""
    t0 = time.perf_counter()
    if importance is not None and not 0.0 <= importance <= 1.0:
        raise ValueError(f"importance must be within [0, 1], got {importance}")
    include, exclude = list(include), list(exclude)
    skipped: list[dict[str, str]] = []
    failed: list[dict[str, str]] = []
    files: list[Path] = []
    roots: list[Path] = []
    for raw in paths:
        p = Path(raw).expanduser()
        if p.is_dir():
            root = p.resolve()
            roots.append(root)
            files.extend(_walk(root, include, exclude, skipped))
        elif p.exists():
            files.append(p.resolve())
        else:
            failed.append({"path": str(p), "reason": "no such file or folder"})
    seen: dict[Path, None] = {}
    files = [f for f in files if not (f in seen or seen.setdefault(f, None))]
    sizes = []
    for f in files:
        try:
            sizes.append(f.stat().st_size)
        except OSError:
            sizes.append(0)
    bytes_total = sum(sizes)
    manifest = _manifest(cm)
    summary: dict[str, Any] = {
        "files_seen": len(files),
        "files_added": 0,
        "files_replaced": 0,
        "files_unchanged": 0,
        "files_removed": 0,
        "documents_added": 0,
        "documents_removed": 0,
        "tokens_added": 0,
        "original_tokens": 0,
        "duplicates_skipped": 0,
        "evicted": 0,
        "bytes": 0,
        "original_bytes": 0,
        "stored_bytes": 0,
    }
    bytes_done = 0
    for i, (f, size) in enumerate(zip(files, sizes, strict=True)):
        status = _ingest_one(cm, f, manifest, importance, summary, skipped, failed)
        bytes_done += size
        if progress is not None:
            progress(
                IngestProgress(
                    i + 1,
                    len(files),
                    bytes_done,
                    bytes_total,
                    summary["tokens_added"],
                    str(f),
                    status,
                    time.perf_counter() - t0,
                )
            )
    # Files gone from an ingested folder since their last ingest.
    for root in roots:
        prefix = str(root) + os.sep
        for src, docs in list(manifest.items()):
            if src.startswith(prefix) and not os.path.lexists(src):
                for d in docs:
                    if cm.remove_document(d["document_id"]):
                        summary["documents_removed"] += 1
                summary["files_removed"] += 1
                del manifest[src]
    summary["bytes"] = bytes_done
    summary["skipped"] = skipped
    summary["failed"] = failed
    orig = summary.pop("original_tokens")
    ob, sb = summary.pop("original_bytes"), summary.pop("stored_bytes")
    # context: tokens of the files / tokens kept searchable; storage: bytes / bytes on disk.
    summary["compression_ratio"] = (
        orig / summary["tokens_added"] if summary["tokens_added"] else 1.0
    )
    summary["storage_ratio"] = ob / sb if sb else 1.0
    summary["seconds"] = time.perf_counter() - t0
    return summary


def _ingest_one(
    cm: Any,
    f: Path,
    manifest: dict[str, list[dict[str, Any]]],
    importance: float | None,
    summary: dict[str, Any],
    skipped: list[dict[str, str]],
    failed: list[dict[str, str]],
) -> str:
    src = str(f)
    old = manifest.get(src, [])
    try:
        if f.suffix.lower() in _BINARY_EXT:
            raise _Skip(f"binary file ({f.suffix.lower()})")
        data = _read(f)
        h = file_hash(data)
        if (
            old
            and all(d["metadata"].get("file_hash") == h for d in old)
            and len(old) == old[0]["metadata"].get("records", 1)
        ):
            summary["files_unchanged"] += 1
            return "unchanged"
        records = _load(f, data)
        if not records:
            raise _Skip("empty file")
        st = f.stat()
        # A changed file: its old records go first, so records whose text did not change
        # are stored again with the new file hash (add_document leaves unchanged text as is).
        for d in old:
            if cm.remove_document(d["document_id"]):
                summary["documents_removed"] += 1
        for rec in records:
            meta = dict(rec.metadata)
            meta.update(
                source=src, file_hash=h, mtime=st.st_mtime, size=len(data), records=len(records)
            )
            if rec.key:
                meta["record"] = rec.key
            imp = rec.importance if rec.importance is not None else importance
            r = cm.add_document(rec.text, rec.name(src), meta, rec.content_type, importance=imp)
            summary["tokens_added"] += r["tokens_added"]
            summary["duplicates_skipped"] += r["duplicates_skipped"]
            summary["evicted"] += len(r["evicted"])
            comp = r.get("compression") or {}
            summary["original_tokens"] += comp.get("original_tokens", 0)
            summary["original_bytes"] += comp.get("original_bytes", 0)
            summary["stored_bytes"] += comp.get("stored_bytes", 0)
            if not r["unchanged"]:
                summary["documents_added"] += 1
        manifest[src] = []  # this file is done for this run
    except _Skip as e:
        skipped.append({"path": src, "reason": str(e)})
        return "skipped"
    except (LoadError, MyaiError, ValueError, OSError) as e:
        reason = e.reason if isinstance(e, LoadError) else str(e)
        failed.append({"path": src, "reason": reason})
        return "failed"
    if old:
        summary["files_replaced"] += 1
        return "replaced"
    summary["files_added"] += 1
    return "added"
