"""A re-ingest of unchanged files loads only what it needs: no assistant, no vectors library,
no embedder, no tokenizer, no Hydra; anything that changes the store loads them as before."""

from __future__ import annotations

import json
import logging
import os
import re
from pathlib import Path

import pytest

from myai import ContextManager
from myai.config import load_config
from myai.errors import MyaiError
from myai.lazy_embedder import STATIC_DIM, LazyEmbedder, static_unavailable

NOT_FOR_AN_UNCHANGED_INGEST = [
    "myai.assistant",
    "myai.backends",
    "myai.embedders",
    "myai.vectors",
    "myai.tokens",
    "usearch",
    "numpy",
    "hydra",
]


def imported(stderr: str) -> set[str]:
    """The modules a run imported, from its ``-X importtime`` report."""
    return {m.group(1) for m in re.finditer(r"^import time:.*\|\s*([\w.]+)\s*$", stderr, re.M)}


def static_models(models_home: Path) -> bool:
    return static_unavailable(models_home) is None


def test_unchanged_reingest_imports_only_what_it_needs(
    cli, tmp_path: Path, models_home: Path
) -> None:
    root = tmp_path / "docs"
    root.mkdir()
    for i in range(3):
        (root / f"n{i}.txt").write_text(f"Note {i}: the heron {i} nests by the mill pond.\n" * 50)
    timing = {"PYTHONPROFILEIMPORTTIME": "1"}
    first = cli("ingest", str(root), "--json", env=timing)
    assert first.returncode == 0, first.stderr
    assert json.loads(first.stdout)["files_added"] == 3
    mods = imported(first.stderr)
    assert "myai.context" in mods and "hydra" in mods  # the report is read right
    if static_models(models_home):
        assert {"numpy", "usearch", "myai.embedders"} <= mods

    again = cli("ingest", str(root), "--json", env=timing)
    assert again.returncode == 0, again.stderr
    s = json.loads(again.stdout)
    assert (s["files_unchanged"], s["files_added"], s["tokens_added"]) == (3, 0, 0)
    mods = imported(again.stderr)
    assert "myai.context" in mods
    assert not mods & set(NOT_FOR_AN_UNCHANGED_INGEST), mods & set(NOT_FOR_AN_UNCHANGED_INGEST)

    # A change after that re-ingest: replaced and removed, the vectors complete.
    (root / "n0.txt").write_text("The otter swims below the bridge at dawn.\n" * 40)
    (root / "n2.txt").unlink()
    r = cli("ingest", str(root), "--json")
    s = json.loads(r.stdout)
    assert (s["files_replaced"], s["files_removed"], s["files_unchanged"]) == (1, 1, 1)
    cfg = load_config([f"data_dir={tmp_path / 'home'}"], cache=False)
    with ContextManager.from_config(cfg, readonly=True) as cm:
        assert sorted(Path(d["metadata"]["source"]).name for d in cm.list_documents()) == [
            "n0.txt",
            "n1.txt",
        ]
        assert "otter" in cm.search_context("where does the otter swim", top_k=1)[0]["text"]
        if cm.embedder is not None:
            live = {c for c, ch in cm._chunks.items() if ch.indexed}
            assert cm._vectors is not None and len(cm._vectors) == len(live)
            assert all(c in cm._vectors for c in live)


def test_a_store_on_disk_loads_its_embedder_and_tokenizer_when_first_used(
    tmp_path: Path, models_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if not static_models(models_home):
        pytest.skip("the MiniLM package is not installed: no static embedder")
    monkeypatch.setenv("MYAI_MODELS", str(models_home))
    cfg = load_config([f"data_dir={tmp_path}"], cache=False)
    with ContextManager.from_config(cfg) as cm:
        cm.add_document("The heron nests by the old mill pond every spring.", "a.txt")
    with ContextManager.from_config(cfg) as cm:
        assert isinstance(cm.embedder, LazyEmbedder) and not cm.embedder.is_loaded
        assert (cm.embedder.name, cm.embedder.dim) == ("static", STATIC_DIM)
        assert cm._tokenizer is None  # "auto": resolved when first counted
        assert [d["document_name"] for d in cm.list_documents()] == ["a.txt"]
        assert cm.add_document("The heron nests by the old mill pond every spring.", "a.txt")[
            "unchanged"
        ]
        assert not cm.embedder.is_loaded and cm._tokenizer is None
    with ContextManager.from_config(cfg) as cm:
        hits = cm.search_context("where does the heron nest", top_k=1)
        assert "heron" in hits[0]["text"] and cm.embedder.is_loaded
        cm.add_document("Otters swim in the river below the bridge.", "b.txt")
        assert cm._tokenizer is not None
    # In memory nothing is deferred: the embedder is needed at the first add.
    with ContextManager.from_config(cfg, storage_dir=None) as cm:
        assert cm.embedder is not None and not isinstance(cm.embedder, LazyEmbedder)


def test_an_unavailable_static_embedder_is_said_at_open(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("MYAI_MODELS", str(tmp_path / "no-models"))
    monkeypatch.setattr("myai.lazy_embedder.MINILM_PACKAGE", "no_such_model_package")
    cfg = load_config([f"data_dir={tmp_path}"], cache=False)
    with caplog.at_level(logging.WARNING, logger="myai.context"):
        cm = ContextManager.from_config(cfg)
    with cm:
        assert cm.embedder is None and cm._vectors is None
    assert "embedder static unavailable" in caplog.text and "not installed" in caplog.text


def test_lazy_embedder_loads_once_what_it_announced() -> None:
    class Fake:
        name, dim = "fake", 3
        tokenizer = "its tokenizer"

        def embed(self, texts: list[str]) -> list[list[float]]:
            return [[1.0, 0.0, 0.0] for _ in texts]

    loads: list[int] = []
    e = LazyEmbedder("fake", 3, lambda: loads.append(1) or Fake())
    assert not e.is_loaded and loads == []
    assert e.embed(["a", "b"]) == [[1.0, 0.0, 0.0]] * 2
    assert e.tokenizer == "its tokenizer" and e.is_loaded and loads == [1]
    wrong = LazyEmbedder("fake", 4, Fake)
    with pytest.raises(MyaiError, match="fake:3 loaded where fake:4"):
        wrong.embed(["a"])


def test_the_stored_tokenizer_warning_comes_when_counting(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from myai.tokens import default_tokenizer

    if default_tokenizer().name == "estimator":
        pytest.skip("no default model: 'auto' is the estimator too")
    store = tmp_path / "store"
    with ContextManager(storage_dir=store, tokenizer="estimate") as cm:
        cm.add_document("The heron nests by the old mill pond.", "a.txt")
    with (
        caplog.at_level(logging.WARNING, logger="myai.context"),
        ContextManager(storage_dir=store, tokenizer="auto") as cm,
    ):
        assert "counted tokens with" not in caplog.text
        cm.add_document("Otters swim in the river.", "b.txt")
    assert "counted tokens with" in caplog.text
    assert os.path.isfile(store / "store.db")
