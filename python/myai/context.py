"""The context store: ``ContextManager``, myai's million-token memory.

A document goes through the core (normalise → chunk → count → dedup → index) and is persisted
in ``storage_dir``:

``store.db`` (SQLite, WAL, synchronous=FULL)
    ``documents`` and ``chunks`` rows; ``blocks``: each chunk's own segment (its text not
    shared with the previous chunk, so overlaps are stored once) packed with its neighbours
    into blocks of about 6 KB, zstd-compressed (with a dictionary trained on the store's own
    text at its first save past 256 KB); a segment seen before is not stored again, its chunk
    points at the first copy;
    ``meta``: the format version, the store's parameters, the zstd dictionary, the compression
    monitor, and a snapshot of the BM25 and near-duplicate indexes with the store version it
    reflects.
``LOCK``
    held (flock) by the one writer; a second writer gets StoreLockedError.

Every mutation is one SQLite transaction that also bumps ``meta.version``; ``add_document``
returns only after its commit is on disk, so a kill at any moment keeps every acknowledged
document. Opening loads the index snapshot when its version matches, else rebuilds the indexes
from the stored chunks (after a crash, or when the snapshot is corrupt) and says so in the log.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import json
import logging
import math
import os
import sqlite3
import threading
import time
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Generic, TypeVar, cast

from myai import _core
from myai._formats import FORMATS
from myai.compression import CompressionMonitor, sample_sentences
from myai.content import CONTENT_TYPES, detect_content_type, to_text
from myai.errors import (
    CapacityError,
    CorruptStoreError,
    EmbedderMismatchError,
    MyaiError,
    StoreLockedError,
)
from myai.retrieval import RERANK_BM25_WEIGHT, RERANK_DEPTH, WEIGHT_BM25, blend, fuse
from myai.summarize import key_sentences, keywords, ranked_sentences

if TYPE_CHECKING:
    from myai.vectors import VectorIndex

__all__ = ["ContextManager", "MillionTokenContextManager", "VectorMemory"]

log = logging.getLogger("myai.context")
_T = TypeVar("_T")

FORMAT_VERSION = 1
DB_NAME = "store.db"
LOCK_NAME = "LOCK"

# Importance per the seed's hierarchy.
IMPORTANCE_CORRECTION = 0.95
IMPORTANCE_TAUGHT = 0.75
IMPORTANCE_DOCUMENT = 0.5
PIN_THRESHOLD = 0.7
# Importance buys recency in eviction: up to this many seconds at importance 1.0.
IMPORTANCE_CREDIT_S = 7 * 24 * 3600.0
# Ranking prior: score * (1 + PRIOR * (importance - 0.5)).
IMPORTANCE_PRIOR = 0.4
SEARCH_MODES = ("bm25", "vector", "hybrid")
# Segments are packed into zstd frames of about this many bytes: with the trained dictionary
# Gutenberg text stores at 2.51:1 and a random chunk reads in ~19 us (8 KB: 2.50:1, 23 us).
BLOCK_BYTES = 6144
VECTORS_NAME = "vectors.usearch"
# The store trains its zstd dictionary at the first save past this much text.
DICT_MIN_BYTES = 256 * 1024
# Content whose lines repeat: adaptive compression collapses repeated lines in these.
LINE_ORIENTED = frozenset({"log", "data", "code", "conversation"})

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value BLOB);
CREATE TABLE IF NOT EXISTS documents(
    id INTEGER PRIMARY KEY, name TEXT NOT NULL, content_hash TEXT NOT NULL,
    content_type TEXT NOT NULL, metadata TEXT NOT NULL, importance REAL NOT NULL,
    pinned INTEGER NOT NULL, created REAL NOT NULL, last_access REAL NOT NULL,
    tokens INTEGER NOT NULL, stored_tokens INTEGER NOT NULL, bytes INTEGER NOT NULL,
    n_chunks INTEGER NOT NULL, state TEXT NOT NULL, summary TEXT);
CREATE INDEX IF NOT EXISTS documents_name ON documents(name);
CREATE TABLE IF NOT EXISTS chunks(
    id INTEGER PRIMARY KEY, doc_id INTEGER NOT NULL, ord INTEGER NOT NULL,
    start INTEGER NOT NULL, end INTEGER NOT NULL, seg_start INTEGER NOT NULL,
    tokens INTEGER NOT NULL, hash INTEGER NOT NULL, indexed INTEGER NOT NULL,
    blk INTEGER NOT NULL, off INTEGER NOT NULL, len INTEGER NOT NULL,
    seg_hash INTEGER NOT NULL, searchable TEXT);
CREATE INDEX IF NOT EXISTS chunks_doc ON chunks(doc_id);
CREATE TABLE IF NOT EXISTS blocks(
    id INTEGER PRIMARY KEY, refs INTEGER NOT NULL, dict INTEGER NOT NULL,
    size INTEGER NOT NULL, data BLOB NOT NULL);
"""


@dataclass
class _Doc:
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


@dataclass
class _Chunk:
    doc_id: int
    ord: int
    start: int
    end: int
    seg_start: int
    tokens: int
    blk: int
    off: int
    len: int
    seg_hash: int
    indexed: bool


def _i64(h: int) -> int:
    """A u64 hash as SQLite's signed 64-bit integer."""
    return h - (1 << 64) if h >= (1 << 63) else h


