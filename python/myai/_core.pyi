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
# --- end index ---

# --- compress ---
# --- end compress ---
