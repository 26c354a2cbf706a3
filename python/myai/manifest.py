"""The store's files and what can be read of them without loading the store.

``ContextManager`` (myai.context) keeps a store in ``storage_dir``: ``store.db`` (SQLite) and the
writer's ``LOCK``, beside the vectors' file. This module holds their names, the documents' rows,
the writer lock and ``StoreManifest``: the documents of a store read in a few milliseconds,
where loading the store (its indexes, vectors and embedder) takes a few tenths of a second. An
ingest of unchanged files needs no more (``python -m myai ingest``). It imports neither numpy
nor the store's own module.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import sqlite3
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from myai._formats import FORMATS, STATIC_DIM
from myai.errors import StoreLockedError

__all__ = ["DB_NAME", "LOCK_NAME", "VECTORS_NAME", "NeedsStore", "StoreManifest"]

log = logging.getLogger("myai.context")

FORMAT_VERSION = 1
DB_NAME = "store.db"
LOCK_NAME = "LOCK"
VECTORS_NAME = "vectors.usearch"
# The store trains its zstd dictionary at the first save past this much text.
DICT_MIN_BYTES = 256 * 1024


@dataclass
class Doc:
    id: int
    name: str
    content_hash: str
    content_type: str
    metadata: dict[str, Any]
    importance: float
    pinned: bool
    created: float
    last_access: float
    tokens: int
    stored_tokens: int
    bytes: int
    n_chunks: int
    state: str = "full"  # "full" | "summarized"
    summary: str | None = None
    chunk_ids: list[int] = field(default_factory=list)

    def public(self) -> dict[str, Any]:
        return {
            "document_id": self.id,
            "document_name": self.name,
            "content_type": self.content_type,
            "metadata": dict(self.metadata),
            "importance": self.importance,
            "pinned": self.pinned,
            "created": self.created,
            "last_access": self.last_access,
            "tokens": self.tokens,
            "stored_tokens": self.stored_tokens,
            "bytes": self.bytes,
            "chunks": self.n_chunks,
            "state": self.state,
        }


# The store's parameters (``ContextManager._params``), each named like its argument.
PARAM_KEYS = (
    "max_tokens",
    "chunk_size",
    "chunk_overlap",
    "dedup",
    "near_dup_threshold",
    "auto_cleanup",
    "compression_strategy",
    "min_age_hours",
    "preserve_important",
    "bm25_k1",
    "bm25_b",
)


def enum_value(v: Any) -> str:
    """An enum's value (a DictConfig holds the schema's enums), else the string."""
    return str(getattr(v, "value", v))


def config_args(cfg: Any) -> dict[str, Any]:
    """ContextManager's arguments from a composed configuration, the embedders aside."""
    c = cfg.context
    return dict(
        max_tokens=c.max_tokens,
        chunk_size=c.chunk_size,
        chunk_overlap=c.chunk_overlap,
        storage_dir=c.storage_dir if c.persist_to_disk else None,
        tokenizer=c.tokenizer,
        dedup=c.dedup,
        near_dup_threshold=c.near_dup_threshold,
        auto_cleanup=c.auto_cleanup,
        compression_strategy=enum_value(cfg.compression.strategy),
        min_age_hours=cfg.compression.min_age_hours,
        preserve_important=cfg.compression.preserve_important,
        bm25_k1=cfg.retrieval.bm25.k1,
        bm25_b=cfg.retrieval.bm25.b,
        cache_mb=min(float(cfg.cache.size_mb), 256.0) if cfg.cache.enabled else 4.0,
        vector_dtype=enum_value(cfg.embedder.quantization),
        fusion=enum_value(cfg.retrieval.fusion),
        bm25_weight=float(cfg.retrieval.bm25_weight),
    )


def lock_store(storage_dir: Path) -> int:
    """Takes the store's writer lock (flock on LOCK, which records the holder's pid); returns
    its file descriptor. StoreLockedError when another process holds it."""
    fd = os.open(storage_dir / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        try:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip()
        finally:
            os.close(fd)
        raise StoreLockedError(
            f"the context store {storage_dir} is open for writing by another process"
            f"{f' (pid {holder})' if holder else ''}; open it with readonly=True to read it"
        ) from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, str(os.getpid()).encode(), 0)
    return fd


def unlock_store(fd: int) -> None:
    with contextlib.suppress(OSError):
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def read_docs(db: sqlite3.Connection) -> Iterator[Doc]:
    for r in db.execute(
        "SELECT id, name, content_hash, content_type, metadata, importance, pinned, created,"
        " last_access, tokens, stored_tokens, bytes, n_chunks, state, summary FROM documents"
    ):
        yield Doc(r[0], r[1], r[2], r[3], json.loads(r[4]), r[5], bool(r[6]), r[7], r[8],
                   r[9], r[10], r[11], r[12], r[13], r[14])  # fmt: skip


def public_records(docs: Iterable[Doc]) -> list[dict[str, Any]]:
    """Documents' records, oldest first (``list_documents``)."""
    return [d.public() for d in sorted(docs, key=lambda d: (d.created, d.id))]


