"""Type stubs of myai._core, the Rust extension (checked by mypy.stubtest).

Offsets are byte offsets into the UTF-8 encoding of the text, as the core returns them.
"""

from collections.abc import Iterable, Sequence
from typing import Any, Literal, final, overload

__version__: str

class MyaiError(Exception):
    """Base class of every error raised by myai."""

class CorruptDataError(MyaiError):
    """Serialised data (an index, a store file) failed its integrity checks."""

class TokenizerError(MyaiError):
    """A tokenizer file could not be loaded."""

# --- normalize ---
def normalize(data: str | bytes | bytearray) -> str:
    """Normalise text: BOM removed, CRLF/CR to LF, control characters (NUL, other C0 but tab and
    newline, DEL, C1) removed, Unicode NFC. Invalid UTF-8 in bytes and lone surrogates in str
    become U+FFFD. Never raises on content; TypeError for other types."""

def normalize_with_stats(data: str | bytes | bytearray) -> tuple[str, dict[str, int | bool]]:
    """Like normalize, with what changed: invalid_sequences, bom_removed, newlines_converted,
    controls_removed, nfc_applied."""

# --- end normalize ---

# --- tokens ---
@final
class Tokenizer:
    """Counts tokens exactly as a model's tokenizer does, fast (the work runs in Rust).

    Three kinds: byte-level BPE (GPT-2 family: from a HuggingFace ``tokenizer.json`` or the
    vocabulary inside a GGUF model file), WordPiece (BERT family, from a ``tokenizer.json``), and
    a vocabulary-free estimator calibrated on SmolLM2 over English prose.

    Counts never include the special tokens a model adds around a sequence (BOS, ``[CLS]``,
    ``[SEP]``); an added or special token that appears in the text (``<|im_start|>``, ``[MASK]``)
    counts as one token, as in HuggingFace ``tokenizers``. Texts containing lone surrogates
    cannot be encoded as UTF-8 and raise ``UnicodeEncodeError``.
    """

    @staticmethod
    def from_file(path: str) -> Tokenizer:
        """Loads a HuggingFace ``tokenizer.json``: BPE with a ByteLevel pre-tokenizer (optionally
        after Digits), or WordPiece with BertNormalizer and BertPreTokenizer/Whitespace.

        Raises TokenizerError naming the path and the reason (unreadable, not JSON, or an
        unsupported component such as a Metaspace pre-tokenizer or a Unigram model).
        """

    @staticmethod
    def from_str(json: str) -> Tokenizer:
        """Parses the text of a ``tokenizer.json`` (see ``from_file``)."""

    @staticmethod
    def from_gguf(path: str) -> Tokenizer:
        """Loads the byte-level BPE vocabulary stored in a GGUF model file (v2/v3).

        Only the metadata is read, not the tensors. ``tokenizer.ggml.model`` must be ``gpt2``
        and ``tokenizer.ggml.pre`` one of the GPT-2 style splits (``smollm``, ``starcoder``,
        ``gpt2``, ...). A truncated or garbage file raises TokenizerError.
        """

    @staticmethod
    def estimator() -> Tokenizer:
        """The vocabulary-free estimator: SmolLM2's pieces, each estimated from its class and
        length (about 1% off on English prose overall; it cannot ``encode``)."""

    @property
    def name(self) -> str:
        """``"smollm2 (gguf bpe)"`` for a GGUF, the file stem for a tokenizer.json,
        ``"estimate"`` for the estimator."""

    @property
    def kind(self) -> str:
        """``"bpe"``, ``"wordpiece"`` or ``"estimate"``."""

    @property
    def vocab_size(self) -> int:
        """Number of token ids, added tokens included (0 for the estimator)."""

    def encode(self, text: str) -> list[int]:
        """Token ids of ``text``, no special tokens added. ValueError for the estimator."""

    def count_tokens(self, text: str) -> int:
        """Number of tokens of ``text`` (long texts are counted in parallel)."""

    def count_tokens_batch(self, texts: Sequence[str]) -> list[int]:
        """Token counts of many texts, counted in parallel."""

def count_tokens(text: str, tokenizer: Tokenizer | None = None) -> int:
    """Number of tokens of ``text`` with ``tokenizer`` (the estimator when None)."""

def count_tokens_batch(texts: Sequence[str], tokenizer: Tokenizer | None = None) -> list[int]:
    """Token counts of many texts with ``tokenizer`` (the estimator when None), in parallel."""

