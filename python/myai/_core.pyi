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
# --- end chunk ---

# --- dedup ---
# --- end dedup ---

# --- index ---
# --- end index ---

# --- compress ---
# --- end compress ---
