"""Near-duplicate detection over ~1M tokens of chunks: myai vs datasketch MinHash + MinHashLSH.

The corpus is cut into ~2,100-character chunks (about 512 tokens) on paragraph or space
boundaries, and ~200 near-duplicates are planted: chunks copied with 3-5% of their words
replaced (deterministic RNG). Two planting styles are measured:

* ``edits``: the replaced words come in runs of 1-4 consecutive words, as real edits do;
* ``scattered``: every replaced word is on its own, which breaks 3 shingles per word and
  leaves most copies *below* the 0.85 threshold (exact Jaccard printed) — there a method that
  verifies its candidates is right to report fewer pairs than one that does not.

Ours: ``find_duplicates`` (shingles, signatures, LSH, verification, grouping) from the raw
texts. Peer: datasketch ``MinHash(num_perm=128)`` over the same word 3-gram shingles (built
outside the timed region, which favours the peer) + ``MinHashLSH(threshold=0.85)`` insert and
query of every chunk. Run: ``pytest benches/bench_dedup.py --benchmark-only``.
"""

from __future__ import annotations

import contextlib
import random
import re
from collections.abc import Callable
from typing import TypeVar

import pytest

from myai._core import NearDupIndex, find_duplicates, jaccard

datasketch = pytest.importorskip("datasketch")

CHUNK_CHARS = 2100
PLANTED = 200
THRESHOLD = 0.85
NUM_PERM = 128
SHINGLE_WORDS = 3
_WORD = re.compile(r"[^\W_]+")

RESULTS: dict[str, dict[str, float]] = {}
T = TypeVar("T")


def chunk_text(text: str, size: int = CHUNK_CHARS) -> list[str]:
    """Greedy chunks of at most ``size`` characters, cut at paragraph, else space, boundaries."""
    chunks: list[str] = []
    current = ""
    for para in text.split("\n\n"):
        para = para.strip()
        while len(para) > size:
            cut = para.rfind(" ", 0, size)
            cut = cut if cut > 0 else size
            if current:
                chunks.append(current)
                current = ""
            chunks.append(para[:cut])
            para = para[cut:].strip()
        if not para:
            continue
        if current and len(current) + 2 + len(para) > size:
            chunks.append(current)
            current = para
        else:
            current = f"{current}\n\n{para}" if current else para
    if current:
        chunks.append(current)
    return chunks


def plant(chunks: list[str], style: str, seed: int = 5) -> tuple[list[str], list[tuple[int, int]]]:
    """``chunks`` plus PLANTED copies with 3-5% of words replaced; the (source, copy) pairs."""
    rng = random.Random(seed)
    vocab = sorted({w for c in chunks[:200] for w in c.split()})
    texts = list(chunks)
    pairs = []
    for src in rng.sample(range(len(chunks)), PLANTED):
        words = chunks[src].split()
        todo = max(1, round(len(words) * rng.uniform(0.03, 0.05)))
        while todo > 0:
            run = 1 if style == "scattered" else min(todo, rng.randint(1, 4))
            start = rng.randrange(max(1, len(words) - run))
            for p in range(start, min(len(words), start + run)):
                words[p] = rng.choice(vocab)
            todo -= run
        texts.append(" ".join(words))
        pairs.append((src, len(texts) - 1))
    return texts, pairs


def shingles(text: str) -> list[bytes]:
    """The core's shingles: word 3-grams over a lowercase alphanumeric word split."""
    words = _WORD.findall(text.lower())
    if len(words) < SHINGLE_WORDS:
        return [" ".join(words).encode()] if words else []
    return [
        " ".join(words[i : i + SHINGLE_WORDS]).encode()
        for i in range(len(words) - SHINGLE_WORDS + 1)
    ]


def datasketch_pairs(shingle_sets: list[list[bytes]]) -> set[tuple[int, int]]:
    lsh = datasketch.MinHashLSH(threshold=THRESHOLD, num_perm=NUM_PERM)
    sketches = []
    for i, sh in enumerate(shingle_sets):
        m = datasketch.MinHash(num_perm=NUM_PERM)
        m.update_batch(sh)
        lsh.insert(i, m)
        sketches.append(m)
    found = set()
    for i, m in enumerate(sketches):
        for j in lsh.query(m):
            if j != i:
                found.add((min(i, j), max(i, j)))
    return found


def ours_pairs(texts: list[str]) -> list[list[int]]:
    return find_duplicates(texts, threshold=THRESHOLD, num_perm=NUM_PERM)


