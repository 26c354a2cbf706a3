"""``python -m myai bench``: measures whether a scenario keeps its promise.

One scenario per process (peak RSS is a process's): a fixed corpus (~200K tokens of real
prose — Gutenberg from ../shared/data when present, else generated — with ten facts planted at
ten depths) is ingested into a fresh store configured by the scenario; the ten questions about
the facts are searched and answered with the scenario's backend; peak RSS is read then. Then
retrieval quality is scored on a small labelled set (a SciFact subset when present, else the
generated set) with a store configured the same way. ``--all`` runs the four scenarios, each in
its own process, prints the table and checks the promised ordering.
"""

from __future__ import annotations

import contextlib
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

__all__ = [
    "BROAD",
    "FACTS",
    "SCENARIOS",
    "broad_questions",
    "check_ordering",
    "fixed_corpus",
    "run_all",
    "run_scenario",
    "timed_ask",
]

SCENARIOS = ("min_ram", "production", "max_performance", "max_quality")
CORPUS_TOKENS = 200_000
FACTS = [
    ("crimson", "4711", "What is the access code of the crimson vault?"),
    ("cobalt", "2093", "Which code opens the cobalt vault?"),
    ("amber", "8842", "Tell me the amber vault's access code."),
    ("violet", "1357", "What is the access code for the violet vault?"),
    ("saffron", "6620", "What code unlocks the saffron vault?"),
    ("indigo", "3184", "What is the indigo vault code?"),
    ("scarlet", "9051", "Do you know the scarlet vault access code?"),
    ("jade", "7426", "What is the jade vault's code?"),
    ("ochre", "5398", "What is the access code of the ochre vault?"),
    ("teal", "2765", "Remind me of the teal vault access code."),
]

# Questions on which many sentences of any English prose bear, so the packed context is what
# each scenario's budget and relevance cut allow (on the Gutenberg corpus, medians of about 200
# tokens for max_performance, 150 for min_ram, 300 for production and 560 for max_quality).
BROAD = [
    "What did the old man say about the house and the people who lived there?",
    "How did she feel when she heard the news from her mother and father?",
    "What happened at night when they came back to the town?",
    "Why was the young man so angry with his friend?",
    "What did they see when they looked out of the window in the morning?",
    "What did she say to him?",
    "Tell me about the captain and his ship.",
    "What do the letters say about love and marriage?",
    "Describe the weather at sea.",
    "What is said about money and the family's fortune?",
    "Who came to the door and what did they want?",
    "What did people think of the king?",
]
ANSWER_TOKENS = 32  # the fixed answer length of the latency questions


def broad_questions(text: str, source: str) -> list[str]:
    """The latency questions for the corpus: :data:`BROAD` for real prose; for the generated
    pseudo-English (no shared data), questions about its most frequent content words, which
    likewise bear on many sentences."""
    if source == "gutenberg":
        return list(BROAD)
    import collections
    import re

    from myai.corpus import _FUNCTION

    skip = set(_FUNCTION)
    counts = collections.Counter(w for w in re.findall(r"[a-z]{4,}", text.lower()) if w not in skip)
    top = [w for w, _n in counts.most_common(2 * len(BROAD))]
    return [
        f"What is said about the {a} and the {b}?"
        for a, b in zip(top[::2], top[1::2], strict=False)
    ]


def _peak_rss_mb() -> float:
    """The process's peak RSS since :func:`_reset_peak` (VmHWM), else since it started."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _reset_peak() -> None:
    """Starts the peak-RSS count afresh (Linux: clear_refs 5), so one-off work before the
    measurement (deriving the static embedding table on first use) does not count."""
    with contextlib.suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")


def fixed_corpus(n_tokens: int = CORPUS_TOKENS) -> tuple[str, str]:
    """The bench's corpus with the facts planted, and where its prose came from."""
    from myai.corpus import english_corpus

    text, source = english_corpus(n_tokens)
    paras = text.split("\n\n")
    for depth, (color, code, _q) in enumerate(FACTS):
        at = int(len(paras) * depth / len(FACTS)) + 1
        paras.insert(at, f"Note for the archive: the access code of the {color} vault is {code}.")
    return "\n\n".join(paras), source