class NeedsStore(Exception):
    """A StoreManifest was asked to change the store: close it and open the store itself."""


def configured_embedder_key(cfg: Any) -> str | None:
    """The key (``name:dim``) of the vectors ``ContextManager.from_config(cfg)`` keeps, "" for
    none, None where it is known only by loading the embedder."""
    name = enum_value(cfg.embedder.name)
    if name == "none" or not cfg.retrieval.hybrid:
        return ""
    if name == "static":  # built with its default dimension
        return f"static:{STATIC_DIM}"
    return None


class StoreManifest:
    """A store's documents, read without loading the store: what an ingest of unchanged files
    needs (its manifest), in milliseconds where loading the store takes a few tenths of a second.

    ``StoreManifest.open(cfg)`` gives one only where opening the configured store with
    ``ContextManager.from_config(cfg)`` would write nothing: the store exists with the configured
    parameters, its index snapshot is current, its vectors are current and made by the
    configured embedder, and its zstd dictionary is trained (or not due yet); else None. Left
    to the store's next open: a corrupt snapshot or vectors file (rebuilt then) and its
    warnings (a tokenizer other than the store's, an unavailable embedder).

    It holds the writer lock while open (StoreLockedError as the store would raise), like the
    writer it stands for. ``list_documents`` is the store's; ``add_document`` and
    ``remove_document`` raise NeedsStore, before anything is changed: the caller closes the
    manifest and opens the store.
    """

    def __init__(self, storage_dir: Path, lock_fd: int, docs: list[Doc]) -> None:
        self.storage_dir = storage_dir
        self._lock_fd: int | None = lock_fd
        self._docs = docs

    @classmethod
    def open(cls, cfg: Any) -> StoreManifest | None:
        key = configured_embedder_key(cfg)
        args = config_args(cfg)
        if key is None or args["storage_dir"] is None:
            return None
        path = Path(args["storage_dir"]).expanduser()
        db_path = path / DB_NAME
        try:
            if db_path.stat().st_size == 0:
                return None
        except OSError:
            return None
        fd = lock_store(path)
        docs: list[Doc] | None = None
        try:
            db = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, isolation_level=None)
            try:
                db.execute("PRAGMA busy_timeout=5000")
                db.execute("BEGIN")
                if is_current(db, path, args, key):
                    docs = list(read_docs(db))
            finally:
                db.close()
        except (sqlite3.Error, ValueError, TypeError, KeyError) as e:
            log.debug("%s: opening the store itself (%s)", path, e)
            docs = None
        if docs is None:
            unlock_store(fd)
            return None
        return cls(path, fd, docs)

    def list_documents(self) -> list[dict[str, Any]]:
        """Every document's record, oldest first (as ``ContextManager.list_documents``)."""
        return public_records(self._docs)

    def add_document(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        raise NeedsStore("add_document")

    def remove_document(self, document_id: int) -> bool:
        raise NeedsStore("remove_document")

    def close(self) -> None:
        """Releases the writer lock."""
        if self._lock_fd is not None:
            unlock_store(self._lock_fd)
            self._lock_fd = None

    def __enter__(self) -> StoreManifest:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        with contextlib.suppress(Exception):
            self.close()


def is_current(db: sqlite3.Connection, path: Path, args: dict[str, Any], key: str) -> bool:
    """Whether ContextManager's open of this store with ``args`` (its embedder's vectors keyed
    ``key``, "" for none) and its close would write nothing; see StoreManifest."""
    names = {r[0] for r in db.execute("SELECT name FROM sqlite_master")}
    if not {"meta", "documents", "chunks", "blocks", "documents_name", "chunks_doc"} <= names:
        return False  # the store's open creates what is missing
    meta = dict(
        db.execute(
            "SELECT key, value FROM meta WHERE key IN ('format', 'params', 'version',"
            " 'snapshot_version', 'embedder', 'vectors_version', 'vectors_format')"
        ).fetchall()
    )
    if meta.get("format") is None or int(meta["format"]) > FORMAT_VERSION:
        return False
    if json.loads(meta["params"]) != {k: args[k] for k in PARAM_KEYS}:
        return False  # the open records the new parameters
    version = int(meta.get("version") or 0)
    if meta.get("snapshot_version") is None or int(meta["snapshot_version"]) != version:
        return False  # the open rebuilds the indexes, the close saves them
    if db.execute("SELECT 1 FROM meta WHERE key='zdict'").fetchone() is None:
        n, size = db.execute(
            "SELECT count(*), coalesce(sum(size), 0) FROM blocks WHERE dict=0"
        ).fetchone()
        if size >= DICT_MIN_BYTES and n >= 16:
            return False  # the close trains the dictionary
    if key:
        dtype = args["vector_dtype"]
        fmt = meta.get("vectors_format") or ("" if dtype == "i8" else dtype)
        vv = meta.get("vectors_version")
        if (
            meta.get("embedder") != key
            or fmt != FORMATS.get(dtype)
            or vv is None
            or int(vv) != version
            or not (path / VECTORS_NAME).is_file()
        ):
            return False  # the open re-embeds, or refuses another embedder's vectors
    return True
