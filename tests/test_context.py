"""The context store: API, capacity and eviction, persistence, crashes, locking, corruption."""

from __future__ import annotations

import json
import logging
import os
import random
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from myai import (
    CapacityError,
    ContextManager,
    CorruptStoreError,
    MillionTokenContextManager,
    StoreLockedError,
    VectorMemory,
    get_compression_monitor,
)
from myai.content import UnsupportedContentError
from myai.corpus import generated_corpus
from myai.summarize import keywords

FACTS = {
    "harbour.md": "# Harbour\n\nThe lighthouse keeper Ansel Mirrow logs every ship at dawn.\n\n"
    "Fog horns sound twice when the tide turns.",
    "garden.txt": "Tomatoes need six hours of sun. Basil likes warm soil and regular water.",
    "physics.txt": "The zorblax constant equals 42.7 in the quantum flux capacitor.",
}


def fill(cm: ContextManager) -> dict[str, int]:
    return {n: cm.add_document(t, n)["document_id"] for n, t in FACTS.items()}


@pytest.fixture
def cm(tmp_path: Path):
    with ContextManager(storage_dir=tmp_path / "store", chunk_size=64, chunk_overlap=8) as c:
        yield c


def test_add_and_search(cm: ContextManager) -> None:
    r = cm.add_document(FACTS["physics.txt"], "physics.txt", {"topic": "physics"})
    assert set(r) >= {
        "document_id",
        "tokens_added",
        "chunks_created",
        "duplicates_skipped",
        "evicted",
        "compression",
    }
    assert r["tokens_added"] > 0 and r["chunks_created"] == 1 and r["evicted"] == []
    assert r["compression"]["compression_ratio_formatted"].endswith(":1")
    hits = cm.search_context("zorblax constant", top_k=3)
    assert hits and hits[0]["document_name"] == "physics.txt"
    h = hits[0]
    assert "42.7" in h["text"] and h["metadata"] == {"topic": "physics"}
    assert h["start"] == 0 and h["end"] == len(FACTS["physics.txt"].encode())
    assert h["score"] > 0


def test_offsets_point_into_the_document(cm: ContextManager) -> None:
    text = generated_corpus(3000) + "\n\nThe secret password is marzipan-lantern.\n"
    doc = cm.add_document(text, "long.txt")["document_id"]
    hit = cm.search_context("secret password marzipan lantern", top_k=1)[0]
    full = cm.get_document(doc)["text"].encode()
    assert full[hit["start"] : hit["end"]].decode() == hit["text"]
    assert "marzipan-lantern" in hit["text"]


def test_readd_unchanged_is_noop_and_changed_replaces(cm: ContextManager) -> None:
    first = cm.add_document(FACTS["garden.txt"], "garden.txt")
    again = cm.add_document(FACTS["garden.txt"], "garden.txt")
    assert again["unchanged"] and again["tokens_added"] == 0
    assert again["document_id"] == first["document_id"]
    changed = cm.add_document("Tomatoes need eight hours of sun now.", "garden.txt")
    assert changed["replaced"] and changed["document_id"] != first["document_id"]
    assert len(cm.list_documents()) == 1
    assert "eight" in cm.search_context("tomatoes sun")[0]["text"]
    assert cm.get_statistics()["total_documents"] == 1


def test_remove_and_list(cm: ContextManager) -> None:
    ids = fill(cm)
    assert [d["document_name"] for d in cm.list_documents()] == list(FACTS)
    assert cm.remove_document(ids["physics.txt"])
    assert not cm.remove_document(ids["physics.txt"])
    assert cm.search_context("zorblax") == []
    assert len(cm) == 2


def test_filters(cm: ContextManager) -> None:
    ids = fill(cm)
    cm.add_document("Ships and the tide at the harbour.", "notes.txt", {"owner": "ana"})
    by_doc = cm.search_context("tide", filters={"document_id": ids["harbour.md"]})
    assert {h["document_name"] for h in by_doc} == {"harbour.md"}
    by_type = cm.search_context("tide", filters={"content_type": "markdown"})
    assert {h["content_type"] for h in by_type} == {"markdown"}
    by_meta = cm.search_context("tide", filters={"metadata": {"owner": "ana"}})
    assert {h["document_name"] for h in by_meta} == {"notes.txt"}
    later = cm.search_context("tide", filters={"created_after": time.time() + 60})
    assert later == []
    with pytest.raises(ValueError, match="unknown filter"):
        cm.search_context("tide", filters={"colour": "red"})


