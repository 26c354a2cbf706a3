"""The README's Python snippets run as written, so the guide never drifts from the code."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
BLOCKS = re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), re.S)


def test_readme_has_snippets() -> None:
    assert len(BLOCKS) >= 2


@pytest.mark.parametrize("code", BLOCKS, ids=[f"block{i}" for i in range(len(BLOCKS))])
def test_readme_snippet_runs(code: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MYAI_HOME", str(tmp_path / "home"))  # the Assistant's data_dir
    Path("spec.md").write_text(
        "# Spec\n\nThe specific technical detail: the cache holds 512 entries.\n", encoding="utf-8"
    )
    exec(compile(code, str(README), "exec"), {"__name__": "readme"})