def estimate_tokens(text: str) -> int:
    """The estimator's count of ``text`` (no vocabulary needed)."""

# --- end tokens ---

# --- chunk ---
@overload
def chunk_text(
    text: str,
    chunk_size: int,
    chunk_overlap: int = 0,
    tokenizer: Tokenizer | None = None,
    return_text: Literal[False] = False,
) -> list[tuple[int, int, int]]:
    """Splits text into chunks of at most ``chunk_size`` tokens (counted by ``tokenizer``,
    else the estimator), neighbours sharing at most ``chunk_overlap`` tokens. Cut points are
    preferred at a blank line or heading, then a sentence end or line break, then whitespace;
    never inside a UTF-8 character (so only a single character of more tokens than
    ``chunk_size`` can exceed it). Returns ``(start, end, tokens)`` with byte offsets into the
    UTF-8 text; chunks cover the text in order. ValueError for chunk_size < 1, a negative
    overlap or an overlap >= chunk_size."""

@overload
def chunk_text(
    text: str,
    chunk_size: int,
    chunk_overlap: int = 0,
    tokenizer: Tokenizer | None = None,
    *,
    return_text: Literal[True],
) -> list[tuple[int, int, int, str]]: ...
@overload
def chunk_text(
    text: str,
    chunk_size: int,
    chunk_overlap: int,
    tokenizer: Tokenizer | None,
    return_text: Literal[True],
) -> list[tuple[int, int, int, str]]: ...
def chunk_text_batch(
    texts: Sequence[str],
    chunk_size: int,
    chunk_overlap: int = 0,
    tokenizer: Tokenizer | None = None,
    return_text: bool = False,
) -> list[list[Any]]:
    """chunk_text over many texts, in parallel."""

# --- end chunk ---

# --- dedup ---

def hash64(text: str) -> int:
    """The exact-duplicate key of ``text``: xxh3-64 of its UTF-8 bytes, an int in [0, 2**64).

    The bytes are hashed as given: normalise first (Unicode form, whitespace) when different
    spellings of the same text should be duplicates.
    """

def hash64_batch(texts: Sequence[str | bytes]) -> list[int]:
    """hash64 of each text (str, or bytes holding its UTF-8)."""

def jaccard(a: str, b: str) -> float:
    """Exact Jaccard similarity of the shingle sets of ``a`` and ``b``.

    Shingles are runs of 3 consecutive words; a word is a maximal run of letters and digits,
    lowercased, and each CJK ideograph or kana is a word of its own. A text of fewer than 3
    words has one shingle (its whole word sequence); two texts without words score 1.0.
    This is the similarity that ``find_duplicates`` and ``NearDupIndex`` estimate.
    """

def find_duplicates(
    texts: Sequence[str], threshold: float = 0.85, num_perm: int = 128
) -> list[list[int]]:
    """Groups of duplicate texts, as lists of indices into ``texts``.

    Two texts are duplicates when their bytes are equal or their estimated ``jaccard``
    (MinHash over ``num_perm`` values, candidates from LSH bands, each verified on the full
    signature) is at least ``threshold``; groups are closed under this relation
    transitively. Each group has at least two indices, in increasing order, and groups are
    ordered by their first index. Deterministic; the GIL is released and signatures are
    computed on all cores.

    Raises:
        ValueError: ``threshold`` outside (0, 1] or ``num_perm`` outside [8, 1024].
    """

