"""Type stubs of myai._core, the Rust extension (checked by mypy.stubtest).

Offsets are byte offsets into the UTF-8 encoding of the text, as the core returns them.
"""

from collections.abc import Iterable, Sequence
from typing import final

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
# --- end chunk ---

# --- dedup ---
# --- end dedup ---

# --- index ---
# --- end index ---

# --- compress ---
# --- end compress ---