def labelled_set(max_queries: int = 100, max_docs: int = 1000) -> Any:
    """A SciFact subset (its first test queries, their relevant abstracts and the first other
    abstracts up to ``max_docs``) when ../shared/data has it, else the generated set."""
    from myai.corpus import generated_labelled_set, shared_data_dir
    from myai.retrieval import BeirSet, load_beir

    d = shared_data_dir()
    path = d / "retrieval" / "scifact" if d else None
    if path is None or not path.is_dir():
        return generated_labelled_set()
    full = load_beir(path)
    qids = [q for q in full.queries if q in full.qrels][:max_queries]
    keep = {doc for q in qids for doc in full.qrels[q] if doc in full.corpus}
    for doc in full.corpus:
        if len(keep) >= max_docs:
            break
        keep.add(doc)
    corpus = {k: v for k, v in full.corpus.items() if k in keep}
    return BeirSet(corpus, {q: full.queries[q] for q in qids},
                   {q: full.qrels[q] for q in qids}, name=f"scifact[{len(qids)}q/{len(corpus)}d]")  # fmt: skip


def timed_ask(a: Any, question: str) -> tuple[Any, float, float]:
    """The Assistant's streamed answer to ``question``, its time to the first piece and its
    whole time, in milliseconds."""
    from myai.assistant import Answer

    t0 = time.perf_counter()
    first = None
    ans = None
    for piece in a.ask(question, stream=True):
        if isinstance(piece, Answer):
            ans = piece
        elif first is None:
            first = time.perf_counter()
    end = time.perf_counter()
    assert ans is not None
    return ans, ((first or end) - t0) * 1e3, (end - t0) * 1e3


def _pct(xs: list[float], p: float) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, round(p * (len(s) - 1)))]


def run_scenario(
    cfg: DictConfig, questions: int = len(FACTS), quality: bool = True
) -> dict[str, Any]:
    """Measures the composed configuration ``cfg``; returns one row of the table."""
    from myai.assistant import Assistant
    from myai.context import ContextManager
    from myai.retrieval import evaluate, labelled_set_store

    row: dict[str, Any] = {"scenario": cfg.scenario_name}
    text, source = fixed_corpus()
    row["corpus"] = source
    tmp = Path(tempfile.mkdtemp(prefix="myai-bench-"))
    try:
        ContextManager.from_config(cfg, storage_dir=None).close()  # model files derived once
        _reset_peak()
        t0 = time.perf_counter()
        cm = ContextManager.from_config(cfg, storage_dir=tmp / "store")
        r = cm.add_document(text, "bench-corpus.txt")
        cm.save()
        row["ingest_s"] = time.perf_counter() - t0
        row["tokens"] = r["tokens_added"]
        qs = [q for _c, _code, q in FACTS[:questions]]
        lat = []
        found = 0
        for _ in range(5):
            for (color, code, _q), q in zip(FACTS, qs, strict=False):
                t = time.perf_counter()
                hits = cm.search_context(q, top_k=5)
                lat.append((time.perf_counter() - t) * 1e6)
                found += any(f"{color} vault is {code}" in h["text"] for h in hits)
        row["search_p50_us"] = statistics.median(lat)
        row["search_p99_us"] = _pct(lat, 0.99)
        row["needles_top5"] = found / (5 * len(qs))
        a = Assistant(cfg, context=cm)
        row["backend"] = f"{a.backend.name}:{a.backend.model}"
        a.chat_options = {"seed": 7}  # sampled answers, reproducibly
        ttft, total, right = [], [], 0
        for (_color, code, _q), q in zip(FACTS, qs, strict=False):
            ans, first_ms, total_ms = timed_ask(a, q)
            ttft.append(first_ms)
            total.append(total_ms)
            right += code in ans.response
        row["answer_ttft_p50_ms"] = statistics.median(ttft)
        row["answer_p50_ms"] = statistics.median(total)
        row["answers_right"] = right / len(qs)
        # Latency: broad questions, answers of exactly ANSWER_TOKENS tokens.
        a.max_tokens = ANSWER_TOKENS
        a.chat_options = {"ignore_eos": True, "seed": 7}
        ttft, total, packed = [], [], []
        broad = broad_questions(text, source)
        for q in broad[: max(1, min(2 * questions, len(broad)))]:
            ans, first_ms, total_ms = timed_ask(a, q)
            ttft.append(first_ms)
            total.append(total_ms)
            packed.append(sum(a.backend.count_tokens(src["text"]) for src in ans.sources))
        row["latency_context_tokens"] = statistics.median(packed)
        row["latency_ttft_p50_ms"] = statistics.median(ttft)
        row["latency_p50_ms"] = statistics.median(total)
        row["model_file"] = a.backend.info().get("quantization", "")
        row["peak_rss_mb"] = _peak_rss_mb()  # the assistant with its memory, before scoring
        cm.close()
        if quality:
            data = labelled_set()
            modes = ("hybrid",) if cm.embedder is not None else ("bm25",)
            res = evaluate(data, lambda: labelled_set_store(cfg), modes=modes)
            row["quality_set"] = data.name
            row["ndcg@10"] = res[0].scores["ndcg@10"]
            row["recall@10"] = res[0].scores["recall@10"]
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return row