def test_statistics(cm: ContextManager) -> None:
    fill(cm)
    st = cm.get_statistics()
    assert st["total_documents"] == 3
    assert st["total_tokens"] == sum(d["stored_tokens"] for d in cm.list_documents())
    assert 0 < st["capacity_used"] < 0.01
    assert st["storage_size_mb"] > 0 and st["memory_mb"] > 0
    assert set(st["content_types"]) == {"markdown", "text"}
    assert st["compression"]["documents_analyzed"] == 3


def test_capacity_error_stores_nothing(tmp_path: Path) -> None:
    with ContextManager(
        max_tokens=60,
        chunk_size=32,
        chunk_overlap=0,
        auto_cleanup=False,
        storage_dir=tmp_path / "s",
    ) as cm:
        cm.add_document(FACTS["physics.txt"], "a.txt")
        before = cm.get_statistics()["total_tokens"]
        with pytest.raises(CapacityError) as e:
            cm.add_document(generated_corpus(200), "big.txt")
        assert e.value.missing_tokens > 0
        assert f"{e.value.missing_tokens} tokens missing" in str(e.value)
        assert cm.get_statistics()["total_tokens"] == before
        assert [d["document_name"] for d in cm.list_documents()] == ["a.txt"]
    with ContextManager.open(tmp_path / "s") as cm:
        assert [d["document_name"] for d in cm.list_documents()] == ["a.txt"]