@final
class NearDupIndex:
    """An incremental near-duplicate index: texts stored as MinHash signatures under ids.

    ``query`` finds stored texts whose estimated Jaccard similarity (see ``jaccard``) is at
    least ``threshold``, at a cost independent of the number stored. Safe to share between
    threads; long calls release the GIL. Signatures depend on ``num_perm`` and ``seed``.

    Raises:
        ValueError: ``threshold`` outside (0, 1] or ``num_perm`` outside [8, 1024].
    """

    def __new__(
        cls, threshold: float = 0.85, num_perm: int = 128, seed: int = 0
    ) -> NearDupIndex: ...
    def add(self, id: int, text: str) -> None:
        """Stores ``text`` under ``id`` (an int in [0, 2**64)).

        Raises:
            ValueError: ``id`` is negative or already stored.
        """

    def query(self, text: str) -> list[int]:
        """Stored ids whose estimated similarity to ``text`` is >= threshold, best first."""

    def add_batch(
        self, ids: Sequence[int], texts: Sequence[str], skip_duplicates: bool = False
    ) -> list[int | None]:
        """Adds many texts, computing their signatures in parallel.

        Returns, for each text in order, the best-matching id among the stored texts and the
        batch's earlier texts, or None. With ``skip_duplicates=True`` a text that has a match
        is not stored. The ids are checked before anything is stored.

        Raises:
            ValueError: lengths differ, or an id is negative, repeated or already stored.
        """

    def remove(self, id: int) -> bool:
        """Removes ``id``; returns whether it was stored.

        Raises:
            ValueError: ``id`` is negative.
        """

    def __len__(self) -> int: ...
    def __contains__(self, id: object, /) -> bool: ...
    def to_bytes(self) -> bytes:
        """The index as bytes (versioned, checksummed; equal indexes give equal bytes)."""

    @staticmethod
    def from_bytes(data: bytes) -> NearDupIndex:
        """An index from ``to_bytes`` output.

        Raises:
            CorruptDataError: the data is truncated, damaged or not a dedup index.
        """

    @property
    def threshold(self) -> float:
        """The similarity threshold of matches."""

    @property
    def num_perm(self) -> int:
        """Values per signature."""

# --- end dedup ---

# --- index ---

@final
class Bm25Index:
    """An incremental inverted index of text chunks ranked with BM25 (Lucene variant).

    Chunks are added with their own ``chunk_id`` and the ``doc_id`` of the document they
    belong to; searches may be restricted to a set of documents. Scores use
    ``idf = ln(1 + (N - df + 0.5) / (df + 0.5))`` and
    ``tf / (tf + k1 * (1 - b + b * dl / avgdl))`` over the terms of :meth:`analyze`; a word
    repeated in the query counts once per occurrence. N, avgdl and df always describe the
    live chunks exactly, also after removals.

    Safe to share between threads: searches run in parallel with the GIL released, while
    adds and removals wait for them.
    """

    def __new__(
        cls, k1: float = 1.2, b: float = 0.75, stem: bool = True, stopwords: bool = True
    ) -> Bm25Index:
        """An empty index.

        Args:
            k1: term-frequency saturation, ``>= 0``.
            b: length normalisation, between 0 and 1.
            stem: reduce English words to their Snowball stem ("running" -> "run").
            stopwords: drop common English function words ("the", "of", ...).

        Raises:
            ValueError: k1 or b out of range.
        """

    def add(self, chunk_id: int, doc_id: int, text: str) -> None:
        """Indexes one chunk.

        Raises:
            ValueError: a negative id, or ``chunk_id`` already in the index.
        """

    def add_batch(
        self, chunk_ids: Sequence[int], doc_ids: Sequence[int], texts: Sequence[str]
    ) -> None:
        """Indexes many chunks at once (analysed in parallel); all or nothing.

        Raises:
            ValueError: sequences of different lengths, a negative id, or a chunk id that is
                repeated or already in the index.
        """

    def remove(self, chunk_id: int) -> bool:
        """Removes one chunk; returns whether it was in the index."""

    def remove_document(self, doc_id: int) -> int:
        """Removes every chunk of a document; returns how many were removed."""

    def search(
        self, query: str, top_k: int = 10, doc_ids: Iterable[int] | None = None
    ) -> list[tuple[int, float]]:
        """The ``top_k`` best chunks for ``query`` as ``(chunk_id, score)``, best first.

        Ties are broken by the smaller chunk id. Chunks without any query term are never
        returned, so an empty query (or one made of stopwords) gives ``[]``. With
        ``doc_ids``, only chunks of those documents are ranked.

        Raises:
            ValueError: ``top_k < 0`` or a negative doc id.
        """

    def search_exhaustive(
        self, query: str, top_k: int = 10, doc_ids: Iterable[int] | None = None
    ) -> list[tuple[int, float]]:
        """Same as :meth:`search`, computed by scoring every matching chunk (no pruning).

        A reference for tests: its results equal :meth:`search`'s exactly.
        """

    def analyze(self, text: str) -> list[str]:
        """The terms of ``text`` as the index sees them.

        Words are runs of Unicode letters, marks and digits, lowercased; each Han, Hiragana
        and Katakana character is a term of its own; then stopwords are dropped and stems
        taken when enabled.
        """

    def to_bytes(self) -> bytes:
        """The index in a versioned, checksummed binary format (removed chunks left out)."""

    @staticmethod
    def from_bytes(data: bytes) -> Bm25Index:
        """An index from :meth:`to_bytes` output.

        Raises:
            CorruptDataError: the data is empty, truncated, altered, or of another format
                version; the message names the failed check (magic, version, length,
                checksum or payload).
        """

    def memory_bytes(self) -> int:
        """Approximate heap memory held by the index, in bytes."""

    def stats(self) -> dict[str, int | float]:
        """Counts (ints): chunks, documents, terms, postings, dead_postings (postings of removed
        chunks not yet compacted away), total_terms; and avgdl (float)."""

    def __len__(self) -> int:
        """The number of chunks in the index."""

    def __contains__(self, chunk_id: object, /) -> bool: ...
    @property
    def num_terms(self) -> int:
        """Distinct terms occurring in at least one chunk."""

    @property
    def k1(self) -> float:
        """BM25's term-frequency saturation parameter."""

    @property
    def b(self) -> float:
        """BM25's length-normalisation parameter."""

