"""Type stubs of myai._core, the Rust extension (checked by mypy.stubtest).

Offsets are byte offsets into the UTF-8 encoding of the text, as the core returns them.
"""

from collections.abc import Iterable, Sequence

__version__: str

class MyaiError(Exception):
    """Base class of every error raised by myai."""

class CorruptDataError(MyaiError):
    """Serialised data (an index, a store file) failed its integrity checks."""

class TokenizerError(MyaiError):
    """A tokenizer file could not be loaded."""

# --- normalize ---
# --- end normalize ---

# --- tokens ---
# --- end tokens ---

# --- chunk ---
# --- end chunk ---

# --- dedup ---
# --- end dedup ---

# --- index ---
from typing import final  # noqa: E402 (each module's section keeps its own imports)

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
# --- end compress ---