def test_eviction_lru_and_pinning(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    texts = [generated_corpus(40, seed=i) for i in range(6)]
    sizes = []
    with ContextManager(max_tokens=10_000, chunk_size=64, chunk_overlap=0) as probe:
        sizes = [probe.add_document(t, f"d{i}")["tokens_added"] for i, t in enumerate(texts)]
    cap = sum(sizes[:4]) + 1
    with ContextManager(
        max_tokens=cap, chunk_size=64, chunk_overlap=0, storage_dir=tmp_path / "s"
    ) as cm:
        cm.add_document(texts[0], "taught", importance=0.8)  # pinned
        for i in (1, 2, 3):
            cm.add_document(texts[i], f"d{i}")
            time.sleep(0.01)
        cm.search_context(texts[1].split()[3])  # d1 becomes recently used
        with caplog.at_level(logging.WARNING, logger="myai.context"):
            r = cm.add_document(texts[4], "d4")
        evicted = [e["document_name"] for e in r["evicted"]]
        assert evicted and "taught" not in evicted and "d1" not in evicted
        assert evicted[0] == "d2"
        assert any("evicted d2" in m for m in caplog.messages)
        names = {d["document_name"] for d in cm.list_documents()}
        assert "taught" in names and "d4" in names
        assert cm.get_statistics()["total_tokens"] <= cap
        assert cm.get_statistics()["evictions"] == len(evicted)


def test_document_bigger_than_capacity(tmp_path: Path) -> None:
    with (
        ContextManager(max_tokens=50, chunk_size=32, chunk_overlap=0) as cm,
        pytest.raises(CapacityError, match="more than the store's capacity"),
    ):
        cm.add_document(generated_corpus(500), "huge.txt")


def test_persistence_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "s"
    with ContextManager(storage_dir=path, chunk_size=64, chunk_overlap=8) as cm:
        fill(cm)
        cm.add_document(generated_corpus(5000), "corpus.txt")
        expected = cm.search_context("lighthouse keeper ships", top_k=5)
        stats = cm.get_statistics()
    with ContextManager.open(path) as cm:
        assert cm.chunk_size == 64 and cm.chunk_overlap == 8
        got = cm.search_context("lighthouse keeper ships", top_k=5)
        assert [(h["chunk_id"], round(h["score"], 4)) for h in got] == [
            (h["chunk_id"], round(h["score"], 4)) for h in expected
        ]
        assert cm.get_statistics()["total_tokens"] == stats["total_tokens"]
        assert cm.monitor.get_stats()["documents_analyzed"] == 4


def test_open_without_snapshot_rebuilds(tmp_path: Path) -> None:
    path = tmp_path / "s"
    cm = ContextManager(storage_dir=path, chunk_size=64, chunk_overlap=8)
    fill(cm)
    expected = cm.search_context("fog horns tide")
    cm._release_lock()  # as if the process died: no save, no close
    cm._db.close()  # type: ignore[union-attr]
    cm._closed = True
    with ContextManager.open(path) as again:
        assert again.search_context("fog horns tide")[0]["chunk_id"] == expected[0]["chunk_id"]


def test_corrupt_snapshot_is_rebuilt(tmp_path: Path, caplog) -> None:
    path = tmp_path / "s"
    with ContextManager(storage_dir=path) as cm:
        fill(cm)
    db = sqlite3.connect(path / "store.db")
    blob = bytearray(db.execute("SELECT value FROM meta WHERE key='bm25'").fetchone()[0])
    blob[len(blob) // 2] ^= 0xFF
    with db:
        db.execute("UPDATE meta SET value=? WHERE key='bm25'", (bytes(blob),))
    db.close()
    with caplog.at_level(logging.WARNING, logger="myai.context"), ContextManager.open(path) as cm:
        assert cm.search_context("zorblax")[0]["document_name"] == "physics.txt"
    assert any("corrupt" in m and "rebuilding" in m for m in caplog.messages)


@pytest.mark.parametrize("damage", ["garbage", "truncate", "empty"])
def test_corrupt_database_names_the_file(tmp_path: Path, damage: str) -> None:
    path = tmp_path / "s"
    with ContextManager(storage_dir=path) as cm:
        fill(cm)
        cm.add_document(generated_corpus(20_000), "big.txt")
    db = path / "store.db"
    data = db.read_bytes()
    if damage == "garbage":
        db.write_bytes(b"this is not a database" * 100)
    elif damage == "truncate":
        db.write_bytes(data[: len(data) // 3])
    else:
        db.write_bytes(b"")
    for p in path.glob("store.db-*"):
        p.unlink()
    with (
        pytest.raises(CorruptStoreError) as e,
        ContextManager.open(path) if damage != "empty" else ContextManager(storage_dir=path) as cm,
    ):
        cm.search_context("zorblax")
        cm.get_document(cm.list_documents()[-1]["document_id"])
    assert "store.db" in str(e.value)


def test_repair_salvages_intact_documents(tmp_path: Path) -> None:
    path = tmp_path / "s"
    with ContextManager(storage_dir=path) as cm:
        fill(cm)
    db = sqlite3.connect(path / "store.db")
    with db:  # lose one document's block
        blk = db.execute("SELECT blk FROM chunks WHERE doc_id=1").fetchone()[0]
        db.execute("DELETE FROM blocks WHERE id=?", (blk,))
    db.close()
    report = ContextManager.repair(path)
    assert report == {"documents_kept": 2, "documents_lost": 1}
    with ContextManager.open(path) as cm:
        assert len(cm) == 2
        assert cm.search_context("zorblax")[0]["document_name"] == "physics.txt"
    assert (path / "store.db.corrupt").exists()


def _child(code: str, *args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(code), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


WRITER = """
import sys
from myai import ContextManager
from myai.corpus import generated_corpus
from myai.summarize import keywords
cm = ContextManager(storage_dir=sys.argv[1], chunk_size=128, chunk_overlap=16, tokenizer="estimate")
start = len(cm)
i = start
while True:
    text = generated_corpus(300 + 700 * (i % 3), seed=i) + f" uniqueword{i}"
    cm.add_document(text, f"doc{i}")
    print(f"ACK doc{i}", flush=True)
    i += 1
    if i % 7 == 0:
        cm.save()
"""


def test_kill_at_random_points_keeps_acknowledged_documents(tmp_path: Path) -> None:
    rng = random.Random(1234)
    path = tmp_path / "s"
    acked: set[str] = set()
    for _trial in range(50):
        p = _child(WRITER, str(path))
        # Wait for the writer's first acknowledgement (its start-up time depends on the load
        # of the machine), then kill it at a random point of its work.
        assert p.stdout is not None
        first = p.stdout.readline()
        time.sleep(rng.uniform(0.0, 0.4))
        os.kill(p.pid, signal.SIGKILL)
        out, err = p.communicate()
        assert "Traceback" not in err, err
        out = first + out
        acked |= {ln.split()[1] for ln in out.splitlines() if ln.startswith("ACK ")}
    assert len(acked) > 50, "the writer made progress"
    with ContextManager.open(path, tokenizer="estimate") as cm:
        names = {d["document_name"] for d in cm.list_documents()}
        assert acked <= names
        for name in rng.sample(sorted(acked), 10):
            n = int(name[3:])
            hits = cm.search_context(f"uniqueword{n}", top_k=1)
            assert hits and hits[0]["document_name"] == name


def test_second_writer_is_refused_and_readers_follow(tmp_path: Path) -> None:
    path = tmp_path / "s"
    with ContextManager(storage_dir=path) as cm:
        cm.add_document(FACTS["physics.txt"], "physics.txt")
        code = """
import sys
from myai import ContextManager, StoreLockedError
try:
    ContextManager(storage_dir=sys.argv[1])
except StoreLockedError as e:
    print("LOCKED", e)
r = ContextManager.open(sys.argv[1], readonly=True)
print("READ", r.search_context("zorblax")[0]["document_name"])
"""
        p = _child(code, str(path))
        out, err = p.communicate(timeout=120)
        assert "LOCKED" in out and str(os.getpid()) in out, err
        assert "READ physics.txt" in out
        reader = ContextManager.open(path, readonly=True)
        cm.add_document(FACTS["garden.txt"], "garden.txt")
        time.sleep(0.25)
        assert reader.search_context("basil soil")[0]["document_name"] == "garden.txt"
        with pytest.raises(Exception, match="read-only"):
            reader.add_document("x", "x")
        reader.close()
    with pytest.raises(StoreLockedError):
        a = ContextManager(storage_dir=path)
        try:
            ContextManager(storage_dir=path)
        finally:
            a.close()


def test_context_summary_budget(cm: ContextManager) -> None:
    fill(cm)
    cm.add_document(generated_corpus(3000), "corpus.txt")
    for budget in (5, 20, 60, 200, 1000):
        s = cm.get_context_summary(max_tokens=budget)
        assert cm.tokenizer.count_tokens(s) <= budget
    s = cm.get_context_summary(max_tokens=400)
    assert "[physics.txt]" in s and "zorblax" in s
    assert cm.get_context_summary(0) == ""


def test_bad_input_is_refused_and_nothing_lost(cm: ContextManager) -> None:
    fill(cm)
    before = cm.get_statistics()["total_tokens"]
    with pytest.raises(UnsupportedContentError, match="binary"):
        cm.add_document(bytes(range(256)) * 40, "blob.bin")
    with pytest.raises(ValueError, match="empty"):
        cm.add_document("  \n\x00 ", "empty.txt")
    with pytest.raises(TypeError):
        cm.add_document(12345, "n.txt")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="JSON"):
        cm.add_document("ok", "m.txt", {"x": object()})
    with pytest.raises(ValueError, match="content_type"):
        cm.add_document("ok", "m.txt", content_type="spreadsheet")
    with pytest.raises(ValueError, match="importance"):
        cm.add_document("ok", "m.txt", importance=2.0)
    with pytest.raises(ValueError, match="top_k"):
        cm.search_context("x", top_k=-1)
    assert cm.search_context("") == []
    assert cm.get_statistics()["total_tokens"] == before
    r = cm.add_document(b"invalid \xff utf-8 but text otherwise\n" * 3, "bad-bytes.txt")
    assert r["tokens_added"] > 0


def test_near_duplicates_skipped(cm: ContextManager) -> None:
    base = generated_corpus(400, seed=3)
    cm.add_document(base, "a.txt")
    words = base.split()
    words[10] = "CHANGED"
    r = cm.add_document(" ".join(words), "b.txt")
    assert r["duplicates_skipped"] >= 1
    assert r["tokens_added"] < cm.list_documents()[0]["stored_tokens"]


def test_mixed_corpus_compression_by_content_type(tmp_path: Path) -> None:
    prose = generated_corpus(6000)
    code = "\n\n".join(
        f"def handler_{i}(request):\n    value = request.get('k{i}')\n    return value * {i}\n"
        for i in range(300)
    )
    log = "".join(
        f"2024-05-01 10:{i // 60 % 60:02d}:{i % 60:02d} INFO worker-3 heartbeat ok\n"
        + (
            f"2024-05-01 10:{i // 60 % 60:02d}:{i % 60:02d} ERROR disk full on /dev/sd{i % 3}\n"
            if i % 50 == 0
            else ""
        )
        for i in range(3000)
    )
    conv = json.dumps(
        {
            "messages": [
                {
                    "role": "user" if i % 2 == 0 else "assistant",
                    "content": f"Question {i}: how do I water basil?",
                }
                for i in range(200)
            ]
        },
        indent=1,
    )
    with ContextManager(
        storage_dir=tmp_path / "s",
        chunk_size=256,
        chunk_overlap=16,
        compression_strategy="adaptive",
    ) as cm:
        rs = {
            "text": cm.add_document(prose, "prose.txt"),
            "code": cm.add_document(code, "app.py"),
            "log": cm.add_document(log, "worker.log"),
            "conversation": cm.add_document(conv, "chat.json", content_type="conversation"),
        }
        by_type = cm.monitor.get_stats()["by_content_type"]
        assert set(by_type) == {"text", "code", "log", "conversation"}
        assert by_type["log"]["context_ratio"] > 20, "repeated log lines collapse"
        assert by_type["log"]["storage_ratio"] > 10
        assert by_type["text"]["storage_ratio"] > 1.5
        assert rs["text"]["compression"]["context_ratio"] < 1.2
        report = cm.monitor.get_compression_report()
        assert "log" in report and ":1" in report
        assert "disk full" in cm.search_context("disk full error")[0]["text"]
        for r in rs.values():
            assert 0 <= r["compression"]["quality_score"] <= 100


def test_aggressive_compaction_and_restore(tmp_path: Path) -> None:
    with ContextManager(
        storage_dir=tmp_path / "s",
        chunk_size=64,
        chunk_overlap=0,
        compression_strategy="aggressive",
        min_age_hours=1.0,
    ) as cm:
        old = cm.add_document(generated_corpus(2000, seed=5), "old.txt")["document_id"]
        keep = cm.add_document(generated_corpus(2000, seed=6), "taught.txt", importance=0.8)
        before = cm.get_statistics()["total_tokens"]
        old_tokens = cm.get_document(old)["stored_tokens"]
        done = cm.compact(now=time.time() + 7200)
        assert done == [old] and keep["document_id"] not in done
        assert cm.get_document(old)["stored_tokens"] < old_tokens / 5
        assert cm.get_statistics()["total_tokens"] < before
        doc = cm.get_document(old)
        assert doc["state"] == "summarized" and len(doc["text"]) > 5000  # full text kept
        hits = cm.search_context(keywords(doc["text"])[0], filters={"document_id": old})
        assert hits and hits[0]["summarized"]
        assert cm.restore_document(old)
        assert cm.get_statistics()["total_tokens"] == before


def test_seed_names(tmp_path: Path) -> None:
    assert MillionTokenContextManager is ContextManager
    vm = VectorMemory(max_tokens=100_000)
    vm.add_document(FACTS["garden.txt"], "garden.txt")
    assert vm.get_stats()["total_documents"] == 1
    assert "text" in vm.get_compression_report()
    mon = get_compression_monitor()
    assert mon is get_compression_monitor()
    a = mon.analyze_compression(
        "One sentence here. Another one there.",
        ["One sentence here.", " Another one there."],
        "x.txt",
        "text",
        {},
    )
    assert a["chunk_count"] == 2 and a["quality_score"] > 0


def test_in_memory_store(tmp_path: Path) -> None:
    with ContextManager(storage_dir=None) as cm:
        fill(cm)
        assert cm.search_context("basil")[0]["document_name"] == "garden.txt"
        assert cm.get_document(1)["text"].startswith("# Harbour")
    assert not any(tmp_path.iterdir())


def test_same_text_is_stored_once_and_survives_removal(tmp_path: Path) -> None:
    path = tmp_path / "s"
    text = generated_corpus(3000, seed=9)
    with ContextManager(storage_dir=path, chunk_size=128, chunk_overlap=16) as cm:
        a = cm.add_document(text, "a.txt")
        db = sqlite3.connect(path / "store.db")
        blocks = db.execute("SELECT count(*), sum(length(data)) FROM blocks").fetchone()
        b = cm.add_document(text, "b.txt")
        assert b["duplicates_skipped"] == a["chunks_created"] and b["tokens_added"] == 0
        assert db.execute("SELECT count(*), sum(length(data)) FROM blocks").fetchone() == blocks
        cm.remove_document(a["document_id"])
        assert cm.get_document(b["document_id"])["text"] == text
        db.close()
    with ContextManager.open(path) as cm:
        assert cm.get_document(b["document_id"])["text"] == text


def test_dictionary_trained_at_first_big_save(tmp_path: Path) -> None:
    path = tmp_path / "s"
    text = generated_corpus(120_000, seed=4)
    with ContextManager(storage_dir=path, chunk_size=256, chunk_overlap=16) as cm:
        doc = cm.add_document(text, "big.txt")["document_id"]
        db = sqlite3.connect(path / "store.db")
        before = db.execute("SELECT sum(length(data)) FROM blocks").fetchone()[0]
        cm.save()
        after, flags = db.execute("SELECT sum(length(data)), min(dict) FROM blocks").fetchone()
        assert flags == 1 and after < before
        assert db.execute("SELECT value FROM meta WHERE key='zdict'").fetchone() is not None
        db.close()
        assert cm.get_document(doc)["text"] == text
    with ContextManager.open(path, cache_mb=0) as cm:
        assert cm.get_document(doc)["text"] == text
        hit = cm.search_context(text.split()[100] + " " + text.split()[101], top_k=1)[0]
        assert hit["text"] == text.encode()[hit["start"] : hit["end"]].decode()