@pytest.fixture(scope="module")
def chunks(corpus_1m: str) -> list[str]:
    return chunk_text(corpus_1m)


@pytest.fixture(scope="module", params=["edits", "scattered"])
def planted(request: pytest.FixtureRequest, chunks: list[str]):
    texts, pairs = plant(chunks, request.param)
    sims = [jaccard(texts[a], texts[b]) for a, b in pairs]
    return request.param, texts, pairs, sims


def _record(name: str, style: str, benchmark, found: set[tuple[int, int]], planted) -> None:
    """Keeps a method's median and the planted pairs it found, all and those >= THRESHOLD."""
    _, _, pairs, sims = planted
    stats = benchmark.stats.stats if benchmark.stats else None
    above = {p for p, s in zip(pairs, sims, strict=True) if s >= THRESHOLD}
    ordered = sorted(sims)
    RESULTS[f"{style}:{name}"] = {
        "median": stats.median if stats else float("nan"),
        "found": len(found & set(pairs)),
        "found_above": len(found & above),
        "total": len(pairs),
        "above": len(above),
        "j_min": ordered[0],
        "j_med": ordered[len(ordered) // 2],
        "j_max": ordered[-1],
    }


def _run(benchmark, fn: Callable[[], T], rounds: int) -> T:
    result: T = benchmark.pedantic(fn, rounds=rounds, iterations=1, warmup_rounds=0)
    return result


def test_ours_find_duplicates(benchmark, planted) -> None:
    style, texts, pairs, _ = planted
    benchmark.group = f"dedup-{style}"
    groups = _run(benchmark, lambda: ours_pairs(texts), rounds=30)
    where = {i: g[0] for g in groups for i in g}
    found = {(a, b) for a, b in pairs if a in where and where.get(a) == where.get(b)}
    _record("myai find_duplicates", style, benchmark, found, planted)


def test_ours_index_add_batch(benchmark, planted) -> None:
    style, texts, pairs, _ = planted
    benchmark.group = f"dedup-{style}"

    def run() -> list[int | None]:
        return NearDupIndex(THRESHOLD, NUM_PERM).add_batch(list(range(len(texts))), texts)

    matches = _run(benchmark, run, rounds=30)
    found = {(a, b) for a, b in pairs if matches[b] == a}
    _record("myai NearDupIndex.add_batch", style, benchmark, found, planted)


def test_peer_datasketch(benchmark, planted) -> None:
    style, texts, _, _ = planted
    benchmark.group = f"dedup-{style}"
    shingle_sets = [shingles(t) for t in texts]
    found = _run(benchmark, lambda: datasketch_pairs(shingle_sets), rounds=3)
    _record("datasketch MinHash+LSH", style, benchmark, found, planted)


@pytest.fixture(scope="module", autouse=True)
def ratio_table(request: pytest.FixtureRequest, chunks: list[str]):
    """Prints medians, ratios and planted pairs found once the module's benchmarks ran."""
    yield
    if not RESULTS:
        return
    lines = [f"{len(chunks)} chunks + {PLANTED} planted, threshold {THRESHOLD}, {NUM_PERM} perm"]
    for style in ("edits", "scattered"):
        rows = {k.split(":", 1)[1]: v for k, v in RESULTS.items() if k.startswith(style + ":")}
        if not rows:
            continue
        peer = rows.get("datasketch MinHash+LSH")
        any_row = next(iter(rows.values()))
        lines.append(
            f"[{style}] planted exact Jaccard min/median/max = {any_row['j_min']:.3f}/"
            f"{any_row['j_med']:.3f}/{any_row['j_max']:.3f}; "
            f"{int(any_row['above'])} of {int(any_row['total'])} >= {THRESHOLD}"
        )
        lines.append(
            f"  {'method':30} {'median ms':>10} {'peer/ours':>9} {'found':>8} "
            f"{'found, J>=' + str(THRESHOLD):>14}"
        )
        for name, r in rows.items():
            ratio = peer["median"] / r["median"] if peer and r["median"] else float("nan")
            found = f"{int(r['found'])}/{int(r['total'])}"
            above = f"{int(r['found_above'])}/{int(r['above'])}"
            lines.append(
                f"  {name:30} {r['median'] * 1e3:10.1f} {ratio:8.1f}x {found:>8} {above:>14}"
            )
    # Module teardown runs under output capture: print around it.
    capman = request.config.pluginmanager.get_plugin("capturemanager")
    with capman.global_and_fixture_disabled() if capman else contextlib.nullcontext():
        print("\n" + "\n".join(lines))