def check_ordering(rows: list[dict[str, Any]]) -> list[tuple[str, bool]]:
    """The promises: min_ram the lowest peak RSS, max_performance the lowest answer latency,
    max_quality the best retrieval score, production between them on each."""
    by = {r["scenario"]: r for r in rows}
    out: list[tuple[str, bool]] = []
    if not all(s in by for s in SCENARIOS):
        return out

    def between(key: str, lo: str, hi: str) -> bool:
        v = by["production"][key]
        return min(by[lo][key], by[hi][key]) <= v <= max(by[lo][key], by[hi][key])

    rss = [by[s]["peak_rss_mb"] for s in SCENARIOS]
    out.append(("min_ram has the lowest peak RSS", by["min_ram"]["peak_rss_mb"] == min(rss)))
    lat = [by[s]["latency_p50_ms"] for s in SCENARIOS]
    out.append(("max_performance answers fastest",
                by["max_performance"]["latency_p50_ms"] == min(lat)))  # fmt: skip
    if all("ndcg@10" in by[s] for s in SCENARIOS):
        q = [by[s]["ndcg@10"] for s in SCENARIOS]
        out.append(("max_quality retrieves best", by["max_quality"]["ndcg@10"] == max(q)))
        out.append(
            ("production's quality is between", between("ndcg@10", "min_ram", "max_quality"))
        )
    out.append(("production's RSS is between", between("peak_rss_mb", "min_ram", "max_quality")))
    out.append(("production's latency is between",
                between("latency_p50_ms", "max_performance", "max_quality")))  # fmt: skip
    out.append(("min_ram's assistant stays under 300 MB RSS", by["min_ram"]["peak_rss_mb"] < 300))
    return out


def run_all(overrides: list[str], quality: bool = True) -> list[dict[str, Any]]:
    """Each scenario in its own process (``bench --json scenario=X``)."""
    rows = []
    for s in SCENARIOS:
        over = [o for o in overrides if not o.startswith("scenario=")]
        cmd = [sys.executable, "-m", "myai", "bench", "--json", f"scenario={s}", *over]
        if not quality:
            cmd.insert(4, "--no-quality")
        r = subprocess.run(cmd, capture_output=True, text=True, env=os.environ.copy())
        if r.returncode != 0:
            raise RuntimeError(f"bench scenario={s} failed: {r.stderr.strip()[-500:]}")
        rows.append(json.loads(r.stdout))
    return rows


COLUMNS = [
    ("scenario", "{:<16}", "scenario"),
    ("peak_rss_mb", "{:>9.0f}", "RSS MB"),
    ("ingest_s", "{:>9.2f}", "ingest s"),
    ("search_p50_us", "{:>9.0f}", "srch p50"),
    ("search_p99_us", "{:>9.0f}", "srch p99"),
    ("model_file", "{:>6}", "model"),
    ("latency_context_tokens", "{:>7.0f}", "context"),
    ("latency_ttft_p50_ms", "{:>9.0f}", "ttft ms"),
    ("latency_p50_ms", "{:>9.0f}", "answer ms"),
    ("answer_ttft_p50_ms", "{:>9.0f}", "fact ttft"),
    ("answer_p50_ms", "{:>9.0f}", "fact ms"),
    ("answers_right", "{:>7.0%}", "right"),
    ("needles_top5", "{:>7.0%}", "top5"),
    ("ndcg@10", "{:>8.3f}", "nDCG@10"),
]


def format_table(rows: list[dict[str, Any]]) -> str:
    widths = [16 if k == "scenario" else max(len(f.format(0)), len(h)) for k, f, h in COLUMNS]
    head = " ".join(f"{h:<{w}}" if k == "scenario" else f"{h:>{w}}"
                    for (k, _f, h), w in zip(COLUMNS, widths, strict=True))  # fmt: skip
    lines = [head]
    for r in rows:
        cells = []
        for (k, f, _h), w in zip(COLUMNS, widths, strict=True):
            v = r.get(k)
            text = f.format(v).strip() if v is not None else "-"
            cells.append(f"{text:<{w}}" if k == "scenario" else f"{text:>{w}}")
        lines.append(" ".join(cells))
    return "\n".join(lines)
