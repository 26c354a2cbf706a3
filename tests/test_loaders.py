"""Loaders and folder ingestion, through the library."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from filemakers import tiny_docx, tiny_pdf

from myai import ContextManager
from myai.loaders import LoadError, decode_text, ingest_paths, load_file


def write(p: Path, data: str | bytes) -> Path:
    p.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(data, str):
        p.write_text(data, encoding="utf-8")
    else:
        p.write_bytes(data)
    return p


# ---------------------------------------------------------------------------- single files


def test_txt_md_and_code(tmp_path: Path) -> None:
    (r,) = load_file(write(tmp_path / "a.txt", "plain words\r\nnext line\n"))
    assert r.content_type == "text" and "plain words" in r.text and r.key == ""
    (r,) = load_file(write(tmp_path / "b.md", "# Title\n\nbody\n"))
    assert r.content_type == "markdown"
    (r,) = load_file(write(tmp_path / "c.rs", "fn main() {}\n"))
    assert r.content_type == "code" and r.metadata["language"] == "rs"


def test_crlf_is_normalised_by_the_store(tmp_path: Path) -> None:
    cm = ContextManager()
    ingest_paths(cm, [write(tmp_path / "a.txt", "one\r\ntwo\r\n")])
    (hit,) = cm.search_context("two", top_k=1)
    assert "\r" not in hit["text"] and "one\ntwo" in hit["text"]


def test_generic_json_flattened_with_key_paths(tmp_path: Path) -> None:
    doc = {"user": {"name": "Ada", "langs": ["en", "fr"]}, "n": 3, "none": None}
    (r,) = load_file(write(tmp_path / "x.json", json.dumps(doc)))
    assert r.content_type == "data"
    lines = r.text.splitlines()
    assert "user.name: Ada" in lines
    assert "user.langs[1]: fr" in lines
    assert "n: 3" in lines
    assert not any(ln.startswith("none") for ln in lines)


def test_structured_json_conversations_and_facts(tmp_path: Path) -> None:
    doc = {
        "conversations": [
            {"question": "Capital of France?", "answer": "Paris", "importance": 0.9, "tags": ["geo"]},
            {"user": "Hi", "assistant": "Hello", "topic": "greeting"},
        ],
        "facts": [{"fact": "Water boils at 100 C", "importance": 0.8, "tags": "science; physics"},
                  {"text": "Plain fact"}, "A bare string fact"],
        "title": "my memories",
    }  # fmt: skip
    recs = load_file(write(tmp_path / "mem.json", json.dumps(doc)))
    by_key = {r.key: r for r in recs}
    assert set(by_key) == {
        "conversations[0]", "conversations[1]", "facts[0]", "facts[1]", "facts[2]", "rest",
    }  # fmt: skip
    c0 = by_key["conversations[0]"]
    assert c0.text == "Question: Capital of France?\nAnswer: Paris\n"
    assert c0.content_type == "conversation"
    assert c0.importance == 0.9 and c0.metadata["tags"] == ["geo"]
    assert c0.metadata["kind"] == "conversation"
    c1 = by_key["conversations[1]"]
    assert c1.importance is None and c1.metadata["topic"] == "greeting"
    f0 = by_key["facts[0]"]
    assert f0.text == "Water boils at 100 C" and f0.metadata["kind"] == "fact"
    assert f0.metadata["tags"] == ["science", "physics"] and f0.importance == 0.8
    assert by_key["facts[2]"].text == "A bare string fact"
    assert by_key["rest"].text == "title: my memories\n"
    assert c0.name("/x/mem.json") == "/x/mem.json#conversations[0]"


def test_structured_json_importance_reaches_the_store(tmp_path: Path) -> None:
    doc = {"facts": [{"fact": "alpha fact", "importance": 0.9}, {"fact": "beta fact"}]}
    f = write(tmp_path / "m.json", json.dumps(doc))
    cm = ContextManager()
    s = ingest_paths(cm, [f], importance=0.3)
    assert s["documents_added"] == 2
    imp = {d["metadata"]["record"]: d["importance"] for d in cm.list_documents()}
    assert imp == {"facts[0]": 0.9, "facts[1]": 0.3}  # the record's own wins over the call's


@pytest.mark.parametrize(
    ("doc", "needle"),
    [
        ({"facts": [{"fact": "x", "importance": 2}]}, "facts[0]: importance must be within"),
        ({"facts": [{"fact": "x", "importance": "high"}]}, "importance must be a number"),
        ({"conversations": [{"question": "only a question"}]}, "conversations[0]: expected"),
    ],
)
def test_structured_json_bad_entries_named(tmp_path: Path, doc, needle) -> None:
    with pytest.raises(LoadError, match=r"m\.json") as e:
        load_file(write(tmp_path / "m.json", json.dumps(doc)))
    assert needle in str(e.value)


def test_invalid_json_names_file_and_position(tmp_path: Path) -> None:
    with pytest.raises(LoadError) as e:
        load_file(write(tmp_path / "bad.json", '{"a": 1,\n "b": }'))
    assert (
        "bad.json" in str(e.value) and "invalid JSON" in str(e.value) and "line 2" in str(e.value)
    )


def test_jsonl_one_record_per_line(tmp_path: Path) -> None:
    text = '{"question": "Q?", "answer": "A."}\n\n{"fact": "F", "tags": ["t"]}\n{"k": "v"}\n'
    recs = load_file(write(tmp_path / "x.jsonl", text))
    assert [r.key for r in recs] == ["L1", "L3", "L4"]
    assert recs[0].content_type == "conversation" and recs[1].metadata["tags"] == ["t"]
    assert recs[2].text == "k: v\n"
    with pytest.raises(LoadError, match="line 2"):
        load_file(write(tmp_path / "y.jsonl", '{"a": "b"}\n{nope\n'))


def test_csv_question_answer_importance(tmp_path: Path) -> None:
    text = "Question,Answer,Importance,Tags\nWho wrote it?,Me,0.85,a;b\nWhen?,Today,,\n"
    recs = load_file(write(tmp_path / "qa.csv", text))
    assert [r.key for r in recs] == ["row1", "row2"]
    assert recs[0].text == "Question: Who wrote it?\nAnswer: Me\n"
    assert recs[0].importance == 0.85 and recs[0].metadata["tags"] == ["a", "b"]
    assert recs[1].importance is None


def test_csv_other_table_row_by_row(tmp_path: Path) -> None:
    (r,) = load_file(write(tmp_path / "t.csv", "name,city\nAda,London\nAlan,\n"))
    assert r.content_type == "data"
    assert r.text == "name: Ada; city: London\nname: Alan\n"
    (r,) = load_file(write(tmp_path / "t.tsv", "a\tb\n1\t2\n"))
    assert r.text == "a: 1; b: 2\n"


def test_pdf_docx_html(tmp_path: Path) -> None:
    (r,) = load_file(write(tmp_path / "p.pdf", tiny_pdf("Hello from a tiny PDF")))
    assert "Hello from a tiny PDF" in r.text and r.metadata["format"] == "pdf"
    docx = tiny_docx([("Heading1", "Report"), (None, "The first paragraph.")])
    (r,) = load_file(write(tmp_path / "d.docx", docx))
    assert r.text.startswith("# Report") and "The first paragraph." in r.text
    html = "<html><head><script>var x=1;</script></head><body><h2>Hi</h2><p>seen</p></body></html>"
    (r,) = load_file(write(tmp_path / "h.html", html))
    assert "## Hi" in r.text and "seen" in r.text and "var x" not in r.text


@pytest.mark.parametrize(
    ("name", "data", "needle"),
    [
        ("bad.pdf", b"%PDF-1.4\ngarbage without objects", "not a readable PDF"),
        ("bad.docx", b"PK\x03\x04 not really a zip", "not a readable .docx"),
        ("blob.txt", b"\x00\x01\x02\x03binary" * 10, "binary"),
    ],
)
def test_bad_files_raise_naming_file_and_reason(tmp_path: Path, name, data, needle) -> None:
    with pytest.raises(LoadError) as e:
        load_file(write(tmp_path / name, data))
    assert name in str(e.value) and needle in str(e.value)


def test_unreadable_file(tmp_path: Path) -> None:
    with pytest.raises(LoadError, match="cannot read"):
        load_file(tmp_path / "missing.txt")


@pytest.mark.parametrize(
    ("data", "encoding", "noted"),
    [
        ("\ufeffcafé ünïcode".encode(), "utf-8", False),
        ("café ünïcode".encode("utf-16"), "utf-16-le", False),  # with its BOM
        ("\ufeffcafé ünïcode".encode("utf-16-be"), "utf-16-be", False),
        ("café ünïcode".encode("latin-1"), "latin-1", True),
        ("café ünïcode".encode("utf-16-le"), "utf-16-le", True),  # no BOM: by its NULs
        ("café ünïcode".encode("utf-16-be"), "utf-16-be", True),
        ("“café” – ünïcode €5".encode("cp1252"), "cp1252", True),  # curly quotes, dash, euro
    ],
)
def test_encodings(tmp_path: Path, data: bytes, encoding: str, noted: bool) -> None:
    want = "“café” – ünïcode €5" if encoding == "cp1252" else "café ünïcode"
    text, enc, note = decode_text(data)
    assert text == want and enc == encoding and (note is not None) == noted
    (r,) = load_file(write(tmp_path / "e.txt", data))
    assert r.text == want
    assert ("encoding_note" in r.metadata) == noted


def test_empty_file_has_no_records(tmp_path: Path) -> None:
    assert load_file(write(tmp_path / "e.txt", "  \n")) == []


# ---------------------------------------------------------------------------- folders


def make_tree(root: Path) -> None:
    write(root / "a.txt", "alpha document about apples\n")
    write(root / "sub" / "b.md", "# Bananas\n\nbanana notes\n")
    write(root / "sub" / "c.py", "def cherry():\n    return 1\n")
    write(root / "data.csv", "name,fruit\nAda,apple\n")
    write(root / ".hidden.txt", "secret\n")
    write(root / ".git" / "config", "[core]\n")
    write(root / "image.png", b"\x89PNG\r\n\x1a\n\x00\x00")
    write(root / "blob.dat2", b"\x00\x00\x01binary")
    write(root / "skip" / "d.txt", "excluded folder\n")


def names(cm: ContextManager, root: Path) -> set[str]:
    return {Path(d["metadata"]["source"]).relative_to(root).as_posix() for d in cm.list_documents()}


def test_folder_recursive_hidden_and_binary_skipped(tmp_path: Path) -> None:
    root = tmp_path / "docs"
    make_tree(root)
    cm = ContextManager()
    seen = []
    s = ingest_paths(cm, [root], exclude=["skip"], progress=seen.append)
    assert names(cm, root) == {"a.txt", "sub/b.md", "sub/c.py", "data.csv"}
    assert s["files_added"] == 4 and s["failed"] == []
    reasons = {Path(x["path"]).name: x["reason"] for x in s["skipped"]}
    assert reasons[".hidden.txt"] == "hidden file"
    assert reasons[".git"] == "hidden folder"
    assert reasons["skip"] == "excluded"
    assert "binary" in reasons["image.png"] and "binary" in reasons["blob.dat2"]
    assert s["tokens_added"] > 0 and s["compression_ratio"] > 0
    assert [p.files_done for p in seen] == list(range(1, len(seen) + 1))
    assert seen[-1].bytes_done == seen[-1].bytes_total
    types = {Path(d["metadata"]["source"]).name: d["content_type"] for d in cm.list_documents()}
    assert types == {"a.txt": "text", "b.md": "markdown", "c.py": "code", "data.csv": "data"}


def test_include_and_exclude_globs(tmp_path: Path) -> None:
    root = tmp_path / "docs"
    make_tree(root)
    cm = ContextManager()
    ingest_paths(cm, [root], include=["*.md", "*.txt"], exclude=["skip/*"])
    assert names(cm, root) == {"a.txt", "sub/b.md"}
    cm2 = ContextManager()
    ingest_paths(cm2, [root], include=["sub/*"])
    assert names(cm2, root) == {"sub/b.md", "sub/c.py"}


def test_incremental_reingest(tmp_path: Path) -> None:
    root = tmp_path / "docs"
    make_tree(root)
    cm = ContextManager()
    ingest_paths(cm, [root])
    ids = {d["document_name"]: d["document_id"] for d in cm.list_documents()}

    s = ingest_paths(cm, [root])
    assert s["files_unchanged"] == 5 and s["files_added"] == 0 and s["tokens_added"] == 0
    assert {d["document_name"]: d["document_id"] for d in cm.list_documents()} == ids

    write(root / "a.txt", "alpha document about apricots now\n")
    (root / "sub" / "b.md").unlink()
    write(root / "new.txt", "a new file\n")
    s = ingest_paths(cm, [root])
    assert (s["files_replaced"], s["files_removed"], s["files_added"]) == (1, 1, 1)
    assert s["files_unchanged"] == 3
    assert "sub/b.md" not in names(cm, root) and "new.txt" in names(cm, root)
    assert cm.search_context("apricots", top_k=1)[0]["document_name"] == str(root / "a.txt")
    assert cm.search_context("apples", top_k=5) == [] or all(
        "apples" not in h["text"] for h in cm.search_context("apples", top_k=5)
    )
    s = ingest_paths(cm, [root])
    assert s["files_unchanged"] == 5 and s["files_replaced"] == 0


def test_incremental_structured_file(tmp_path: Path) -> None:
    f = write(tmp_path / "m.json", json.dumps({"facts": ["one fact", "two fact", "three fact"]}))
    cm = ContextManager()
    assert ingest_paths(cm, [f])["documents_added"] == 3
    assert ingest_paths(cm, [f])["files_unchanged"] == 1
    write(f, json.dumps({"facts": ["one fact", "two facts changed"]}))
    s = ingest_paths(cm, [f])
    assert s["files_replaced"] == 1
    assert sorted(d["metadata"]["record"] for d in cm.list_documents()) == ["facts[0]", "facts[1]"]
    assert ingest_paths(cm, [f])["files_unchanged"] == 1  # every record has the new hash


def test_one_bad_file_reported_rest_continue(tmp_path: Path) -> None:
    root = tmp_path / "docs"
    write(root / "good1.txt", "good one\n")
    write(root / "bad.json", "{not json")
    write(root / "broken.pdf", b"%PDF-1.4 nothing else")
    write(root / "good2.md", "# good two\n")
    cm = ContextManager()
    s = ingest_paths(cm, [root, tmp_path / "nope"])
    assert s["files_added"] == 2
    failed = {Path(x["path"]).name: x["reason"] for x in s["failed"]}
    assert set(failed) == {"bad.json", "broken.pdf", "nope"}
    assert "invalid JSON" in failed["bad.json"] and "PDF" in failed["broken.pdf"]
    assert "no such file" in failed["nope"]


def test_empty_file_skipped_and_importance_validated(tmp_path: Path) -> None:
    root = tmp_path / "docs"
    write(root / "empty.txt", "")
    cm = ContextManager()
    s = ingest_paths(cm, [root])
    assert s["skipped"] == [{"path": str(root / "empty.txt"), "reason": "empty file"}]
    with pytest.raises(ValueError, match="importance"):
        ingest_paths(cm, [root], importance=1.5)


@pytest.mark.skipif(not hasattr(os, "chmod") or os.geteuid() == 0, reason="root reads anything")
def test_unreadable_file_in_folder(tmp_path: Path) -> None:
    root = tmp_path / "docs"
    f = write(root / "locked.txt", "x\n")
    write(root / "ok.txt", "fine\n")
    f.chmod(0)
    try:
        s = ingest_paths(ContextManager(), [root])
    finally:
        f.chmod(0o644)
    assert s["files_added"] == 1 and "cannot read" in s["failed"][0]["reason"]
