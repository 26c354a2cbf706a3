"""The command line, run for real in a subprocess."""

from __future__ import annotations

import json

import pytest

from myai.cli import split_overrides


def test_split_overrides() -> None:
    args, ov = split_overrides(
        ["ask", "what is x=5 about?", "scenario=min_ram", "+foo.bar=1", "~cache", "--json", "a=b"]
    )
    assert args == ["ask", "what is x=5 about?", "--json"]
    assert ov == ["scenario=min_ram", "+foo.bar=1", "~cache", "a=b"]


def test_help_lists_verbs(run_cli) -> None:
    r = run_cli("--help")
    assert r.returncode == 0
    assert "stats" in r.stdout and "key=value" in r.stdout


def test_cfg_job_prints_composed_config(run_cli, tmp_path) -> None:
    r = run_cli("scenario=min_ram", "--cfg", "job")
    assert r.returncode == 0, r.stderr
    assert "scenario_name: min_ram" in r.stdout
    assert "max_tokens: 262144" in r.stdout
    # Hydra's compose API: no outputs/ folder where the user runs the command.
    assert list((tmp_path / "cwd").iterdir()) == []


def test_stats_json(run_cli) -> None:
    r = run_cli("stats", "--json", "scenario=max_quality")
    assert r.returncode == 0, r.stderr
    info = json.loads(r.stdout)
    assert info["scenario"] == "max_quality"
    assert info["context"]["max_tokens"] == 2097152


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["context.nope=1", "stats"], "nope"),
        (["stats", "context.chunk_size=big"], "big"),
        (["frobnicate"], "frobnicate"),
        (["stats", "--bogus"], "--bogus"),
    ],
)
def test_usage_errors_exit_2_with_one_line(run_cli, args, needle) -> None:
    r = run_cli(*args)
    assert r.returncode == 2
    assert needle in r.stderr
    assert "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


def test_eval_retrieval_on_a_labelled_set(run_cli, tmp_path) -> None:
    from filemakers import labelled_set

    root = labelled_set(tmp_path / "set", 200, 30)
    r = run_cli("eval", "retrieval", str(root), "--json", "embedder.name=none")
    assert r.returncode == 0, r.stderr
    rows = json.loads(r.stdout)
    assert [row["mode"] for row in rows] == ["bm25"]
    assert rows[0]["ndcg@10"] > 0.8 and rows[0]["queries"] == 30
    bad = run_cli("eval", "retrieval", str(tmp_path / "nowhere"))
    assert bad.returncode == 1 and "corpus.jsonl" in bad.stderr