# --- end index ---

# --- compress ---
def compression_stats(
    text: str,
    chunks: Sequence[tuple[int, int, int]],
    duplicates: Sequence[bool] | None = None,
    tokenizer: Tokenizer | None = None,
    level: int | None = ...,
) -> dict[str, Any]:
    """Compression figures of ``text`` cut into ``chunks`` (as chunk_text returns them),
    ``duplicates[i]`` telling whether chunk i was skipped: original, chunked, overlap,
    dedup-saved and stored bytes and tokens, zstd_bytes (the stored text at ``level``),
    storage_ratio (original bytes / zstd bytes), context_ratio (original tokens / stored
    tokens), overhead_percent (overlap tokens / original tokens) and efficiency (100 minus the
    overhead). ``level`` defaults to 3; None skips the zstd pass (zstd_bytes and storage_ratio
    0)."""

def zstd_compress(data: bytes, level: int = 3) -> bytes:
    """zstd-compresses ``data`` (level 1..=22)."""

def zstd_decompress(data: bytes, max_size: int = ...) -> bytes:
    """Decompresses one zstd frame; CorruptDataError for a damaged frame or one that would
    exceed ``max_size`` bytes (default 1 GiB)."""

def collapse_repeated_lines(
    texts: Sequence[str], mask_numbers: bool = False
) -> tuple[list[str | None], int]:
    """The searchable form of a document's chunks under adaptive compression: a line seen
    before in the document (the same once a leading timestamp is dropped, and every number too
    when ``mask_numbers``) is left out, and the first occurrence of a repeated line is marked
    `` [repeated Nx]``. Returns each chunk's new text (None where unchanged) and the number of
    lines left out."""

@final
class ZstdCodec:
    """zstd at a level, with an optional trained dictionary prepared once; each frame is
    readable on its own."""

    def __new__(cls, level: int = 3, dictionary: bytes | None = None) -> ZstdCodec: ...
    @staticmethod
    def train(samples: Sequence[bytes], max_size: int = 16384) -> bytes:
        """A dictionary of at most ``max_size`` bytes trained on ``samples`` (at least 8);
        ValueError when zstd cannot train one from them."""

    @property
    def dictionary(self) -> bytes: ...
    @property
    def level(self) -> int: ...
    def compress_batch(self, data: Sequence[bytes]) -> list[bytes]:
        """Each input compressed into its own frame, in parallel."""

    def decompress(self, data: bytes, max_size: int = ...) -> bytes:
        """One frame made by a codec with the same dictionary; CorruptDataError for a damaged
        frame or one over ``max_size`` bytes (default 1 GiB)."""

# --- end compress ---

# --- embed ---
import numpy as np  # noqa: E402
import numpy.typing as npt  # noqa: E402

def static_embed(
    tokenizer: Tokenizer, table: npt.NDArray[np.float32], texts: Sequence[str]
) -> npt.NDArray[np.float32]:
    """Static embeddings of ``texts``: each text's WordPiece ids (``tokenizer.encode``, no
    special tokens) select rows of ``table`` (one row per token id, weights folded in), which
    are summed and scaled to unit length. Returns a float32 array of shape
    ``(len(texts), table.shape[1])``; a text without tokens gets a zero row.

    Texts are embedded in parallel with the GIL released. ``table`` must be a 2-D, float32,
    C-contiguous numpy array with at least ``tokenizer.vocab_size`` rows (it is read in place,
    never copied); anything else raises ValueError saying how to fix it.
    """

# --- end embed ---
