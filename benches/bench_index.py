"""Bm25Index against tantivy (in RAM) and bm25s on 1M tokens, and its query latency as the
index grows to 10M (and, with MYAI_BENCH_100M=1, 100M) tokens.

Chunks: corpus_1m packed on paragraph boundaries into chunks of at most 2,100 characters
(1,730 on average, ~420 tokens, about 2,500 chunks) and of at most 2,600 characters (2,170 on
average, ~512 tokens, about 2,000 chunks). Queries: 50 fixed sets of
2-5 words drawn from the corpus. Peers: tantivy (one text field, in RAM, commit and reload
included, its default tokenizer: no stemming, no stopwords) and bm25s (method="lucene"; its
index timed with its own tokenizer, its queries handed pre-tokenised). Top-10 equality with
bm25s is checked on the same tokens (ours from ``analyze``). Latency p50s come from timing
each query call one by one; ``test_report`` prints the ratio table.
"""

from __future__ import annotations

import os
import random
import statistics
import time
from collections.abc import Callable

import pytest

from myai._core import Bm25Index

CHARS_420, CHARS_512 = 2_100, 2_600
RESULTS: dict[str, float] = {}


def pack(text: str, max_chars: int) -> list[str]:
    """Paragraphs packed into chunks of at most ``max_chars`` (long paragraphs cut at spaces)."""
    out: list[str] = []
    cur = ""
    for p in text.split("\n\n"):
        while len(p) > max_chars:
            cut = p.rfind(" ", 0, max_chars) if " " in p[:max_chars] else max_chars
            piece, p = p[:cut], p[cut:].lstrip()
            if cur:
                out.append(cur)
                cur = ""
            out.append(piece)
        if cur and len(cur) + len(p) + 2 > max_chars:
            out.append(cur)
            cur = ""
        cur = f"{cur}\n\n{p}" if cur else p
    if cur:
        out.append(cur)
    return out


@pytest.fixture(scope="module")
def chunks(corpus_1m: str) -> list[str]:
    return pack(corpus_1m, CHARS_420)


@pytest.fixture(scope="module")
def chunks_512(corpus_1m: str) -> list[str]:
    return pack(corpus_1m, CHARS_512)


@pytest.fixture(scope="module")
def queries(corpus_1m: str) -> list[str]:
    rng = random.Random(5)
    words = [w for w in corpus_1m.split() if w.isalpha() and len(w) > 2]
    return [" ".join(rng.sample(words, rng.randint(2, 5))).lower() for _ in range(50)]


