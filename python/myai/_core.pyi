"""Type stubs of myai._core, the Rust extension (checked by mypy.stubtest).

Offsets are byte offsets into the UTF-8 encoding of the text, as the core returns them.
"""


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
# --- end dedup ---

# --- index ---
# --- end index ---

# --- compress ---
def compression_stats(
    text: str,
    chunks: Sequence[tuple[int, int, int]],
    duplicates: Sequence[bool] | None = None,
    tokenizer: Tokenizer | None = None,
    level: int = 3,
) -> dict[str, Any]:
    """Compression figures of ``text`` cut into ``chunks`` (as chunk_text returns them),
    ``duplicates[i]`` telling whether chunk i was skipped: original, chunked, overlap,
    dedup-saved and stored bytes and tokens, zstd_bytes (the stored text at ``level``),
    storage_ratio (original bytes / zstd bytes), context_ratio (original tokens / stored
    tokens), overhead_percent (overlap tokens / original tokens) and efficiency (100 minus the
    overhead)."""

def zstd_compress(data: bytes, level: int = 3) -> bytes:
    """zstd-compresses ``data`` (level 1..=22)."""

def zstd_decompress(data: bytes, max_size: int = 1073741824) -> bytes:
    """Decompresses one zstd frame; CorruptDataError for a damaged frame or one that would
    exceed ``max_size`` bytes."""
# --- end compress ---