class _TextCache:
    """Decompressed chunk texts, least recently used first out, bounded in bytes."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._d: OrderedDict[int, str] = OrderedDict()
        self.size = 0

    def get(self, key: int) -> str | None:
        v = self._d.get(key)
        if v is not None:
            self._d.move_to_end(key)
        return v

    def put(self, key: int, text: str) -> None:
        if self.max_bytes <= 0:
            return
        old = self._d.pop(key, None)
        if old is not None:
            self.size -= len(old)
        self._d[key] = text
        self.size += len(text)
        while self.size > self.max_bytes and self._d:
            _, v = self._d.popitem(last=False)
            self.size -= len(v)

    def discard(self, key: int) -> None:
        v = self._d.pop(key, None)
        if v is not None:
            self.size -= len(v)


class _LoadedOnUse(Generic[_T]):
    """An index attribute of a ContextManager (kept in ``NAME_obj``) that first loads what
    opening the store left for later."""

    def __set_name__(self, owner: type, name: str) -> None:
        self._attr = f"{name}_obj"

    def __get__(self, obj: Any, owner: type | None = None) -> _T:
        if obj._deferred:
            obj._ensure_indexes()
        return cast(_T, getattr(obj, self._attr))

    def __set__(self, obj: Any, value: _T) -> None:
        setattr(obj, self._attr, value)


class ContextManager:
    """A store of up to ``max_tokens`` tokens of documents, searchable in microseconds.

    ``storage_dir=None`` keeps everything in memory. The store is thread-safe; one process
    writes, others may open it with ``readonly=True``.
    """

    def __init__(
        self,
        max_tokens: int = 1_048_576,
        chunk_size: int = 2048,
        chunk_overlap: int = 100,
        storage_dir: str | os.PathLike[str] | None = None,
        *,
        tokenizer: _core.Tokenizer | str | None = "auto",
        dedup: bool = True,
        near_dup_threshold: float = 0.85,
        auto_cleanup: bool = True,
        compression_strategy: str = "adaptive",
        min_age_hours: float = 24.0,
        preserve_important: bool = True,
        bm25_k1: float = 1.2,
        bm25_b: float = 0.75,
        cache_mb: float = 64.0,
        readonly: bool = False,
        monitor: CompressionMonitor | None = None,
        embedder: Any = None,
        vector_dtype: str = "f32",
        vector_view: bool = False,
        fusion: str = "rrf",
        bm25_weight: float = WEIGHT_BM25,
        rerank_embedder: Any = None,
        reembed: bool = False,
    ) -> None:
        _check_int("max_tokens", max_tokens, 1)
        _check_int("chunk_size", chunk_size, 1)
        _check_int("chunk_overlap", chunk_overlap, 0)
        if chunk_overlap >= chunk_size:
            raise ValueError(
                f"chunk_overlap ({chunk_overlap}) must be smaller than chunk_size ({chunk_size})"
            )
        if not 0.0 < near_dup_threshold <= 1.0:
            raise ValueError(f"near_dup_threshold must be in (0, 1], got {near_dup_threshold}")
        if compression_strategy not in ("conservative", "adaptive", "aggressive"):
            raise ValueError(
                "compression_strategy must be conservative, adaptive or aggressive, "
                f"got {compression_strategy!r}"
            )
        self.max_tokens = max_tokens
        self.chunk_size = chunk_size
        self.chunk_overlap = chunk_overlap
        self.dedup = dedup
        self.near_dup_threshold = near_dup_threshold
        self.auto_cleanup = auto_cleanup
        self.compression_strategy = compression_strategy
        self.min_age_hours = min_age_hours
        self.preserve_important = preserve_important
        self.readonly = readonly
        self._lock = threading.RLock()
        # "auto" (the default model's tokenizer: reading its GGUF costs ~50 ms) is resolved when
        # first used, which a re-ingest of unchanged files never does; a tokenizer file named in
        # the configuration is read now, so that a bad one is reported at once.
        self._tokenizer_spec = tokenizer
        self._tokenizer: _core.Tokenizer | None = (
            None if tokenizer == "auto" else _resolve_tokenizer(tokenizer)
        )
        self._stored_tokenizer: str | None = None  # what the store counted with
        self.monitor = monitor or CompressionMonitor()
        self.storage_dir = Path(storage_dir).expanduser() if storage_dir is not None else None
        self._bm25_k1, self._bm25_b = bm25_k1, bm25_b
        self._bm25_obj = _core.Bm25Index(k1=bm25_k1, b=bm25_b)
        self._near_obj = _core.NearDupIndex(threshold=near_dup_threshold)
        # A writer opening a store with a valid snapshot loads the indexes and vectors when first
        # needed (a re-ingest of unchanged files needs neither): see _ensure_indexes.
        self._deferred = False  # the snapshot (and the vectors) left to load
        self._exact: dict[int, int] = {}  # chunk hash -> indexed chunk id
        self._docs: dict[int, _Doc] = {}
        self._by_name: dict[str, int] = {}
        self._chunks: dict[int, _Chunk] = {}
        self._cache = _TextCache(int(cache_mb * 1024 * 1024))
        self._next_chunk = 1
        self._next_doc = 1
        self._version = 0
        self._changes = 0  # mutations in this process (the version of an in-memory store)
        self._snapshot_version = -1
        # Blocks written before the store has its dictionary: fast level 1, recompressed with the
        # dictionary at the first big save.
        self._plain = _core.ZstdCodec(1)
        self._codec: _core.ZstdCodec | None = None  # with the store's trained dictionary
        self._mem_blocks: dict[int, tuple[int, bytes]] = {}  # in-memory store: id -> (dict, data)
        self._block_refs: dict[int, int] = {}  # chunks pointing into each block
        self._block_cache: OrderedDict[int, bytes] = OrderedDict()  # decompressed, a few
        self._seg_loc: dict[int, tuple[int, int, int]] = {}  # segment hash -> (block, off, len)
        self._next_block = 1
        self._importances: set[float] | None = None  # distinct importances, None when stale
        self._access_dirty: set[int] = set()
        self._evictions = 0
        self._searches = 0
        self._lock_fd: int | None = None
        self._db: sqlite3.Connection | None = None
        self._db_path: Path | None = None
        self._closed = False
        # Dense vectors (None: BM25 only). The embedder's name and dim are stored with the store.
        self.embedder = embedder
        self.rerank_embedder = rerank_embedder
        self.vector_dtype = vector_dtype
        self.vector_view = vector_view
        if fusion not in ("rrf", "weighted"):
            raise ValueError(f"fusion must be rrf or weighted, got {fusion!r}")
        self.fusion = fusion
        if not 0.0 <= bm25_weight <= 1.0:
            raise ValueError(f"bm25_weight must be within [0, 1], got {bm25_weight}")
        self.bm25_weight = bm25_weight
        self._vectors_obj: VectorIndex | None = None
        self._query_cache: OrderedDict[str, Any] = OrderedDict()
        self._reembed = reembed
        if self.storage_dir is not None:
            self._open_storage()
        elif embedder is not None:
            from myai.vectors import VectorIndex

            self._vectors_obj = VectorIndex(embedder.dim, vector_dtype)

    @property
    def tokenizer(self) -> _core.Tokenizer:
        """What the store counts tokens with (resolved on first use)."""
        tok = self._tokenizer
        if tok is None:
            with self._lock:
                if self._tokenizer is None:
                    self._tokenizer = _resolve_tokenizer(self._tokenizer_spec)
                    self._check_tokenizer()
                tok = self._tokenizer
        return tok

    def _check_tokenizer(self) -> None:
        """Warns when the store's tokens were counted with another tokenizer than this one."""
        tok, stored = self._tokenizer, self._stored_tokenizer
        if tok is not None and stored and stored != tok.name:
            log.warning(
                "store %s counted tokens with %s; now counting with %s",
                self.storage_dir,
                stored,
                tok.name,
            )

    # ------------------------------------------------------------------ construction

    @classmethod
    def open(cls, storage_dir: str | os.PathLike[str], **kwargs: Any) -> ContextManager:
        """Opens an existing store with the parameters it was created with (``kwargs``
        override the runtime ones: tokenizer, cache_mb, readonly, auto_cleanup, ...)."""
        path = Path(storage_dir).expanduser()
        db = path / DB_NAME
        if not db.is_file():
            raise FileNotFoundError(f"no context store at {path} ({DB_NAME} is missing)")
        params = _read_params(db)
        params.update(kwargs)
        return cls(storage_dir=path, **params)

    @classmethod
    def from_config(cls, cfg: Any, **kwargs: Any) -> ContextManager:
        """A store configured by a composed myai configuration (DictConfig or MyaiConfig):
        context, compression, retrieval and embedder groups. Model files (the extracted
        MiniLM, the derived static table) live under ``data_dir/models`` or ``$MYAI_MODELS``."""
        c = cfg.context
        storage = c.storage_dir if c.persist_to_disk else None
        emb_name = str(getattr(cfg.embedder.name, "value", cfg.embedder.name))
        embedder = rerank = None
        models = os.environ.get("MYAI_MODELS") or cfg.data_dir
        if emb_name != "none" and cfg.retrieval.hybrid and "embedder" not in kwargs:
            on_disk = kwargs.get("storage_dir", storage) is not None
            embedder, rerank = _config_embedders(cfg, emb_name, models, lazy=on_disk)
        args: dict[str, Any] = dict(
            max_tokens=c.max_tokens,
            chunk_size=c.chunk_size,
            chunk_overlap=c.chunk_overlap,
            storage_dir=storage,
            tokenizer=c.tokenizer,
            dedup=c.dedup,
            near_dup_threshold=c.near_dup_threshold,
            auto_cleanup=c.auto_cleanup,
            compression_strategy=str(
                getattr(cfg.compression.strategy, "value", cfg.compression.strategy)
            ),
            min_age_hours=cfg.compression.min_age_hours,
            preserve_important=cfg.compression.preserve_important,
            bm25_k1=cfg.retrieval.bm25.k1,
            bm25_b=cfg.retrieval.bm25.b,
            cache_mb=min(float(cfg.cache.size_mb), 256.0) if cfg.cache.enabled else 4.0,
            embedder=embedder,
            rerank_embedder=rerank,
            vector_dtype=str(
                getattr(cfg.embedder.quantization, "value", cfg.embedder.quantization)
            ),
            vector_view=bool(getattr(cfg.embedder, "memory_map", False)),
            fusion=str(getattr(cfg.retrieval.fusion, "value", cfg.retrieval.fusion)),
            bm25_weight=float(cfg.retrieval.bm25_weight),
        )
        args.update(kwargs)
        return cls(**args)

    def _open_storage(self) -> None:
        assert self.storage_dir is not None
        self._db_path = self.storage_dir / DB_NAME
        if self.readonly:
            if not self._db_path.is_file():
                raise FileNotFoundError(f"no context store at {self.storage_dir}")
            uri = f"file:{self._db_path}?mode=ro"
            self._db = _connect(uri, self._db_path, uri=True)
        else:
            if self._db_path.is_file() and self._db_path.stat().st_size == 0:
                raise CorruptStoreError(
                    f"{self._db_path}: the store's database is empty (truncated?); "
                    "ContextManager.repair(storage_dir) starts it again from what is intact",
                    path=str(self._db_path),
                )
            self.storage_dir.mkdir(parents=True, exist_ok=True)
            self._acquire_lock()
            try:
                self._db = _connect(str(self._db_path), self._db_path)
                with self._db:
                    self._db.executescript(_SCHEMA)
                    self._init_meta()
            except BaseException:
                self._release_lock()
                raise
        self._load()

    def _acquire_lock(self) -> None:
        assert self.storage_dir is not None
        path = self.storage_dir / LOCK_NAME
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            try:
                holder = os.pread(fd, 32, 0).decode(errors="replace").strip()
            finally:
                os.close(fd)
            raise StoreLockedError(
                f"the context store {self.storage_dir} is open for writing by another process"
                f"{f' (pid {holder})' if holder else ''}; open it with readonly=True to read it"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        self._lock_fd = fd

    def _release_lock(self) -> None:
        if self._lock_fd is not None:
            with contextlib.suppress(OSError):
                fcntl.flock(self._lock_fd, fcntl.LOCK_UN)
                os.close(self._lock_fd)
            self._lock_fd = None

    def _params(self) -> dict[str, Any]:
        return {
            "max_tokens": self.max_tokens,
            "chunk_size": self.chunk_size,
            "chunk_overlap": self.chunk_overlap,
            "dedup": self.dedup,
            "near_dup_threshold": self.near_dup_threshold,
            "auto_cleanup": self.auto_cleanup,
            "compression_strategy": self.compression_strategy,
            "min_age_hours": self.min_age_hours,
            "preserve_important": self.preserve_important,
            "bm25_k1": self._bm25_k1,
            "bm25_b": self._bm25_b,
        }

    def _init_meta(self) -> None:
        db = self._db
        assert db is not None
        row = db.execute("SELECT value FROM meta WHERE key='format'").fetchone()
        if row is None:
            db.executemany(
                "INSERT INTO meta(key, value) VALUES (?, ?)",
                [
                    ("format", str(FORMAT_VERSION)),
                    ("params", json.dumps(self._params())),
                    ("tokenizer", self.tokenizer.name),
                    ("version", "0"),
                ],
            )
        else:
            if int(row[0]) > FORMAT_VERSION:
                raise CorruptStoreError(
                    f"{self._db_path}: store format {int(row[0])} is newer than this myai "
                    f"({FORMAT_VERSION}); upgrade myai",
                    path=str(self._db_path),
                )
            db.execute("UPDATE meta SET value=? WHERE key='params'", (json.dumps(self._params()),))

    # ------------------------------------------------------------------ loading

    def _meta(self, key: str) -> Any:
        assert self._db is not None
        row = self._db.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return row[0] if row else None

    def _load(self) -> None:
        db = self._db
        assert db is not None
        t0 = time.perf_counter()
        self._importances = None
        try:
            self._version = int(self._meta("version") or 0)
            self._stored_tokenizer = self._meta("tokenizer")
            self._check_tokenizer()  # else when the tokenizer is first used
            zd = self._meta("zdict")
            if zd is not None:
                self._codec = _core.ZstdCodec(3, bytes(zd))
            mon = self._meta("monitor")
            if mon:
                self.monitor.load_state(json.loads(mon))
            for r in db.execute(
                "SELECT id, name, content_hash, content_type, metadata, importance, pinned, created,"
                " last_access, tokens, stored_tokens, bytes, n_chunks, state, summary"
                " FROM documents"
            ):
                d = _Doc(
                    r[0],
                    r[1],
                    r[2],
                    r[3],
                    json.loads(r[4]),
                    r[5],
                    bool(r[6]),
                    r[7],
                    r[8],
                    r[9],
                    r[10],
                    r[11],
                    r[12],
                    r[13],
                    r[14],
                )
                self._docs[d.id] = d
                self._by_name[d.name] = d.id
                self._next_doc = max(self._next_doc, d.id + 1)
            exact: dict[int, int] = {}
            for r in db.execute(
                "SELECT id, doc_id, ord, start, end, seg_start, tokens, hash, indexed, blk, off,"
                " len, seg_hash FROM chunks ORDER BY id"
            ):
                c = _Chunk(
                    r[1], r[2], r[3], r[4], r[5], r[6], r[9], r[10], r[11], r[12], bool(r[8])
                )
                self._chunks[r[0]] = c
                d = self._docs.get(c.doc_id)
                if d is not None:
                    d.chunk_ids.append(r[0])
                if c.ord >= 0:
                    self._seg_loc.setdefault(c.seg_hash, (c.blk, c.off, c.len))
                    if c.indexed:
                        exact.setdefault(r[7] & ((1 << 64) - 1), r[0])
                self._next_chunk = max(self._next_chunk, r[0] + 1)
            self._exact = exact
            for r in db.execute("SELECT id, refs FROM blocks"):
                self._block_refs[r[0]] = r[1]
                self._next_block = max(self._next_block, r[0] + 1)
        except sqlite3.DatabaseError as e:
            raise CorruptStoreError(
                f"{self._db_path}: the store's database is unreadable ({e}); "
                "ContextManager.repair(storage_dir) salvages what is intact",
                path=str(self._db_path),
            ) from None
        snap_v = self._meta("snapshot_version")
        snapshot_ok = snap_v is not None and int(snap_v) == self._version
        vectors_ok = self.embedder is not None and self._vectors_file_ok()
        self._deferred = False
        if not self.readonly and snapshot_ok and (self.embedder is None or vectors_ok):
            # Nothing to rebuild: the snapshot and the vectors load when first needed. Only a
            # writer defers (it holds the lock, so the snapshot cannot change meanwhile).
            self._deferred = True
            self._snapshot_version = self._version
        else:
            self._load_indexes(snapshot_ok)
        log.debug("opened %s in %.1f ms", self.storage_dir, (time.perf_counter() - t0) * 1000)

    def _load_indexes(self, snapshot_ok: bool) -> None:
        """The BM25 and near-duplicate indexes from the snapshot (else rebuilt from the
        chunks), then the vectors (else re-embedded)."""
        loaded = False
        if snapshot_ok:
            try:
                self._bm25_obj = _core.Bm25Index.from_bytes(bytes(self._meta("bm25")))
                self._near_obj = _core.NearDupIndex.from_bytes(bytes(self._meta("neardup")))
                self._snapshot_version = self._version
                loaded = True
            except (_core.CorruptDataError, TypeError) as e:
                log.warning(
                    "index snapshot of %s is corrupt (%s); rebuilding it", self.storage_dir, e
                )
        if self.embedder is not None:
            self._load_vectors()
        if not loaded:
            if self._chunks:
                log.info(
                    "rebuilding the indexes of %s from %d chunks",
                    self.storage_dir,
                    len(self._chunks),
                )
            self._rebuild_indexes()

    def _ensure_indexes(self) -> None:
        """Loads what opening left for later (before anything reads or changes the indexes)."""
        if not self._deferred:
            return
        with self._lock:
            if not self._deferred:
                return
            self._deferred = False
            try:
                self._load_indexes(snapshot_ok=True)  # deferred only when it matched
            except BaseException:
                self._deferred = True
                raise

    _bm25: _LoadedOnUse[_core.Bm25Index] = _LoadedOnUse()
    _near: _LoadedOnUse[_core.NearDupIndex] = _LoadedOnUse()
    _vectors: _LoadedOnUse[VectorIndex | None] = _LoadedOnUse()

    def _vectors_file_ok(self) -> bool:
        """Whether the saved vectors match the store, its version and the embedder (the cheap
        checks: names and versions; a damaged file is found when it is loaded)."""
        assert self.storage_dir is not None
        fmt = self._meta("vectors_format")
        vv = self._meta("vectors_version")
        return (
            self._meta("embedder") == self._embedder_key()
            and fmt == FORMATS[self.vector_dtype]
            and vv is not None
            and int(vv) == self._version
            and (self.storage_dir / VECTORS_NAME).is_file()
        )

    def _embedder_key(self) -> str:
        return f"{self.embedder.name}:{self.embedder.dim}"

    def _load_vectors(self) -> None:
        """Loads the saved vectors when they match the store and its embedder, else re-embeds
        the indexed chunks; a store embedded by another embedder is refused unless
        ``reembed=True``, so vectors of two models are never mixed."""
        assert self.embedder is not None and self.storage_dir is not None
        stored = self._meta("embedder")
        want = self._embedder_key()
        if stored is not None and stored != want and not self._reembed:
            raise EmbedderMismatchError(
                f"the store {self.storage_dir} was embedded with {stored}, not {want}: "
                f"configure embedder {str(stored).split(':')[0]}, or open it with "
                "reembed=True to re-embed its chunks with the configured one"
            )
        path = self.storage_dir / VECTORS_NAME
        vv = self._meta("vectors_version")
        # Stores saved before the format was recorded hold f32/f16 as is, i8 in another layout.
        fmt = self._meta("vectors_format") or (
            "" if self.vector_dtype == "i8" else self.vector_dtype
        )
        same_format = fmt == FORMATS[self.vector_dtype]
        if (
            stored == want
            and same_format
            and vv is not None
            and int(vv) == self._version
            and path.is_file()
        ):
            from myai.vectors import VectorIndex

            try:
                self._vectors_obj = VectorIndex.load(
                    path, self.embedder.dim, self.vector_dtype, view=self.vector_view
                )
                return
            except CorruptStoreError as e:
                log.warning("%s; re-embedding the chunks", e)
        self._rebuild_vectors()
        if not self.readonly and self._db is not None:
            with self._db:
                self._db.execute(
                    "INSERT OR REPLACE INTO meta(key, value) VALUES ('embedder', ?)", (want,)
                )
                self._db.execute("DELETE FROM meta WHERE key='vectors_version'")

    def _rebuild_vectors(self) -> None:
        from myai.vectors import VectorIndex

        vectors = self._vectors_obj = VectorIndex(self.embedder.dim, self.vector_dtype)
        overrides = self._searchable_overrides()
        ids = [c for c, ch in self._chunks.items() if ch.indexed]
        if ids:
            log.info(
                "embedding %d chunks of %s with %s",
                len(ids),
                self.storage_dir,
                self._embedder_key(),
            )
        for i in range(0, len(ids), 512):
            batch = ids[i : i + 512]
            texts = [
                overrides.get(c)
                or (self._chunk_text(c) if self._chunks[c].ord >= 0
                    else self._docs[self._chunks[c].doc_id].summary or "")
                for c in batch
            ]  # fmt: skip
            vectors.add(batch, self.embedder.embed(texts))

    def _rebuild_indexes(self) -> None:
        bm25 = self._bm25_obj = _core.Bm25Index(k1=self._bm25_k1, b=self._bm25_b)
        near = self._near_obj = _core.NearDupIndex(threshold=self.near_dup_threshold)
        ids, docs, texts, near_ids, near_texts = [], [], [], [], []
        searchable = self._searchable_overrides()
        for cid, c in self._chunks.items():
            if not c.indexed:
                continue
            text = searchable.get(cid)
            raw = self._chunk_text(cid) if c.ord >= 0 else ""
            ids.append(cid)
            docs.append(c.doc_id)
            texts.append(text if text is not None else raw)
            if c.ord >= 0 and self.dedup:
                near_ids.append(cid)
                near_texts.append(raw)
        if ids:
            bm25.add_batch(ids, docs, texts)
        if near_ids:
            near.add_batch(near_ids, near_texts)

    def _searchable_overrides(self) -> dict[int, str]:
        if self._db is None:
            return {}
        return {
            r[0]: r[1]
            for r in self._db.execute(
                "SELECT id, searchable FROM chunks WHERE searchable IS NOT NULL"
            )
        }

    # ------------------------------------------------------------------ blocks

    def _train_dictionary(self) -> None:
        """Trains the store's zstd dictionary on a sample of its blocks and recompresses them
        all with it (once, at the first save past DICT_MIN_BYTES of text)."""
        if self._db is not None:
            rows = list(self._db.execute("SELECT id, dict, data FROM blocks"))
        else:
            rows = [(k, v[0], v[1]) for k, v in self._mem_blocks.items()]
        raw = [(bid, self._plain.decompress(data)) for bid, flag, data in rows if not flag]
        if sum(len(r) for _, r in raw) < DICT_MIN_BYTES or len(raw) < 16:
            return
        step = max(1, len(raw) // 256)
        try:
            d = _core.ZstdCodec.train([r for _, r in raw[::step][:256]], 64 * 1024)
        except ValueError as e:
            log.debug("no zstd dictionary trained: %s", e)
            return
        codec = _core.ZstdCodec(3, d)
        comp = codec.compress_batch([r for _, r in raw])
        if self._db is not None:
            with self._db:
                self._db.execute(
                    "INSERT OR REPLACE INTO meta(key, value) VALUES ('zdict', ?)", (d,)
                )
                self._db.executemany(
                    "UPDATE blocks SET dict=1, data=? WHERE id=?",
                    [(c, bid) for (bid, _), c in zip(raw, comp, strict=True)],
                )
        else:
            for (bid, _), c in zip(raw, comp, strict=True):
                self._mem_blocks[bid] = (1, c)
        self._codec = codec
        log.info(
            "trained a zstd dictionary for %s on %d blocks", self.storage_dir or "memory", len(raw)
        )

    def _block(self, bid: int) -> bytes:
        """A block's text, decompressed (the last few are kept)."""
        data = self._block_cache.get(bid)
        if data is not None:
            self._block_cache.move_to_end(bid)
            return data
        if self._db is None:
            flag, comp = self._mem_blocks[bid]
        else:
            row = self._db.execute("SELECT dict, data FROM blocks WHERE id=?", (bid,)).fetchone()
            if row is None:
                raise CorruptStoreError(
                    f"{self._db_path}: block {bid} is missing", path=str(self._db_path)
                )
            flag, comp = row
        codec = self._codec if flag else self._plain
        if codec is None:
            raise CorruptStoreError(
                f"{self._db_path}: block {bid} needs the store's zstd dictionary, which is missing",
                path=str(self._db_path),
            )
        try:
            data = codec.decompress(comp)
        except _core.CorruptDataError as e:
            raise CorruptStoreError(
                f"{self._db_path or 'memory'}: block {bid} does not decompress ({e})",
                path=str(self._db_path or ""),
            ) from None
        self._block_cache[bid] = data
        if len(self._block_cache) > 16:
            self._block_cache.popitem(last=False)
        return data

    def _segment(self, c: _Chunk) -> bytes:
        return self._block(c.blk)[c.off : c.off + c.len]

    def _chunk_text(self, cid: int) -> str:
        cached = self._cache.get(cid)
        if cached is not None:
            return cached
        c = self._chunks[cid]
        # A chunk is the tail of the segments before it (its overlap) plus its own segment;
        # the chunks of a document have consecutive ids.
        parts: list[bytes] = [self._segment(c)]
        need = c.seg_start - c.start
        prev = cid - 1
        while need > 0:
            pc = self._chunks.get(prev)
            if pc is None or pc.doc_id != c.doc_id:
                raise CorruptStoreError(
                    f"{self._db_path or 'memory'}: chunk {cid} misses the chunk before it",
                    path=str(self._db_path or ""),
                )
            seg = self._segment(pc)
            take = min(need, len(seg))
            parts.insert(0, seg[len(seg) - take :])
            need -= take
            prev -= 1
        text = b"".join(parts).decode("utf-8")
        self._cache.put(cid, text)
        return text

    # ------------------------------------------------------------------ adding

    def add_document(
        self,
        content: str | bytes,
        document_name: str | None = None,
        metadata: dict[str, Any] | None = None,
        content_type: str | None = None,
        *,
        importance: float | None = None,
        pinned: bool | None = None,
    ) -> dict[str, Any]:
        """Adds (or replaces, by name) a document; returns document_id, tokens_added,
        chunks_created, duplicates_skipped, evicted and the compression analysis.

        Re-adding an unchanged document (same name and content) changes nothing. Past
        ``max_tokens`` the least recently used documents are evicted (``auto_cleanup``) or
        CapacityError is raised and nothing is stored."""
        t0 = time.perf_counter()
        self._check_writable()
        if not isinstance(content, str | bytes | bytearray):
            raise TypeError(f"content must be str or bytes, got {type(content).__name__}")
        if document_name is not None and not isinstance(document_name, str):
            raise TypeError(f"document_name must be a str, got {type(document_name).__name__}")
        metadata = dict(metadata or {})
        try:
            meta_json = json.dumps(metadata, sort_keys=True)
        except (TypeError, ValueError) as e:
            raise TypeError(f"metadata must be JSON-serialisable: {e}") from None
        if isinstance(content, bytearray):
            content = bytes(content)
        ctype = content_type or detect_content_type(content, document_name)
        if ctype not in CONTENT_TYPES:
            raise ValueError(
                f"content_type must be one of {', '.join(CONTENT_TYPES)}, got {ctype!r}"
            )
        if importance is None:
            importance = float(metadata.get("importance", IMPORTANCE_DOCUMENT))
        if not 0.0 <= importance <= 1.0 or math.isnan(importance):
            raise ValueError(f"importance must be within [0, 1], got {importance}")
        pin = bool(pinned) if pinned is not None else importance >= PIN_THRESHOLD
        text = _core.normalize(to_text(content, ctype))
        if not text.strip():
            raise ValueError(
                f"document {document_name or ''!r} is empty (no text after normalisation)"
            )
        content_hash = f"{_core.hash64(text):016x}"
        name = document_name or f"{ctype}-{content_hash[:12]}"

        with self._lock:
            old_id = self._by_name.get(name)
            if old_id is not None and self._docs[old_id].content_hash == content_hash:
                d = self._docs[old_id]
                d.last_access = time.time()
                self._access_dirty.add(d.id)
                return {
                    "document_id": d.id,
                    "document_name": d.name,
                    "tokens_added": 0,
                    "chunks_created": 0,
                    "duplicates_skipped": 0,
                    "evicted": [],
                    "unchanged": True,
                    "replaced": False,
                    "compression": None,
                    "processing_time_ms": (time.perf_counter() - t0) * 1000,
                }
            return self._add_locked(
                text, name, ctype, metadata, meta_json, importance, pin, content_hash, old_id, t0
            )

    def _add_locked(
        self,
        text: str,
        name: str,
        ctype: str,
        metadata: dict[str, Any],
        meta_json: str,
        importance: float,
        pin: bool,
        content_hash: str,
        old_id: int | None,
        t0: float,
    ) -> dict[str, Any]:
        chunks = _core.chunk_text(text, self.chunk_size, self.chunk_overlap, self.tokenizer, True)
        n = len(chunks)
        first_id = self._next_chunk
        ids = list(range(first_id, first_id + n))
        hashes = _core.hash64_batch([c[3] for c in chunks])
        old = self._docs.get(old_id) if old_id is not None else None
        old_chunk_ids = set(old.chunk_ids) if old else set()

        # Dedup: exact hashes first (against the store and earlier chunks of this document),
        # then near-duplicates; chunks of the version being replaced do not count.
        dup = [False] * n
        if self.dedup:
            seen: dict[int, int] = {}
            for i, h in enumerate(hashes):
                other = self._exact.get(h)
                if (other is not None and other not in old_chunk_ids) or h in seen:
                    dup[i] = True
                else:
                    seen[h] = i
            if old_chunk_ids:
                for cid in old_chunk_ids:
                    if cid in self._near:
                        self._near.remove(cid)
            cand = [i for i in range(n) if not dup[i]]
            near = self._near.add_batch([ids[i] for i in cand], [chunks[i][3] for i in cand], True)
            for i, m in zip(cand, near, strict=True):
                if m is not None:
                    dup[i] = True
        kept = [i for i in range(n) if not dup[i]]

        # What stays searchable (context compression): adaptive and aggressive collapse
        # repeated lines of line-oriented content.
        kept_texts = [chunks[i][3] for i in kept]
        searchable: list[str | None] = [None] * len(kept)
        if self.compression_strategy != "conservative" and ctype in LINE_ORIENTED:
            searchable, _dropped = _core.collapse_repeated_lines(
                kept_texts, self.compression_strategy == "aggressive"
            )
        s_texts = [s if s is not None else t for s, t in zip(searchable, kept_texts, strict=True)]
        spans = [(c[0], c[1], c[2]) for c in chunks]
        core_stats = _core.compression_stats(text, spans, dup, self.tokenizer, None)
        doc_tokens = core_stats["original_tokens"]
        s_tokens = core_stats["stored_tokens"]
        if any(x is not None for x in searchable):
            s_tokens = self._searchable_tokens(text, chunks, kept, searchable, s_texts)

        # Embedded before anything is committed: an embedder failure stores nothing.
        vecs = self.embedder.embed(s_texts) if self._vectors is not None and kept else None

        # Capacity.
        freed_by_replace = old.stored_tokens if old else 0
        total = self.total_tokens - freed_by_replace
        evicted: list[dict[str, Any]] = []
        if s_tokens > self.max_tokens:
            self._undo_near(ids, kept, old)
            raise CapacityError(
                f"document {name!r} needs {s_tokens} tokens, more than the store's capacity of "
                f"{self.max_tokens}: {s_tokens - self.max_tokens} tokens missing",
                missing_tokens=s_tokens - self.max_tokens,
            )
        if total + s_tokens > self.max_tokens:
            missing = total + s_tokens - self.max_tokens
            if not self.auto_cleanup:
                self._undo_near(ids, kept, old)
                raise CapacityError(
                    f"adding {name!r} needs {s_tokens} tokens but only "
                    f"{self.max_tokens - total} of {self.max_tokens} are free: {missing} tokens "
                    "missing (enable auto_cleanup or remove documents)",
                    missing_tokens=missing,
                )
            victims = self._eviction_order(exclude=old_id)
            for v in victims:
                if missing <= 0:
                    break
                missing -= v.stored_tokens
                evicted.append(
                    {
                        "document_id": v.id,
                        "document_name": v.name,
                        "tokens": v.stored_tokens,
                        "pinned": v.pinned,
                    }
                )

        # Commit: the index and the database change together.
        now = time.time()
        doc_id = self._next_doc
        raw = text.encode("utf-8")
        seg_starts = []
        prev_end = 0
        for s, e, _t, _x in chunks:
            seg_starts.append(max(s, prev_end))
            prev_end = max(prev_end, e)
        seg_raw = [raw[seg_starts[i] : chunks[i][1]] for i in range(n)]
        seg_hash = [_i64(h) for h in _core.hash64_batch(seg_raw)]
        # Pack new segments into ~6 KB blocks; a segment stored before is pointed at instead.
        locs: list[tuple[int, int, int]] = []
        pending: dict[int, tuple[int, int, int]] = {}
        new_blocks: list[bytearray] = []
        bid = self._next_block - 1
        for h, r in zip(seg_hash, seg_raw, strict=True):
            loc = self._seg_loc.get(h) or pending.get(h)
            if loc is None:
                if not new_blocks or len(new_blocks[-1]) >= BLOCK_BYTES:
                    new_blocks.append(bytearray())
                    bid += 1
                loc = (bid, len(new_blocks[-1]), len(r))
                new_blocks[-1] += r
                pending[h] = loc
            locs.append(loc)
        first_block = self._next_block
        codec = self._codec or self._plain
        dict_flag = 1 if self._codec is not None else 0
        comp = codec.compress_batch([bytes(b) for b in new_blocks]) if new_blocks else []
        refs: dict[int, int] = {}
        for loc in locs:
            refs[loc[0]] = refs.get(loc[0], 0) + 1
        doc = _Doc(doc_id, name, content_hash, ctype, metadata, importance, pin, now, now,
                   doc_tokens, s_tokens, len(raw), n, chunk_ids=list(ids))  # fmt: skip
        analysis = self.monitor.analyze_compression(
            text, spans, name, ctype, metadata, duplicates=dup, searchable_tokens=s_tokens,
            retrievability=1.0, tokenizer=self.tokenizer, record=False, core_stats=core_stats,
            stored_bytes=sum(map(len, comp)),
        )  # fmt: skip
        kept_set = dict(zip(kept, searchable, strict=True))
        doc_row = (doc_id, name, content_hash, ctype, meta_json, importance, int(pin), now, now,
                   doc_tokens, s_tokens, len(raw), n, "full", None)  # fmt: skip
        chunk_rows = [
            (ids[i], doc_id, i, chunks[i][0], chunks[i][1], seg_starts[i], chunks[i][2],
             _i64(hashes[i]), int(i in kept_set), *locs[i], seg_hash[i], kept_set.get(i))
            for i in range(n)
        ]  # fmt: skip
        block_rows = [
            (first_block + j, refs.get(first_block + j, 0), dict_flag, len(new_blocks[j]), c)
            for j, c in enumerate(comp)
        ]
        reused = [(k, v) for k, v in refs.items() if k < first_block]
        # Recorded first so the monitor's state saved with this transaction includes it.
        self.monitor.record(analysis)
        try:
            if self._db is not None:
                with self._db:
                    self._db.executemany("INSERT INTO blocks VALUES (?,?,?,?,?)", block_rows)
                    self._db.executemany(
                        "UPDATE blocks SET refs = refs + ? WHERE id=?", [(v, k) for k, v in reused]
                    )
                    for v in evicted:
                        self._delete_rows(v["document_id"])
                    if old is not None:
                        self._delete_rows(old.id)
                    self._db.execute(
                        "INSERT INTO documents VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)", doc_row
                    )
                    self._db.executemany(
                        "INSERT INTO chunks VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)", chunk_rows
                    )
                    self._bump_version()
        except sqlite3.Error as e:
            self._undo_near(ids, kept, old)
            raise MyaiError(f"{self._db_path}: could not store {name!r}: {e}") from e
        for row in block_rows:
            self._block_refs[row[0]] = row[1]
            if self._db is None:
                self._mem_blocks[row[0]] = (dict_flag, row[4])
        for k, v in reused:
            self._block_refs[k] = self._block_refs.get(k, 0) + v
        self._seg_loc.update(pending)
        self._next_block = first_block + len(block_rows)

        # In-memory state follows the committed database.
        for v in evicted:
            self._forget(v["document_id"])
            self._evictions += 1
            log.warning(
                "evicted %s (%d tokens%s) to make room for %s",
                v["document_name"],
                v["tokens"],
                ", pinned" if v["pinned"] else "",
                name,
            )
        if old is not None:
            self._forget(old.id, keep_near=True)
        self._docs[doc_id] = doc
        self._changes += 1
        self._by_name[name] = doc_id
        self._importances = None
        self._next_doc = doc_id + 1
        self._next_chunk = first_id + n
        for i in range(n):
            s, e, t, _text = chunks[i]
            self._chunks[ids[i]] = _Chunk(
                doc_id, i, s, e, seg_starts[i], t, *locs[i], seg_hash[i], not dup[i]
            )
        for i in kept:
            self._exact.setdefault(hashes[i], ids[i])
        if kept:
            self._bm25.add_batch([ids[i] for i in kept], [doc_id] * len(kept), s_texts)
            if vecs is not None:
                self._vectors.add([ids[i] for i in kept], vecs)  # type: ignore[union-attr]
        if self.compression_strategy == "aggressive":
            self.compact()
        return {
            "document_id": doc_id,
            "document_name": name,
            "tokens_added": s_tokens,
            "chunks_created": len(kept),
            "duplicates_skipped": n - len(kept),
            "evicted": evicted,
            "unchanged": False,
            "replaced": old is not None,
            "compression": analysis,
            "processing_time_ms": (time.perf_counter() - t0) * 1000,
        }

    def _searchable_tokens(
        self,
        text: str,
        chunks: list[Any],
        kept: list[int],
        searchable: list[str | None],
        s_texts: list[str],
    ) -> int:
        """Tokens kept searchable when some chunks were rewritten: a rewritten chunk counts
        whole, an unchanged one without the overlap it shares with a kept predecessor."""
        raw = text.encode("utf-8")
        kept_set = set(kept)
        changed = [j for j, x in enumerate(searchable) if x is not None]
        same = [j for j, x in enumerate(searchable) if x is None]
        overlaps = []
        for j in same:
            i = kept[j]
            if i - 1 in kept_set and chunks[i][0] < chunks[i - 1][1]:
                overlaps.append(raw[chunks[i][0] : chunks[i - 1][1]].decode("utf-8"))
        total = sum(chunks[kept[j]][2] for j in same)
        total -= sum(_core.count_tokens_batch(overlaps, self.tokenizer))
        total += sum(_core.count_tokens_batch([s_texts[j] for j in changed], self.tokenizer))
        return max(0, total)

    def _undo_near(self, ids: list[int], kept: list[int], old: _Doc | None) -> None:
        for i in kept:
            if ids[i] in self._near:
                self._near.remove(ids[i])
        if old is not None and self.dedup:
            back = [
                c for c in old.chunk_ids if self._chunks[c].indexed and self._chunks[c].ord >= 0
            ]
            self._near.add_batch(back, [self._chunk_text(c) for c in back])

    def _eviction_order(self, exclude: int | None) -> list[_Doc]:
        """Unpinned before pinned; within each, least recently used first, importance buying
        up to IMPORTANCE_CREDIT_S seconds of recency."""
        docs = [d for d in self._docs.values() if d.id != exclude]
        return sorted(
            docs, key=lambda d: (d.pinned, d.last_access + d.importance * IMPORTANCE_CREDIT_S)
        )

    def _bump_version(self) -> None:
        self._version += 1
        assert self._db is not None
        self._db.execute("UPDATE meta SET value=? WHERE key='version'", (str(self._version),))
        self._db.execute(
            "INSERT OR REPLACE INTO meta(key, value) VALUES ('monitor', ?)",
            (json.dumps(self.monitor.to_state()),),
        )
        if self._access_dirty:
            self._db.executemany(
                "UPDATE documents SET last_access=? WHERE id=?",
                [(self._docs[i].last_access, i) for i in self._access_dirty if i in self._docs],
            )
            self._access_dirty.clear()

    def _delete_rows(self, doc_id: int) -> None:
        assert self._db is not None
        rows = self._db.execute(
            "SELECT blk, count(*) FROM chunks WHERE doc_id=? AND ord >= 0 GROUP BY blk", (doc_id,)
        ).fetchall()
        self._db.executemany(
            "UPDATE blocks SET refs = refs - ? WHERE id=?", [(n, b) for b, n in rows]
        )
        self._db.execute("DELETE FROM blocks WHERE refs <= 0")
        self._db.execute("DELETE FROM chunks WHERE doc_id=?", (doc_id,))
        self._db.execute("DELETE FROM documents WHERE id=?", (doc_id,))

    def _forget(self, doc_id: int, keep_near: bool = False) -> None:
        """Drops a document from the in-memory state (its rows are already gone)."""
        d = self._docs.pop(doc_id, None)
        self._changes += 1
        if d is None:
            return
        self._importances = None
        if self._by_name.get(d.name) == doc_id:
            del self._by_name[d.name]
        self._bm25.remove_document(doc_id)
        if self._vectors is not None:
            self._vectors.remove(d.chunk_ids)
        freed: set[int] = set()
        for cid in d.chunk_ids:
            c = self._chunks.pop(cid, None)
            self._cache.discard(cid)
            if not keep_near and cid in self._near:
                self._near.remove(cid)
            if c is not None and c.ord >= 0:
                refs = self._block_refs.get(c.blk, 0) - 1
                self._block_refs[c.blk] = refs
                if refs <= 0:
                    freed.add(c.blk)
        if freed:
            for b in freed:
                self._block_refs.pop(b, None)
                self._mem_blocks.pop(b, None)
                self._block_cache.pop(b, None)
            for h in [h for h, loc in self._seg_loc.items() if loc[0] in freed]:
                del self._seg_loc[h]
        gone = set(d.chunk_ids)
        stale = [h for h, cid in self._exact.items() if cid in gone]
        for h in stale:
            del self._exact[h]
        self._access_dirty.discard(doc_id)

    # ------------------------------------------------------------------ removing

    def remove_document(self, document_id: int) -> bool:
        """Removes a document and its chunks; False if there is no such document."""
        self._check_writable()
        with self._lock:
            if document_id not in self._docs:
                return False
            if self._db is not None:
                with self._db:
                    self._delete_rows(document_id)
                    self._bump_version()
            self._forget(document_id)
            return True

    # ------------------------------------------------------------------ aggressive compression

    def compact(self, now: float | None = None) -> list[int]:
        """Aggressive context compression: documents older than ``min_age_hours`` (and, with
        ``preserve_important``, below the pinning importance) are replaced in the searchable
        context by their summary and keywords; the full text stays on disk
        (``restore_document`` brings it back). Returns the documents compressed."""
        self._check_writable()
        now = time.time() if now is None else now
        cutoff = now - self.min_age_hours * 3600
        done = []
        with self._lock:
            for d in list(self._docs.values()):
                if d.state != "full" or d.created > cutoff:
                    continue
                if self.preserve_important and (d.pinned or d.importance >= PIN_THRESHOLD):
                    continue
                if d.n_chunks <= 1:
                    continue
                self._summarize_doc(d)
                done.append(d.id)
        return done

    def _summarize_doc(self, d: _Doc) -> None:
        self._changes += 1
        text = self._document_text(d)
        budget = max(32, min(512, d.tokens // 10))
        sents = key_sentences(text, budget - 24, self.tokenizer.count_tokens)
        summary = " ".join(sents) + "\nKeywords: " + ", ".join(keywords(text))
        s_tokens = self.tokenizer.count_tokens(summary)
        sid = self._next_chunk
        if self._db is not None:
            with self._db:
                self._db.execute("UPDATE chunks SET indexed=0 WHERE doc_id=?", (d.id,))
                self._db.execute(
                    "INSERT INTO chunks VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                    (sid, d.id, -1, 0, 0, 0, s_tokens, 0, 1, 0, 0, 0, 0, summary),
                )
                self._db.execute(
                    "UPDATE documents SET state='summarized', stored_tokens=?, summary=? WHERE id=?",
                    (s_tokens, summary, d.id),
                )
                self._bump_version()
        self._bm25.remove_document(d.id)
        for cid in d.chunk_ids:
            self._chunks[cid].indexed = False
        self._chunks[sid] = _Chunk(d.id, -1, 0, 0, 0, s_tokens, 0, 0, 0, 0, True)
        self._next_chunk = sid + 1
        self._bm25.add(sid, d.id, summary)
        if self._vectors is not None:
            self._vectors.remove(d.chunk_ids)
            self._vectors.add([sid], self.embedder.embed([summary]))
        d.chunk_ids.append(sid)
        d.state, d.summary, d.stored_tokens = "summarized", summary, s_tokens

    def restore_document(self, document_id: int) -> bool:
        """Makes a summarised document fully searchable again."""
        self._check_writable()
        with self._lock:
            d = self._docs.get(document_id)
            self._changes += 1
            if d is None or d.state != "summarized":
                return False
            summary_ids = [c for c in d.chunk_ids if self._chunks[c].ord < 0]
            full = [c for c in d.chunk_ids if self._chunks[c].ord >= 0]
            texts = [self._chunk_text(c) for c in full]
            s_tokens = _own_tokens_of(self, full)
            if self._db is not None:
                with self._db:
                    self._db.executemany(
                        "DELETE FROM chunks WHERE id=?", [(c,) for c in summary_ids]
                    )
                    self._db.execute("UPDATE chunks SET indexed=1 WHERE doc_id=?", (d.id,))
                    self._db.execute(
                        "UPDATE documents SET state='full', stored_tokens=?, summary=NULL WHERE id=?",
                        (s_tokens, d.id),
                    )
                    self._bump_version()
            self._bm25.remove_document(d.id)
            for c in summary_ids:
                self._chunks.pop(c)
                d.chunk_ids.remove(c)
            for c in full:
                self._chunks[c].indexed = True
            self._bm25.add_batch(full, [d.id] * len(full), texts)
            if self._vectors is not None:
                self._vectors.remove(summary_ids)
                self._vectors.add(full, self.embedder.embed(texts))
            d.state, d.summary, d.stored_tokens = "full", None, s_tokens
            return True

    # ------------------------------------------------------------------ reading

    def search_context(
        self,
        query: str,
        top_k: int = 5,
        filters: dict[str, Any] | None = None,
        mode: str | None = None,
    ) -> list[dict[str, Any]]:
        """The ``top_k`` chunks best matching ``query``; each hit has chunk_id, document_id,
        document_name, text, start and end (byte offsets into the normalised document), score,
        content_type and metadata.

        ``filters``: document_id / document_ids, document_name / document_names,
        content_type / content_types, metadata ({key: value} all required), created_after /
        created_before (Unix times). ``mode``: bm25, or vector / hybrid once an embedder is
        configured."""
        if not isinstance(query, str):
            raise TypeError(f"query must be a str, got {type(query).__name__}")
        _check_int("top_k", top_k, 0)
        if mode is None:
            mode = "hybrid" if self._vectors is not None else "bm25"
        if mode not in SEARCH_MODES:
            raise ValueError(f"mode must be one of {', '.join(SEARCH_MODES)}, got {mode!r}")
        self._maybe_reload()
        with self._lock:
            self._searches += 1
            if top_k == 0 or not query.strip():
                return []
            allowed = self._filter_docs(filters) if filters else None
            if allowed is not None and not allowed:
                return []
            # The importance prior re-ranks only when documents differ in importance; then
            # more candidates are fetched so a boosted one below the cut can move up.
            if self._importances is None:
                self._importances = {d.importance for d in self._docs.values()}
            importances = set(self._importances)
            uniform = len(importances) <= 1
            k = top_k if uniform else top_k * 2 + 5
            if mode == "bm25":
                raw = self._bm25.search(query, k, allowed)
            elif self._vectors is None:
                raise ValueError(
                    f"mode={mode!r} needs vectors, and this store has no embedder (embedder none)"
                )
            else:
                raw = self._dense_search(query, k, allowed, mode)
            chunks, docs = self._chunks, self._docs
            if uniform:
                f = 1.0 + IMPORTANCE_PRIOR * ((importances.pop() if importances else 0.5) - 0.5)
                ranked = [(sc * f, c) for c, sc in raw if c in chunks]
            else:
                boosted = [
                    (sc * (1.0 + IMPORTANCE_PRIOR * (docs[chunks[c].doc_id].importance - 0.5)), c)
                    for c, sc in raw
                    if c in chunks
                ]
                ranked = sorted(boosted, key=lambda x: (-x[0], x[1]))[:top_k]
            now = time.time()
            hits = []
            for score, cid in ranked:
                c = self._chunks[cid]
                d = self._docs[c.doc_id]
                d.last_access = now
                self._access_dirty.add(d.id)
                summarized = c.ord < 0
                hits.append(
                    {
                        "chunk_id": cid,
                        "document_id": d.id,
                        "document_name": d.name,
                        "text": d.summary if summarized else self._chunk_text(cid),
                        "start": c.start,
                        "end": c.end,
                        "score": score,
                        "content_type": d.content_type,
                        "metadata": d.metadata,
                        "importance": d.importance,
                        "summarized": summarized,
                    }
                )
            return hits

    def _query_vector(self, query: str) -> Any:
        """The query's embedding, cached (repeated questions skip the embedder)."""
        v = self._query_cache.get(query)
        if v is None:
            v = self.embedder.embed([query])[0]
            self._query_cache[query] = v
            if len(self._query_cache) > 512:
                self._query_cache.popitem(last=False)
        else:
            self._query_cache.move_to_end(query)
        return v

    def _dense_search(
        self, query: str, k: int, allowed: set[int] | None, mode: str
    ) -> list[tuple[int, float]]:
        """Vector or hybrid candidates: BM25 and vector lists fused (``fusion``), then, with a
        rerank embedder, the fused top re-scored by its cosine similarity."""
        assert self._vectors is not None
        n = max(k, RERANK_DEPTH if self.rerank_embedder is not None else 0, 50)
        vec = self._vectors.search(self._query_vector(query), n, allowed)
        if mode == "vector":
            return vec[:k]
        bm = self._bm25.search(query, n, allowed)
        fused = fuse([bm, vec], self.fusion, n, self.bm25_weight)
        if self.rerank_embedder is not None and fused:
            top = [c for c, _ in fused[:RERANK_DEPTH] if c in self._chunks]
            texts = [self._chunk_text(c) if self._chunks[c].ord >= 0 else
                     (self._docs[self._chunks[c].doc_id].summary or "") for c in top]  # fmt: skip
            m = self.rerank_embedder.embed([query, *texts])
            sims = m[1:] @ m[0]
            # The stronger embedder's cosine blended with BM25 (its cosine alone loses to
            # BM25's exact matches); the fused rank breaks ties. Scores from 1 up, so that the
            # re-scored stay above the rest of the fused list (at most 1).
            scores = blend(
                top, dict(bm), {c: float(s) for c, s in zip(top, sims, strict=True)},
                RERANK_BM25_WEIGHT,
            )  # fmt: skip
            order = sorted(range(len(top)), key=lambda i: (-scores[i], i))
            rescored = [(top[i], 1.0 + scores[i]) for i in order]
            return (rescored + fused[len(top) :])[:k]
        return fused[:k]

    def _filter_docs(self, f: dict[str, Any]) -> set[int]:
        known = {
            "document_id",
            "document_ids",
            "document_name",
            "document_names",
            "content_type",
            "content_types",
            "metadata",
            "created_after",
            "created_before",
        }
        bad = set(f) - known
        if bad:
            raise ValueError(
                f"unknown filter keys: {', '.join(sorted(bad))} (known: {', '.join(sorted(known))})"
            )
        ids = set(_as_list(f.get("document_id")) + _as_list(f.get("document_ids")))
        names = set(_as_list(f.get("document_name")) + _as_list(f.get("document_names")))
        types = set(_as_list(f.get("content_type")) + _as_list(f.get("content_types")))
        meta = f.get("metadata") or {}
        after, before = f.get("created_after"), f.get("created_before")
        out = set()
        for d in self._docs.values():
            if ids and d.id not in ids:
                continue
            if names and d.name not in names:
                continue
            if types and d.content_type not in types:
                continue
            if any(d.metadata.get(k) != v for k, v in meta.items()):
                continue
            if after is not None and d.created < after:
                continue
            if before is not None and d.created > before:
                continue
            out.add(d.id)
        return out

    def get_document(self, document_id: int) -> dict[str, Any]:
        """A document's record with its full (normalised) text."""
        with self._lock:
            d = self._docs.get(document_id)
            if d is None:
                raise KeyError(f"no document {document_id}")
            return {**d.public(), "text": self._document_text(d)}

    def _document_text(self, d: _Doc) -> str:
        full = [c for c in d.chunk_ids if self._chunks[c].ord >= 0]
        return b"".join(self._segment(self._chunks[c]) for c in full).decode("utf-8")

    def list_documents(self) -> list[dict[str, Any]]:
        """Every document's record, oldest first."""
        with self._lock:
            return [
                d.public() for d in sorted(self._docs.values(), key=lambda d: (d.created, d.id))
            ]

    @property
    def version(self) -> int:
        """The memory's version: it changes with every change of the memory (answer caches
        are keyed by it); a read-only follower sees the writer's."""
        self._maybe_reload()
        return self._version if self._db is not None else self._changes

    @property
    def total_tokens(self) -> int:
        return sum(d.stored_tokens for d in self._docs.values())

    def get_statistics(self) -> dict[str, Any]:
        """How the capacity is used: totals, sizes on disk and in memory, per content type,
        and the compression summary."""
        with self._lock:
            total = self.total_tokens
            indexed = sum(1 for c in self._chunks.values() if c.indexed)
            by_type: dict[str, dict[str, int]] = {}
            for d in self._docs.values():
                t = by_type.setdefault(d.content_type, {"documents": 0, "tokens": 0, "chunks": 0})
                t["documents"] += 1
                t["tokens"] += d.stored_tokens
                t["chunks"] += d.n_chunks
            mem = self._bm25.memory_bytes() + self._cache.size + len(self._chunks) * 200
            return {
                "total_tokens": total,
                "original_tokens": sum(d.tokens for d in self._docs.values()),
                "total_documents": len(self._docs),
                "total_chunks": indexed,
                "max_tokens": self.max_tokens,
                "capacity_used": total / self.max_tokens,
                "free_tokens": max(0, self.max_tokens - total),
                "average_chunk_size": (
                    sum(c.tokens for c in self._chunks.values() if c.indexed and c.ord >= 0)
                    / max(1, sum(1 for c in self._chunks.values() if c.indexed and c.ord >= 0))
                ),
                "storage_size_mb": self._disk_bytes() / 1e6,
                "memory_mb": mem / 1e6,
                "content_types": by_type,
                "pinned_documents": sum(1 for d in self._docs.values() if d.pinned),
                "summarized_documents": sum(
                    1 for d in self._docs.values() if d.state == "summarized"
                ),
                "evictions": self._evictions,
                "searches": self._searches,
                "index_terms": self._bm25.num_terms,
                "tokenizer": self.tokenizer.name,
                "compression_strategy": self.compression_strategy,
                "compression": self.monitor.get_stats(),
            }

    def _disk_bytes(self) -> int:
        if self.storage_dir is None:
            return sum(len(v[1]) for v in self._mem_blocks.values())
        total = 0
        for p in self.storage_dir.iterdir():
            with contextlib.suppress(OSError):
                total += p.stat().st_size
        return total

    def get_context_summary(self, max_tokens: int = 1000) -> str:
        """An extractive summary of what the store holds: for each document (most important
        first) its most central sentences in their original order, under a ``[document name]``
        line. Sentences are dealt out round-robin, so every document is covered before any gets
        a second sentence; never more than ``max_tokens`` tokens as the store's tokenizer
        counts them."""
        _check_int("max_tokens", max_tokens, 0)
        count = self.tokenizer.count_tokens
        with self._lock:
            docs = sorted(self._docs.values(), key=lambda d: (-d.importance, d.created, d.id))
            if not docs or max_tokens == 0:
                return ""
            ranked = {d.id: ranked_sentences(self._document_text(d)) for d in docs}
            chosen: dict[int, list[tuple[int, str]]] = {d.id: [] for d in docs}
            used = 0
            progress = True
            while progress:
                progress = False
                for d in docs:
                    queue = ranked[d.id]
                    while queue:
                        pos, sent = queue[0]
                        # A new document costs its header line and a blank line too.
                        cost = count(sent) + 1 + (0 if chosen[d.id] else count(f"[{d.name}]") + 3)
                        if used + cost <= max_tokens:
                            chosen[d.id].append((pos, sent))
                            used += cost
                            queue.pop(0)
                            progress = True
                            break
                        queue.pop(0)  # too long for what is left; a shorter one may fit

            def render() -> str:
                blocks = [
                    f"[{d.name}]\n" + " ".join(s for _, s in sorted(chosen[d.id]))
                    for d in docs
                    if chosen[d.id]
                ]
                return "\n\n".join(blocks)

            out = render()
            # The per-piece costs above are estimates of the joined text; trim to be exact.
            while out and count(out) > max_tokens:
                last = max((d for d in docs if chosen[d.id]), key=lambda d: len(chosen[d.id]))
                chosen[last.id].pop()
                out = render()
            return out

    def retrievability(self, document_id: int, samples: int = 8, top_k: int = 5) -> float:
        """The share of a sample of the document's sentences whose search finds one of its
        chunks in the top ``top_k`` (the monitor's quality measure, inside this store)."""
        with self._lock:
            d = self._docs[document_id]
            sents = sample_sentences(self._document_text(d), samples)
            if not sents:
                return 1.0
            hits = 0
            for s in sents:
                res = self._bm25.search(s, top_k, None)
                hits += any(
                    self._chunks[c].doc_id == document_id for c, _ in res if c in self._chunks
                )
            return hits / len(sents)

    # ------------------------------------------------------------------ persistence

    def save(self) -> None:
        """Writes the index snapshot (so the next open is fast) and pending recency updates."""
        if self.readonly or self._db is None:
            return
        with self._lock:
            if self._codec is None:
                self._train_dictionary()
            if self._snapshot_version == self._version and not self._access_dirty:
                return
            with self._db:
                if self._access_dirty:
                    self._bump_version()
                if self._deferred:
                    # Never loaded, so unchanged: the saved snapshot and vectors still hold.
                    keys = ["snapshot_version"]
                    if self.embedder is not None:
                        keys.append("vectors_version")
                    self._db.executemany(
                        "INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)",
                        [(k, str(self._version)) for k in keys],
                    )
                    self._snapshot_version = self._version
                    return
                snapshot = [
                    ("bm25", self._bm25.to_bytes()),
                    ("neardup", self._near.to_bytes()),
                    ("snapshot_version", str(self._version)),
                ]
                if self._vectors is not None and self.storage_dir is not None:
                    # The file first: a crash before the commit leaves a version mismatch,
                    # which rebuilds the vectors at the next open.
                    self._vectors.save(self.storage_dir / VECTORS_NAME)
                    snapshot.append(("vectors_version", str(self._version)))
                    snapshot.append(("vectors_format", self._vectors.format))
                self._db.executemany(
                    "INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)", snapshot
                )
            self._snapshot_version = self._version

    def close(self) -> None:
        """Saves and releases the store (and its writer lock)."""
        if self._closed:
            return
        try:
            self.save()
        finally:
            self._closed = True
            if self._db is not None:
                self._db.close()
                self._db = None
            self._release_lock()

    def __enter__(self) -> ContextManager:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        with contextlib.suppress(Exception):
            if not self._closed and self._lock_fd is not None:
                self._release_lock()

    def __len__(self) -> int:
        return len(self._docs)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return iter(self.list_documents())

    def _check_writable(self) -> None:
        if self._closed:
            raise MyaiError("the context store is closed")
        if self.readonly:
            raise MyaiError(f"the context store {self.storage_dir} is open read-only")
        self._ensure_indexes()  # every change starts from the indexes as they were at open

    _last_check = 0.0

    def _maybe_reload(self) -> None:
        """A read-only view follows the writer's commits (checked at most every 0.2 s)."""
        if not self.readonly or self._db is None:
            return
        now = time.monotonic()
        if now - self._last_check < 0.2:
            return
        self._last_check = now
        v = int(self._meta("version") or 0)
        if v != self._version:
            with self._lock:
                self._docs.clear()
                self._by_name.clear()
                self._chunks.clear()
                self._block_refs.clear()
                self._seg_loc.clear()
                self._block_cache.clear()
                self._cache = _TextCache(self._cache.max_bytes)
                self._load()

    @staticmethod
    def repair(storage_dir: str | os.PathLike[str]) -> dict[str, int]:
        """Salvages a damaged store: copies every document whose rows and blocks all read
        back into a fresh database, keeps the damaged file as ``store.db.corrupt``, and returns
        how many documents were kept and lost. The indexes are rebuilt at the next open."""
        path = Path(storage_dir)
        db_path = path / DB_NAME
        tmp = path / "store.db.repair"
        tmp.unlink(missing_ok=True)
        kept = lost = 0
        try:
            src = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
            src.execute("SELECT count(*) FROM sqlite_master").fetchone()
        except sqlite3.DatabaseError:
            src = None
        dst = sqlite3.connect(tmp)
        dst.executescript(_SCHEMA)
        with dst:
            for key in ("format", "params", "tokenizer", "zdict"):
                with contextlib.suppress(sqlite3.DatabaseError, AttributeError):
                    row = src.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()  # type: ignore[union-attr]
                    if row:
                        dst.execute("INSERT INTO meta VALUES (?, ?)", (key, row[0]))
            dst.execute("INSERT OR REPLACE INTO meta VALUES ('version', '1')")
            dst.execute("INSERT OR IGNORE INTO meta VALUES ('format', ?)", (str(FORMAT_VERSION),))
            try:
                doc_rows = list(src.execute("SELECT * FROM documents")) if src else []  # type: ignore[union-attr]
            except sqlite3.DatabaseError:
                doc_rows = []
            copied: set[int] = set()
            for row in doc_rows:
                try:
                    chunks = list(src.execute("SELECT * FROM chunks WHERE doc_id=?", (row[0],)))  # type: ignore[union-attr]
                    blocks = {}
                    for c in chunks:
                        if c[2] >= 0 and c[9] not in blocks:
                            blocks[c[9]] = src.execute(
                                "SELECT * FROM blocks WHERE id=?", (c[9],)
                            ).fetchone()  # type: ignore[union-attr]
                    if not chunks or any(b is None for b in blocks.values()):
                        raise sqlite3.DatabaseError("missing rows")
                except sqlite3.DatabaseError:
                    lost += 1
                    continue
                dst.execute("INSERT INTO documents VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)", row)
                dst.executemany("INSERT INTO chunks VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)", chunks)
                dst.executemany(
                    "INSERT INTO blocks VALUES (?,?,?,?,?)",
                    [b for bid, b in blocks.items() if bid not in copied],
                )
                copied.update(blocks)
                kept += 1
            counts = dst.execute(
                "SELECT blk, count(*) FROM chunks WHERE ord >= 0 GROUP BY blk"
            ).fetchall()
            dst.execute("UPDATE blocks SET refs=0")
            dst.executemany("UPDATE blocks SET refs=? WHERE id=?", [(n, b) for b, n in counts])
        if src is not None:
            src.close()
        dst.close()
        if db_path.exists():
            os.replace(db_path, path / "store.db.corrupt")
        for suffix in ("-wal", "-shm"):
            Path(str(db_path) + suffix).unlink(missing_ok=True)
        os.replace(tmp, db_path)
        return {"documents_kept": kept, "documents_lost": lost}


def _own_tokens_of(cm: ContextManager, ids: list[int]) -> int:
    """Tokens of stored chunks, each overlap with the previous chunk counted once."""
    total = 0
    for c in ids:
        ch = cm._chunks[c]
        t = ch.tokens
        if ch.seg_start > ch.start:
            overlap = cm._chunk_text(c).encode("utf-8")[: ch.seg_start - ch.start]
            t -= cm.tokenizer.count_tokens(overlap.decode("utf-8", "ignore"))
        total += max(0, t)
    return total


def _as_list(v: Any) -> list[Any]:
    if v is None:
        return []
    if isinstance(v, list | tuple | set | frozenset):
        return list(v)
    return [v]


def _check_int(name: str, v: Any, minimum: int) -> None:
    if isinstance(v, bool) or not isinstance(v, int):
        raise TypeError(f"{name} must be an int, got {type(v).__name__}")
    if v < minimum:
        raise ValueError(f"{name} must be at least {minimum}, got {v}")


def _resolve_tokenizer(t: _core.Tokenizer | str | None) -> _core.Tokenizer:
    if isinstance(t, _core.Tokenizer):
        return t
    if t is None or t == "estimate":
        return _core.Tokenizer.estimator()
    if t == "auto":
        from myai.tokens import default_tokenizer

        return default_tokenizer()
    p = Path(t).expanduser()
    if p.suffix == ".gguf":
        return _core.Tokenizer.from_gguf(str(p))
    return _core.Tokenizer.from_file(str(p))


def _config_embedders(cfg: Any, name: str, models: str, *, lazy: bool) -> tuple[Any, Any]:
    """The store's embedder and rerank embedder for the configuration (None, None with a
    warning when unavailable). ``lazy``: a static embedder without rerank is loaded at its
    first use (a store on disk is often opened for work that embeds nothing: a re-ingest of
    unchanged files, a listing, a removal); it is checked to be available now."""
    from myai.lazy_embedder import STATIC_DIM, LazyEmbedder, static_unavailable

    if lazy and name == "static" and not cfg.retrieval.rerank:
        why = static_unavailable(models)
        if why is None:
            return LazyEmbedder(
                name, STATIC_DIM, functools.partial(_load_embedder, name, models)
            ), None
        log.warning("embedder %s unavailable (%s): searching with BM25 only", name, why)
        return None, None

    from myai.backends.base import BackendUnavailable
    from myai.embedders import get_embedder

    opts: dict[str, Any] = {}
    if name == "ollama":  # served by the Ollama server of the backend group
        opts = dict(
            host=cfg.backend.host,
            model=cfg.embedder.model,
            timeout=cfg.backend.timeout_s,
            batch_size=cfg.embedder.batch_size,
        )
    try:
        embedder = get_embedder(name, models, **opts)
        # Rerank re-scores with a stronger model than the one that made the vectors.
        # With MiniLM vectors (max_quality) none is stronger: MiniLM re-scoring its own
        # fused top 30 gives SciFact train nDCG@10 0.733 → 0.661 by its cosine alone,
        # 0.728-0.733 blended with BM25, so the weighted fusion is left as it is.
        rerank = (
            get_embedder("minilm", models) if cfg.retrieval.rerank and name != "minilm" else None
        )
    except (FileNotFoundError, ImportError, NotImplementedError, BackendUnavailable) as e:
        log.warning("embedder %s unavailable (%s): searching with BM25 only", name, e)
        return None, None
    return embedder, rerank


def _load_embedder(name: str, models: str) -> Any:
    from myai import embedders

    return embedders.get_embedder(name, models)


def _connect(target: str, path: Path, uri: bool = False) -> sqlite3.Connection:
    try:
        db = sqlite3.connect(target, uri=uri, check_same_thread=False, isolation_level=None)
        db.isolation_level = "DEFERRED"
        if not uri:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=FULL")
        db.execute("PRAGMA busy_timeout=5000")
        db.execute("SELECT count(*) FROM sqlite_master").fetchone()
        return db
    except sqlite3.DatabaseError as e:
        raise CorruptStoreError(
            f"{path}: not a readable myai store ({e}); "
            "ContextManager.repair(storage_dir) salvages what is intact",
            path=str(path),
        ) from None


def _read_params(db: Path) -> dict[str, Any]:
    conn = _connect(f"file:{db}?mode=ro", db, uri=True)
    try:
        row = conn.execute("SELECT value FROM meta WHERE key='params'").fetchone()
    except sqlite3.DatabaseError as e:
        raise CorruptStoreError(f"{db}: unreadable ({e})", path=str(db)) from None
    finally:
        conn.close()
    if row is None:
        raise CorruptStoreError(f"{db}: has no store parameters", path=str(db))
    return dict(json.loads(row[0]))


MillionTokenContextManager = ContextManager


class VectorMemory(ContextManager):
    """The seed documents' name for the store: ``add_document``, ``get_stats``,
    ``get_compression_report``."""

    def get_stats(self) -> dict[str, Any]:
        return self.get_statistics()

    def get_compression_report(self) -> str:
        return self.monitor.get_compression_report()
