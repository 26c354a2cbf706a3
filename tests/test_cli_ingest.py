"""The memory verbs (ingest, teach, correct, remember, forget, stats) run for real in a subprocess."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from filemakers import tiny_docx, tiny_pdf

from myai import ContextManager

REPO = Path(__file__).resolve().parents[1]


def store(tmp_path: Path) -> ContextManager:
    return ContextManager.open(tmp_path / "home" / "context_storage", readonly=True)


def docs(tmp_path: Path) -> dict[str, dict]:
    with store(tmp_path) as cm:
        return {d["document_name"]: d for d in cm.list_documents()}


def one_line_error(r) -> str:
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in r.stderr, r.stderr
    return lines[0]


def make_folder(root: Path) -> None:
    (root / "sub").mkdir(parents=True)
    (root / "notes.txt").write_text("The zebra project starts in March.\r\nIt has a budget.\n")
    (root / "sub" / "guide.md").write_text("# Guide\n\nHow to feed the llama.\n")
    (root / "mem.json").write_text(
        json.dumps(
            {
                "conversations": [
                    {
                        "question": "Favourite colour?",
                        "answer": "Teal",
                        "importance": 0.9,
                        "tags": ["prefs"],
                    },
                ],
                "facts": [{"fact": "The office wifi is called Narwhal", "tags": ["office"]}],
            }
        )
    )
    (root / "qa.csv").write_text("question,answer,importance\nWho is on call?,Priya,0.8\n")
    (root / "paper.pdf").write_bytes(tiny_pdf("Quantum walrus findings"))
    (root / "report.docx").write_bytes(tiny_docx([("Heading1", "Report"), (None, "Okapi sales")]))
    (root / "page.html").write_text("<html><body><p>Capybara pictures</p></body></html>")
    (root / "tool.py").write_text("def pangolin():\n    return 42\n")
    (root / "rows.jsonl").write_text('{"fact": "Axolotls regrow limbs"}\n')
    (root / ".secret.txt").write_text("hidden\n")
    (root / "photo.png").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00")


def test_ingest_folder_then_incremental(cli, tmp_path: Path) -> None:
    root = tmp_path / "docs"
    make_folder(root)
    r = cli("ingest", str(root), "--json")
    assert r.returncode == 0, r.stderr
    s = json.loads(r.stdout)
    assert s["files_added"] == 9 and s["failed"] == []
    assert {Path(x["path"]).name for x in s["skipped"]} == {".secret.txt", "photo.png"}
    d = docs(tmp_path)
    by_source = {Path(v["metadata"]["source"]).name for v in d.values()}
    assert by_source == {
        "notes.txt", "guide.md", "mem.json", "qa.csv", "paper.pdf", "report.docx", "page.html",
        "tool.py", "rows.jsonl",
    }  # fmt: skip
    conv = d[f"{root / 'mem.json'}#conversations[0]"]
    assert conv["importance"] == 0.9 and conv["metadata"]["tags"] == ["prefs"]
    assert conv["content_type"] == "conversation"
    assert d[f"{root / 'qa.csv'}#row1"]["importance"] == 0.8
    assert d[str(root / "tool.py")]["content_type"] == "code"
    with store(tmp_path) as cm:
        assert "walrus" in cm.search_context("quantum walrus", top_k=1)[0]["text"]
        assert "Okapi" in cm.search_context("okapi", top_k=1)[0]["text"]

    # Unchanged: nothing read again; changed: replaced; deleted: removed.
    r = cli("ingest", str(root), "--json")
    s = json.loads(r.stdout)
    assert (s["files_unchanged"], s["files_added"], s["tokens_added"]) == (9, 0, 0)
    (root / "notes.txt").write_text("The zebra project moved to May.\n")
    (root / "page.html").unlink()
    r = cli("ingest", str(root), "--json")
    s = json.loads(r.stdout)
    assert (s["files_replaced"], s["files_removed"], s["files_unchanged"]) == (1, 1, 7)
    d = docs(tmp_path)
    assert str(root / "page.html") not in d
    with store(tmp_path) as cm:
        assert "May" in cm.search_context("zebra project", top_k=1)[0]["text"]


def test_ingest_plain_output_when_piped(cli, tmp_path: Path) -> None:
    root = tmp_path / "docs"
    make_folder(root)
    r = cli("ingest", str(root), "--exclude", "*.pdf", "--include", "*.txt", "--include", "*.pdf")
    assert r.returncode == 0, r.stderr
    assert "[1/1] added" in r.stdout and "notes.txt" in r.stdout
    assert "ingest summary" in r.stdout and "files added" in r.stdout
    assert "\x1b[" not in r.stdout  # no terminal escapes when piped
    assert {Path(v["metadata"]["source"]).name for v in docs(tmp_path).values()} == {"notes.txt"}


def test_ingest_importance_option(cli, tmp_path: Path) -> None:
    f = tmp_path / "n.txt"
    f.write_text("important note\n")
    assert cli("ingest", str(f), "--importance", "0.8").returncode == 0
    assert docs(tmp_path)[str(f)]["importance"] == 0.8
    r = cli("ingest", str(f), "--importance", "3")
    assert r.returncode == 2 and "importance" in one_line_error(r)


def test_ingest_bad_file_exit_1_rest_continue(cli, tmp_path: Path) -> None:
    root = tmp_path / "docs"
    root.mkdir()
    (root / "good.txt").write_text("a good file\n")
    (root / "bad.json").write_text('{"broken": ')
    (root / "corrupt.pdf").write_bytes(b"%PDF-1.7\nnot really")
    r = cli("ingest", str(root))
    assert r.returncode == 1
    err = one_line_error(r)
    assert "2 files failed" in err
    assert "failed  " in r.stdout and "bad.json" in r.stdout and "corrupt.pdf" in r.stdout
    assert "invalid JSON" in r.stdout
    assert {Path(n).name for n in docs(tmp_path)} == {"good.txt"}
    r = cli("ingest", str(root), "--json")
    assert r.returncode == 1
    s = json.loads(r.stdout)
    assert {Path(x["path"]).name for x in s["failed"]} == {"bad.json", "corrupt.pdf"}


def test_ingest_usage_errors(cli) -> None:
    r = cli("ingest")
    assert r.returncode == 2 and "PATH" in one_line_error(r)
    r = cli("ingest", "missing-folder")
    assert r.returncode == 1 and "no such file" in one_line_error(r)


def test_teach_correct_remember_forget(cli, tmp_path: Path) -> None:
    r = cli("teach", "My sister is called Ingrid", "--json")
    assert r.returncode == 0, r.stderr
    taught = json.loads(r.stdout)
    assert taught["importance"] == 0.75
    r = cli("correct", "The meeting is on Monday", "The meeting is on Tuesday")
    assert r.returncode == 0, r.stderr
    assert "Tuesday" in r.stdout and "Monday" in r.stdout
    d = docs(tmp_path)
    t = d[taught["document_name"]]
    assert t["pinned"] and t["importance"] == 0.75 and t["metadata"]["kind"] == "taught"
    (c,) = [v for v in d.values() if v["metadata"].get("kind") == "correction"]
    assert c["importance"] == 0.95 and c["pinned"]
    assert c["metadata"]["right"] == "The meeting is on Tuesday"
    assert c["metadata"]["wrong"] == "The meeting is on Monday"

    # Teaching the same fact again changes nothing.
    again = json.loads(cli("teach", "My sister is called Ingrid", "--json").stdout)
    assert again["unchanged"] and again["document_id"] == taught["document_id"]

    r = cli("remember", "meeting", "--json")
    assert r.returncode == 0, r.stderr
    hits = json.loads(r.stdout)["results"]
    assert hits and "Tuesday" in hits[0]["text"]
    r = cli("remember", "Ingrid")
    assert r.returncode == 0 and "Ingrid" in r.stdout
    r = cli("remember", "--json")
    listed = json.loads(r.stdout)["results"]
    assert {x["document_id"] for x in listed} == {taught["document_id"], c["document_id"]}
    r = cli("remember", "nothing-matches-this-xyzzy")
    assert r.returncode == 0 and "nothing found" in r.stdout

    r = cli("forget", str(taught["document_id"]))
    assert r.returncode == 0, r.stderr
    assert taught["document_name"] not in docs(tmp_path)
    r = cli("forget", str(taught["document_id"]))
    assert r.returncode == 1 and "no document or memory" in one_line_error(r)
    r = cli("forget", c["document_name"], "--json")
    assert r.returncode == 0 and json.loads(r.stdout)["removed"]
    assert docs(tmp_path) == {}


def test_remember_on_a_fresh_machine(cli) -> None:
    r = cli("remember")
    assert r.returncode == 0 and "empty" in r.stdout
    r = cli("remember", "--top-k", "0", "x")
    assert r.returncode == 2 and "top-k" in one_line_error(r)


def test_teach_empty_is_usage_error(cli) -> None:
    r = cli("teach", "   ")
    assert r.returncode == 2 and "empty" in one_line_error(r)


def test_stats_reports_compression(cli, tmp_path: Path) -> None:
    root = tmp_path / "docs"
    make_folder(root)
    assert cli("ingest", str(root)).returncode == 0
    r = cli("stats")
    assert r.returncode == 0, r.stderr
    assert "compression" in r.stdout and "markdown" in r.stdout
    info = json.loads(cli("stats", "--json").stdout)
    assert info["context"]["total_documents"] == len(docs(tmp_path))
    assert "by_content_type" in info["compression"]


@pytest.mark.parametrize("verb", ["ingest", "teach", "correct", "remember", "forget", "stats"])
def test_verb_help(cli, verb: str) -> None:
    r = cli(verb, "--help")
    assert r.returncode == 0 and "usage:" in r.stdout and verb in r.stdout
    assert verb in cli("--help").stdout


def test_installed_app_from_another_directory(run_cli, tmp_path: Path) -> None:
    """The package as the interpreter finds it without this checkout on the path."""
    f = tmp_path / "n.txt"
    f.write_text("installed app note\n")
    env = {"PYTHONPATH": ""}
    if "ingest" not in run_cli("--help", env=env).stdout:
        pytest.skip("the installed myai predates the ingest verb")
    r = run_cli("ingest", str(f), "--json", env=env, cwd=tmp_path / "elsewhere")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["files_added"] == 1
    assert list((tmp_path / "elsewhere").iterdir()) == []


def test_watch_keeps_a_folder_in_sync(tmp_path: Path, models_home: Path) -> None:
    import signal
    import subprocess
    import sys
    import time

    folder = tmp_path / "notes"
    folder.mkdir()
    (folder / "a.md").write_text("# Alpha\n\nThe first note is about apples.\n")
    env = dict(os.environ, MYAI_HOME=str(tmp_path / "home"), MYAI_MODELS=str(models_home),
               PYTHONPATH=os.pathsep.join(x for x in (str(REPO / "python"),
                                                      os.environ.get("PYTHONPATH")) if x))  # fmt: skip
    p = subprocess.Popen(
        [sys.executable, "-m", "myai", "ingest", str(folder), "--watch"],
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip

    def wait_for(pred, what: str) -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if pred(docs(tmp_path)):
                    return
            except Exception:  # the store may be mid-commit: look again
                pass
            time.sleep(0.2)
        p.kill()
        raise AssertionError(f"{what} never happened: {p.stderr.read() if p.stderr else ''}")

    try:
        a = str(folder / "a.md")
        wait_for(lambda d: a in d, "the first ingest")
        (folder / "b.txt").write_text("A second note, about bananas.\n")
        wait_for(lambda d: str(folder / "b.txt") in d, "picking up a new file")
        first_hash = docs(tmp_path)[a]["metadata"].get("file_hash")  # before the edit: no race
        (folder / "a.md").write_text("# Alpha\n\nThe first note is now about apricots.\n")
        wait_for(lambda d: d[a]["metadata"].get("file_hash") != first_hash, "a replaced file")
        (folder / "b.txt").unlink()
        wait_for(lambda d: str(folder / "b.txt") not in d, "removing a deleted file")
    finally:
        p.send_signal(signal.SIGINT)
        out, err = p.communicate(timeout=60)
    assert p.returncode == 0, err
    assert "watching" in out and "sync:" in out and "stopped watching" in out
