"""Shared fixtures of the test suite."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

# Tests never touch the user's data: data_dir is a fresh folder, and model files derived once
# (the static embedding table) go where `make test` keeps them, .cache/models in the checkout.
os.environ["MYAI_HOME"] = str(Path(os.environ.get("TMPDIR", "/tmp")) / f"myai-tests-{os.getpid()}")
os.environ.setdefault("MYAI_MODELS", str(REPO / ".cache" / "models"))


@pytest.fixture(scope="session")
def models_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Model files shared by the CLI tests ($MYAI_MODELS): the static embedding table is
    derived once per session, here, instead of in every test's fresh MYAI_HOME."""
    shared = os.environ.get("MYAI_MODELS")
    home = Path(shared) if shared else tmp_path_factory.mktemp("models")
    try:
        from myai.embedders import get_embedder

        get_embedder("static", home)
    except FileNotFoundError:
        pass  # the MiniLM package is missing: the store runs BM25-only
    return home


@pytest.fixture
def run_cli(tmp_path: Path, models_home: Path):
    """Runs ``python -m myai ARGS`` in a subprocess from an empty folder, with MYAI_HOME in tmp."""

    def run(
        *args: str,
        cwd: Path | None = None,
        env: dict[str, str] | None = None,
        stdin: str | None = None,
    ):
        e = dict(os.environ, MYAI_HOME=str(tmp_path / "home"), MYAI_MODELS=str(models_home))
        e.pop("MYAI_API_KEY", None)
        if env:
            e.update(env)
        work = cwd or tmp_path / "cwd"
        work.mkdir(parents=True, exist_ok=True)
        return subprocess.run(
            [sys.executable, "-m", "myai", *args],
            cwd=work,
            env=e,
            input=stdin,
            capture_output=True,
            text=True,
            timeout=300,
        )

    return run


@pytest.fixture
def cli(run_cli):
    """run_cli with this checkout's package first on the path (a relative PYTHONPATH would not
    survive the subprocess's change of directory)."""
    path = os.pathsep.join(x for x in (str(REPO / "python"), os.environ.get("PYTHONPATH")) if x)

    def run(*args: str, **kw):
        return run_cli(*args, env={"PYTHONPATH": path, **kw.pop("env", {})}, **kw)

    return run


# Property tests draw the same examples on every run (CI must not flake); set
# HYPOTHESIS_PROFILE=explore locally to search with fresh random examples.
from hypothesis import settings  # noqa: E402

settings.register_profile("ci", derandomize=True, print_blob=True)
settings.register_profile("explore", derandomize=False)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