def build_ours(chunks: list[str]) -> Bm25Index:
    idx = Bm25Index()
    idx.add_batch(range(len(chunks)), [i // 8 for i in range(len(chunks))], chunks)
    return idx


def build_tantivy(chunks: list[str]):
    tantivy = pytest.importorskip("tantivy")
    sb = tantivy.SchemaBuilder()
    sb.add_text_field("body", stored=False)
    index = tantivy.Index(sb.build())
    w = index.writer(heap_size=200_000_000, num_threads=2)
    for c in chunks:
        w.add_document(tantivy.Document(body=c))
    w.commit()
    index.reload()
    return index


def build_bm25s(chunks: list[str]):
    bm25s = pytest.importorskip("bm25s")
    tokens = bm25s.tokenize(chunks, stopwords="en", show_progress=False)
    r = bm25s.BM25(method="lucene")
    r.index(tokens, show_progress=False)
    return r


def p50_ms(call: Callable[[object], object], items: list, repeat: int = 15) -> float:
    """Median latency of ``call(item)`` over every item, each timed alone ``repeat`` times."""
    for it in items:
        call(it)
    samples = []
    for _ in range(repeat):
        for it in items:
            t = time.perf_counter_ns()
            call(it)
            samples.append(time.perf_counter_ns() - t)
    return statistics.median(samples) / 1e6


def bench_build(benchmark, name: str, build: Callable[[list[str]], object], data: list[str]):
    kept: list[object] = []
    # Dropping the previous round's index happens in setup, outside the timed region.
    r = benchmark.pedantic(
        lambda: kept.append(build(data)),
        setup=kept.clear,
        rounds=7,
        iterations=1,
        warmup_rounds=1,
    )
    del r
    RESULTS[name] = benchmark.stats.stats.median * 1e3 if benchmark.stats else float("nan")


@pytest.mark.benchmark(group="index-build-1M-420")
def test_build_myai(benchmark, chunks: list[str]) -> None:
    bench_build(benchmark, "build ours 420", build_ours, chunks)
    benchmark.extra_info["chunks"] = len(chunks)
    RESULTS["chunks 420"] = len(chunks)


@pytest.mark.benchmark(group="index-build-1M-420")
def test_build_tantivy(benchmark, chunks: list[str]) -> None:
    bench_build(benchmark, "build tantivy 420", build_tantivy, chunks)


@pytest.mark.benchmark(group="index-build-1M-420")
def test_build_bm25s(benchmark, chunks: list[str]) -> None:
    bench_build(benchmark, "build bm25s 420", build_bm25s, chunks)


@pytest.mark.benchmark(group="index-build-1M-512")
def test_build_myai_512(benchmark, chunks_512: list[str]) -> None:
    bench_build(benchmark, "build ours 512", build_ours, chunks_512)
    RESULTS["chunks 512"] = len(chunks_512)


@pytest.mark.benchmark(group="index-build-1M-512")
def test_build_tantivy_512(benchmark, chunks_512: list[str]) -> None:
    bench_build(benchmark, "build tantivy 512", build_tantivy, chunks_512)


@pytest.mark.benchmark(group="index-serialise-1M")
def test_to_bytes_myai(benchmark, chunks: list[str]) -> None:
    idx = build_ours(chunks)
    benchmark(idx.to_bytes)
    RESULTS["to_bytes ours"] = benchmark.stats.stats.median * 1e3 if benchmark.stats else 0


@pytest.mark.benchmark(group="index-serialise-1M")
def test_from_bytes_myai(benchmark, chunks: list[str]) -> None:
    data = build_ours(chunks).to_bytes()
    benchmark(Bm25Index.from_bytes, data)
    RESULTS["from_bytes ours"] = benchmark.stats.stats.median * 1e3 if benchmark.stats else 0
    benchmark.extra_info["bytes"] = len(data)


def _cycle(items: list) -> Callable[[], object]:
    state = {"i": 0}

    def nxt() -> object:
        state["i"] = (state["i"] + 1) % len(items)
        return items[state["i"]]

    return nxt


@pytest.mark.benchmark(group="index-query-1M")
@pytest.mark.parametrize("size", [CHARS_420, CHARS_512])
def test_query_myai(benchmark, corpus_1m: str, queries: list[str], size: int) -> None:
    idx = build_ours(pack(corpus_1m, size))
    for q in queries:
        assert idx.search(q) == idx.search_exhaustive(q)
    RESULTS[f"query ours {size}"] = p50_ms(idx.search, queries)
    nxt = _cycle(queries)
    benchmark(lambda: idx.search(nxt(), 10))


@pytest.mark.benchmark(group="index-query-1M")
@pytest.mark.parametrize("size", [CHARS_420, CHARS_512])
def test_query_tantivy(benchmark, corpus_1m: str, queries: list[str], size: int) -> None:
    index = build_tantivy(pack(corpus_1m, size))
    searcher = index.searcher()

    def run(q: str):
        return searcher.search(index.parse_query(q, ["body"]), 10).hits

    RESULTS[f"query tantivy {size}"] = p50_ms(run, queries)
    nxt = _cycle(queries)
    benchmark(lambda: run(nxt()))


@pytest.mark.benchmark(group="index-query-1M")
def test_query_bm25s(benchmark, chunks: list[str], queries: list[str]) -> None:
    bm25s = pytest.importorskip("bm25s")
    ours = build_ours(chunks)
    r = bm25s.BM25(method="lucene")
    r.index([ours.analyze(c) for c in chunks], show_progress=False)
    qtoks = [[t for t in ours.analyze(q) if t in r.vocab_dict] for q in queries]
    qtoks = [q for q in qtoks if q]

    def run(q: list[str]):
        return r.retrieve([q], k=10, show_progress=False, n_threads=1)

    RESULTS["query bm25s 2100"] = p50_ms(run, qtoks, repeat=5)
    nxt = _cycle(qtoks)
    benchmark(lambda: run(nxt()))


def test_top10_equals_bm25s_lucene(chunks: list[str], queries: list[str]) -> None:
    bm25s = pytest.importorskip("bm25s")
    ours = build_ours(chunks)
    r = bm25s.BM25(method="lucene", k1=1.2, b=0.75)
    r.index([ours.analyze(c) for c in chunks], show_progress=False)
    for q in queries:
        qt = [t for t in ours.analyze(q) if t in r.vocab_dict]
        got = ours.search(q, 10)
        if not qt:
            assert got == []
            continue
        scores = r.get_scores(qt)
        want = sorted((i for i in range(len(chunks)) if scores[i] > 0), key=lambda i: -scores[i])
        want = want[:10]
        assert len(got) == len(want)
        for (cid, s), wid in zip(got, want, strict=True):
            assert s == pytest.approx(float(scores[cid]), abs=1e-4)
            assert float(scores[cid]) == pytest.approx(float(scores[wid]), abs=1e-4)


def grown(chunks: list[str], copies: int) -> list[str]:
    """``copies`` versions of the chunks; in copy r > 0 two letter pairs are swapped in every
    chunk, so words containing them become new terms while the rest keep growing their lists."""
    rng = random.Random(copies)
    letters = "abcdefghijklmnopqrstuvwxyz"
    out = list(chunks)
    for _ in range(1, copies):
        a, b, c, d = rng.sample(letters, 4)
        table = str.maketrans({a: b, b: a, c: d, d: c})
        out.extend(ch.translate(table) for ch in chunks)
    return out


SCALES = [1, 10] + ([100] if os.environ.get("MYAI_BENCH_100M") == "1" else [])


@pytest.mark.slow
@pytest.mark.parametrize("copies", SCALES)
def test_query_scaling(chunks: list[str], queries: list[str], copies: int) -> None:
    data = grown(chunks, copies)
    t = time.perf_counter()
    idx = Bm25Index()
    step = 25_000
    for i in range(0, len(data), step):
        part = data[i : i + step]
        idx.add_batch(range(i, i + len(part)), [j // 8 for j in range(i, i + len(part))], part)
    build = time.perf_counter() - t
    del data
    for q in queries[:10]:
        assert idx.search(q) == idx.search_exhaustive(q)
    RESULTS[f"scale {copies}M query"] = p50_ms(idx.search, queries, repeat=7)
    RESULTS[f"scale {copies}M exhaustive"] = p50_ms(idx.search_exhaustive, queries, repeat=2)
    RESULTS[f"scale {copies}M build s"] = build
    RESULTS[f"scale {copies}M memory MB"] = idx.memory_bytes() / 1e6
    t = time.perf_counter()
    data = idx.to_bytes()
    RESULTS[f"scale {copies}M to_bytes s"] = time.perf_counter() - t
    t = time.perf_counter()
    Bm25Index.from_bytes(data)
    RESULTS[f"scale {copies}M from_bytes s"] = time.perf_counter() - t


def test_report(capsys) -> None:
    """Prints the medians and ratios gathered above (run the module as a whole)."""
    if not RESULTS:
        pytest.skip("no results gathered")
    load = os.getloadavg()[0]
    lines = [f"\nBm25Index benchmark (load average {load:.2f})"]
    for k in sorted(RESULTS):
        lines.append(f"  {k:32s} {RESULTS[k]:10.4f}")

    def ratio(ours: str, peer: str) -> None:
        if ours in RESULTS and peer in RESULTS and RESULTS[ours] > 0:
            lines.append(f"  {peer} / {ours}: {RESULTS[peer] / RESULTS[ours]:.2f}x")

    lines.append("ratios (peer time / ours; > 1 means we are faster):")
    for a, b in [
        ("build ours 420", "build tantivy 420"),
        ("build ours 420", "build bm25s 420"),
        ("build ours 512", "build tantivy 512"),
        ("query ours 2100", "query tantivy 2100"),
        ("query ours 2600", "query tantivy 2600"),
        ("query ours 2100", "query bm25s 2100"),
    ]:
        ratio(a, b)
    with capsys.disabled():
        print("\n".join(lines))
