"""A small local server speaking Ollama's and OpenAI's HTTP APIs, for the backend tests.

Written from the two APIs' public documentation. Ollama: ``/api/chat`` and ``/api/generate``
(NDJSON records, streamed by default, the last one ``done`` with ``done_reason``, the token
counts and the durations in nanoseconds), ``/api/embed`` (and the older ``/api/embeddings``),
``/api/tags``, ``/api/show``, ``/api/ps``, ``/api/version``, and ``{"error": ...}`` with 404
for a model that is not pulled. OpenAI: ``/v1/chat/completions`` (a JSON completion, or SSE
``data: {chunk}`` events ending with ``data: [DONE]``, plus a usage chunk with
``stream_options.include_usage``), ``/v1/models``, ``/v1/embeddings``, and a Bearer key check
answering 401 when a key is configured.

What answers is pluggable: ``generate(messages, options) -> Iterator[str]`` yields the answer's
pieces (one piece counts as one generated token); the server applies ``max_tokens`` /
``num_predict`` and ``stop`` itself, as a real server does. Embeddings come from a
deterministic hash of the words. Every request is recorded (``requests``), and fault switches
make the server die mid-stream, stall, send an error record or drop connections.

    with ProtocolServer() as srv:
        OllamaBackend(host=srv.url) ...; OpenAIBackend(base_url=srv.openai_url) ...

Run as a script it serves from its own process (a real model with ``--gguf``, through
llama-cpp-python), prints its URL on the first line and stops when its stdin closes:

    python tests/protocol_server.py --gguf SmolLM2-135M-Instruct.Q4_1.gguf
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import math
import re
import socket
import struct
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

__all__ = [
    "DEFAULT_MODELS",
    "Generate",
    "ModelSpec",
    "ProtocolServer",
    "Recorded",
    "chatml",
    "count_words",
    "echo_generate",
    "hash_embed",
    "llama_generate",
]

Generate = Callable[[list[dict[str, str]], dict[str, Any]], Iterator[str]]

DEFAULT_MODELS = ("smollm2:135m", "nomic-embed-text:latest")
VERSION = "0.11.4"


def echo_generate(messages: list[dict[str, str]], options: dict[str, Any]) -> Iterator[str]:
    """A deterministic answer built from the last user message, in word pieces."""
    last = next((m["content"] for m in reversed(messages) if m["role"] == "user"), "")
    text = f"You asked: {' '.join(last.split())} Here is the answer."
    yield from re.findall(r"\s*\S+", text)


def count_words(text: str) -> int:
    """The default prompt token count: words and punctuation marks."""
    return len(re.findall(r"\w+|[^\w\s]", text))


def chatml(messages: Sequence[dict[str, str]]) -> str:
    """The prompt a ChatML template makes of ``messages`` (what the server counts)."""
    body = "".join(f"<|im_start|>{m['role']}\n{m['content']}<|im_end|>\n" for m in messages)
    return body + "<|im_start|>assistant\n"


def hash_embed(text: str, dim: int) -> list[float]:
    """A deterministic unit vector: each word adds +-1 at two hashed positions, so texts that
    share words point the same way (enough for a hybrid search to find them)."""
    v = [0.0] * dim
    for w in re.findall(r"\w+", text.lower()):
        h = hashlib.sha256(w.encode()).digest()
        for j in range(2):
            i = int.from_bytes(h[4 * j : 4 * j + 4], "little") % dim
            v[i] += 1.0 if h[8 + j] & 1 else -1.0
    n = math.sqrt(sum(x * x for x in v))
    if n == 0:
        v[0], n = 1.0, 1.0
    return [x / n for x in v]


def _norm_name(name: str) -> str:
    name = name.strip()
    return name if ":" in name.rsplit("/", 1)[-1] else name + ":latest"


def _now() -> str:
    return datetime.now(timezone.utc).isoformat().replace("+00:00", "Z")


@dataclass
class ModelSpec:
    """A model the server has "pulled"."""

    name: str
    context_length: int = 8192
    embedding: bool = False
    family: str = "llama"
    parameter_size: str = "134.52M"
    quantization: str = "Q8_0"
    size: int = 145_000_000

    @property
    def digest(self) -> str:
        return hashlib.sha256(self.name.encode()).hexdigest()

    def details(self) -> dict[str, Any]:
        return {
            "parent_model": "",
            "format": "gguf",
            "family": self.family,
            "families": [self.family],
            "parameter_size": self.parameter_size,
            "quantization_level": self.quantization,
        }


@dataclass
class Recorded:
    """One request as the server received it."""

    method: str
    path: str
    headers: dict[str, str]
    body: Any


@dataclass
class _Run:
    """One generation: the pieces after max_tokens and stop are applied, and its timings."""

    finish: str = "stop"
    count: int = 0
    t0: int = field(default_factory=time.perf_counter_ns)
    t_first: int = 0
    t_end: int = 0


class _Dropped(Exception):
    """The handler closed the connection on purpose (a fault switch)."""


class ProtocolServer:
    """The server, on 127.0.0.1 at a free port, answering from a thread; a context manager.

    Fault switches (set them between requests; ``reset_faults()`` clears them):

    - ``die_after``: a streamed answer's socket is closed after this many pieces, without the
      end of the response (a non-streamed answer: closed before any reply);
    - ``stall_s`` / ``stall_after``: sleep ``stall_s`` seconds after ``stall_after`` pieces
      (0: before the response's headers);
    - ``error_after``: after this many pieces send an error record (Ollama) or an SSE error
      event (OpenAI) and end the stream;
    - ``end_after``: after this many pieces end the response cleanly but early: no final
      record (Ollama), no finish_reason nor ``[DONE]`` (OpenAI);
    - ``send_usage`` (not a fault, a server variant): False leaves ``usage`` out of OpenAI
      answers, as some servers do;
    - ``refuse``: every connection is reset as soon as it is accepted.
    """

    def __init__(
        self,
        generate: Generate = echo_generate,
        *,
        models: Sequence[str | ModelSpec] = DEFAULT_MODELS,
        api_key: str | None = None,
        embed_dim: int = 64,
        embed: Callable[[str, int], list[float]] = hash_embed,
        count_tokens: Callable[[str], int] = count_words,
    ) -> None:
        self.generate = generate
        self.models: dict[str, ModelSpec] = {}
        for m in models:
            spec = m if isinstance(m, ModelSpec) else ModelSpec(m, embedding="embed" in m)
            spec.name = _norm_name(spec.name)
            self.models[spec.name] = spec
        self.api_key = api_key
        self.embed_dim = embed_dim
        self.embed = embed
        self.count_tokens = count_tokens
        self.requests: list[Recorded] = []
        self.errors: list[BaseException] = []  # handler failures other than client hang-ups
        self.loaded: dict[str, tuple[float, int]] = {}  # model -> (expires, num_ctx)
        self.reset_faults()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None

    def reset_faults(self) -> None:
        self.die_after: int | None = None
        self.stall_s = 0.0
        self.stall_after = 0
        self.error_after: int | None = None
        self.end_after: int | None = None
        self.refuse = False
        self.send_usage = True

    # --- lifecycle ---

    def start(self) -> ProtocolServer:
        self._httpd = _HTTPServer(("127.0.0.1", 0), _Handler, self)
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()  # releases stalled handlers
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._httpd = self._thread = None

    def __enter__(self) -> ProtocolServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        assert self._httpd is not None, "the server is not started"
        return int(self._httpd.server_address[1])

    @property
    def url(self) -> str:
        """The Ollama host (``http://127.0.0.1:PORT``)."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def openai_url(self) -> str:
        """The OpenAI base URL (``http://127.0.0.1:PORT/v1``)."""
        return self.url + "/v1"

    # --- what tests look at ---

    def record(self, r: Recorded) -> None:
        with self._lock:
            self.requests.append(r)

    def bodies(self, path: str) -> list[Any]:
        """The JSON bodies received at ``path``, oldest first."""
        with self._lock:
            return [r.body for r in self.requests if r.path == path]

    def find(self, name: str) -> ModelSpec | None:
        return self.models.get(_norm_name(name)) if name else None

    def sleep(self, seconds: float) -> None:
        self._stop.wait(seconds)

    # --- generation ---

    def pieces(
        self, run: _Run, messages: list[dict[str, str]], options: dict[str, Any]
    ) -> Iterator[str]:
        """The generator's pieces, cut at max_tokens (finish "length") or before the first
        stop string (finish "stop"); timings and the count kept in ``run``."""
        limit = options.get("max_tokens")
        stops = [s for s in options.get("stop") or [] if s]
        text = ""
        run.t0 = time.perf_counter_ns()
        try:
            for piece in self.generate(messages, options):
                if limit is not None and limit >= 0 and run.count >= limit:
                    run.finish = "length"
                    break
                if not run.t_first:
                    run.t_first = time.perf_counter_ns()
                cut = _first_stop(text + piece, stops)
                if cut is not None:
                    rest = (text + piece)[:cut][len(text) :]
                    if rest:
                        run.count += 1
                        yield rest
                    run.finish = "stop"
                    break
                text += piece
                run.count += 1
                yield piece
        finally:
            run.t_end = time.perf_counter_ns()
            if not run.t_first:
                run.t_first = run.t_end


def _first_stop(text: str, stops: list[str]) -> int | None:
    found = [i for i in (text.find(s) for s in stops) if i >= 0]
    return min(found) if found else None


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, addr: tuple[str, int], handler: type, owner: ProtocolServer) -> None:
        self.owner = owner
        super().__init__(addr, handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        import sys

        e = sys.exc_info()[1]
        if isinstance(e, (ConnectionError, _Dropped, TimeoutError)) or e is None:
            return  # the client hung up, or a fault switch closed the socket
        self.owner.errors.append(e)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _HTTPServer
    server_version = "protocol-server"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    @property
    def owner(self) -> ProtocolServer:
        return self.server.owner

    def handle(self) -> None:
        if self.owner.refuse:
            # Reset the connection at once (SO_LINGER 0: an RST, not a clean close).
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.close_connection = True
            return
        super().handle()

    # --- plumbing ---

    def _body(self) -> Any:
        n = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(n) if n else b""
        if not raw:
            return None
        try:
            return json.loads(raw)
        except json.JSONDecodeError:
            return _BadJSON(raw.decode("utf-8", "replace"))

    def _send(self, status: int, payload: Any, ctype: str = "application/json") -> None:
        data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def _start_chunks(self, ctype: str) -> None:
        self.send_response(200)
        self.send_header("Content-Type", ctype)
        self.send_header("Transfer-Encoding", "chunked")
        if ctype == "text/event-stream":
            self.send_header("Cache-Control", "no-cache")
        self.end_headers()
        self.wfile.flush()

    def _chunk(self, data: bytes) -> None:
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()

    def _end_chunks(self) -> None:
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    def _die(self) -> None:
        """Close the socket now, mid-response (the fault switch ``die_after``)."""
        self.close_connection = True
        try:
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        raise _Dropped

    def _faults_before(self) -> None:
        o = self.owner
        if o.stall_s and not o.stall_after:
            o.sleep(o.stall_s)

    def _faults_after(self, sent: int) -> str | None:
        """After ``sent`` pieces: die, stall, or say that an error record (its message) or an
        early end (``_END``) is due."""
        o = self.owner
        if o.end_after is not None and sent >= o.end_after:
            return _END
        if o.die_after is not None and sent >= o.die_after:
            self._die()
        if o.stall_s and o.stall_after and sent == o.stall_after:
            o.sleep(o.stall_s)
        if o.error_after is not None and sent >= o.error_after:
            return "the model runner stopped unexpectedly (injected fault)"
        return None

    def _route(self, method: str) -> None:
        path = self.path.split("?", 1)[0].rstrip("/") or "/"
        body = self._body() if method == "POST" else None
        self.owner.record(
            Recorded(method, path, {k.lower(): v for k, v in self.headers.items()}, body)
        )
        if path.startswith("/v1"):
            if not self._authorised():
                return
            handler = _OPENAI.get((method, path))
            if handler is None and method == "GET" and path.startswith("/v1/models/"):
                handler = _Handler._oa_model
            if handler is None:
                self._oa_error(
                    404, f"Unknown request URL: {method} {path}", "invalid_request_error"
                )
                return
        else:
            handler = _OLLAMA.get((method, path))
            if handler is None:
                self._send(404, b"404 page not found", "text/plain")
                return
        if isinstance(body, _BadJSON):
            if path.startswith("/v1"):
                self._oa_error(400, "We could not parse the JSON body of your request.")
            else:
                self._send(400, {"error": "invalid character in request body"})
            return
        handler(self, body if isinstance(body, dict) else {})

    def do_GET(self) -> None:
        self._route("GET")

    def do_HEAD(self) -> None:
        self._route("HEAD")

    def do_POST(self) -> None:
        self._route("POST")

    def do_DELETE(self) -> None:
        self._route("DELETE")

    # --- Ollama ---

    def _ol_root(self, body: dict[str, Any]) -> None:
        self._send(200, b"Ollama is running", "text/plain; charset=utf-8")

    def _ol_version(self, body: dict[str, Any]) -> None:
        self._send(200, {"version": VERSION})

    def _ol_tags(self, body: dict[str, Any]) -> None:
        models = [
            {
                "name": m.name,
                "model": m.name,
                "modified_at": "2025-01-01T00:00:00Z",
                "size": m.size,
                "digest": m.digest,
                "details": m.details(),
            }
            for m in self.owner.models.values()
        ]
        self._send(200, {"models": models})

    def _ol_model(self, body: dict[str, Any]) -> ModelSpec | None:
        name = body.get("model") or body.get("name") or ""
        if not name:
            self._send(400, {"error": "model is required"})
            return None
        spec = self.owner.find(str(name))
        if spec is None:
            self._send(404, {"error": f"model '{name}' not found"})
        return spec

    def _ol_show(self, body: dict[str, Any]) -> None:
        spec = self._ol_model(body)
        if spec is None:
            return
        arch = spec.family
        self._send(
            200,
            {
                "license": "",
                "modelfile": f"FROM {spec.name}\n",
                "parameters": 'stop "<|im_end|>"',
                "template": "{{ range .Messages }}<|im_start|>{{ .Role }}\n{{ .Content }}<|im_end|>\n{{ end }}<|im_start|>assistant\n",
                "details": spec.details(),
                "model_info": {
                    "general.architecture": arch,
                    "general.parameter_count": 134_515_008,
                    f"{arch}.context_length": spec.context_length,
                    f"{arch}.embedding_length": self.owner.embed_dim if spec.embedding else 576,
                },
                "capabilities": ["embedding"] if spec.embedding else ["completion"],
                "modified_at": "2025-01-01T00:00:00Z",
            },
        )

    def _ol_ps(self, body: dict[str, Any]) -> None:
        now = time.time()
        out = []
        for name, (expires, num_ctx) in sorted(self.owner.loaded.items()):
            spec = self.owner.models[name]
            if expires < now:
                continue
            out.append(
                {
                    "name": name,
                    "model": name,
                    "size": spec.size,
                    "digest": spec.digest,
                    "details": spec.details(),
                    "expires_at": datetime.fromtimestamp(expires, timezone.utc).isoformat(),
                    "size_vram": 0,
                    "context_length": num_ctx,
                }
            )
        self._send(200, {"models": out})

    def _load(self, spec: ModelSpec, body: dict[str, Any], num_ctx: int) -> None:
        ka = body.get("keep_alive", "5m")
        seconds = _duration_s(ka)
        if seconds == 0:
            self.owner.loaded.pop(spec.name, None)
        else:
            until = math.inf if seconds < 0 else time.time() + seconds
            self.owner.loaded[spec.name] = (until, num_ctx)

    def _ol_chat(self, body: dict[str, Any]) -> None:
        self._ol_generate_common(body, chat=True)

    def _ol_generate(self, body: dict[str, Any]) -> None:
        self._ol_generate_common(body, chat=False)

    def _ol_generate_common(self, body: dict[str, Any], chat: bool) -> None:
        spec = self._ol_model(body)
        if spec is None:
            return
        opts = body.get("options") or {}
        if not isinstance(opts, dict):
            self._send(400, {"error": "options must be an object"})
            return
        if chat:
            messages = body.get("messages") or []
            if not isinstance(messages, list) or not all(
                isinstance(m, dict) and isinstance(m.get("role"), str) for m in messages
            ):
                self._send(400, {"error": "messages must be a list of {role, content}"})
                return
            messages = [
                {"role": m["role"], "content": str(m.get("content") or "")} for m in messages
            ]
        else:
            prompt = str(body.get("prompt") or "")
            messages = (
                [{"role": "system", "content": str(body["system"])}] if body.get("system") else []
            )
            if prompt:
                messages.append({"role": "user", "content": prompt})
        key = "message" if chat else "response"
        num_ctx = int(opts.get("num_ctx") or 2048)
        self._load(spec, body, num_ctx)
        if spec.embedding:
            self._send(
                400, {"error": f'"{spec.name}" does not support {"chat" if chat else "generate"}'}
            )
            return
        if not messages:  # an empty request loads (or, with keep_alive 0, unloads) the model
            rec: dict[str, Any] = {"model": spec.name, "created_at": _now(), "done": True}
            rec[key] = {"role": "assistant", "content": ""} if chat else ""
            rec["done_reason"] = (
                "unload" if _duration_s(body.get("keep_alive", "5m")) == 0 else "load"
            )
            self._send(200, rec)
            return
        options: dict[str, Any] = {
            "max_tokens": opts.get("num_predict"),
            "temperature": opts.get("temperature"),
            "top_p": opts.get("top_p"),
            "seed": opts.get("seed"),
            "stop": opts.get("stop") or [],
            "num_ctx": num_ctx,
        }
        if options["max_tokens"] is not None and options["max_tokens"] < 0:
            options["max_tokens"] = None  # -1: until the model stops
        prompt_count = self.owner.count_tokens(chatml(messages))
        run = _Run()
        pieces = self.owner.pieces(run, messages, options)

        def record(content: str, done: bool) -> dict[str, Any]:
            r: dict[str, Any] = {"model": spec.name, "created_at": _now()}
            r[key] = {"role": "assistant", "content": content} if chat else content
            r["done"] = done
            if done:
                load = 1_000_000
                r.update(
                    done_reason=run.finish,
                    total_duration=max(1, run.t_end - run.t0) + load,
                    load_duration=load,
                    prompt_eval_count=prompt_count,
                    prompt_eval_duration=max(1, run.t_first - run.t0),
                    eval_count=run.count,
                    eval_duration=max(1, run.t_end - run.t_first),
                )
                if not chat:
                    r["context"] = list(range(min(prompt_count + run.count, 32)))
            return r

        self._faults_before()
        if not body.get("stream", True):
            if self.owner.die_after is not None:
                self._die()
            if self.owner.error_after is not None:
                self._send(500, {"error": "the model runner stopped unexpectedly (injected fault)"})
                return
            text = "".join(pieces)
            self._send(200, record(text, True))
            return
        self._start_chunks("application/x-ndjson")
        sent = 0
        for piece in pieces:
            if (err := self._faults_after(sent)) is not None:
                if err is not _END:
                    self._chunk(json.dumps({"error": err}).encode() + b"\n")
                self._end_chunks()
                return
            self._chunk(json.dumps(record(piece, False)).encode() + b"\n")
            sent += 1
        if (err := self._faults_after(sent)) is not None:
            if err is not _END:
                self._chunk(json.dumps({"error": err}).encode() + b"\n")
        else:
            self._chunk(json.dumps(record("", True)).encode() + b"\n")
        self._end_chunks()

    def _ol_embed(self, body: dict[str, Any]) -> None:
        spec = self._ol_model(body)
        if spec is None:
            return
        inp = body.get("input", "")
        texts = [inp] if isinstance(inp, str) else inp
        if not isinstance(texts, list) or not all(isinstance(t, str) for t in texts):
            self._send(400, {"error": "input must be a string or a list of strings"})
            return
        self._load(spec, body, 2048)
        self._faults_before()
        if self.owner.die_after is not None:
            self._die()
        t0 = time.perf_counter_ns()
        vecs = [self.owner.embed(t, self.owner.embed_dim) for t in texts]
        dims = body.get("dimensions")
        if isinstance(dims, int) and 0 < dims < self.owner.embed_dim:
            vecs = [_unit(v[:dims]) for v in vecs]
        self._send(
            200,
            {
                "model": spec.name,
                "embeddings": vecs,
                "total_duration": max(1, time.perf_counter_ns() - t0),
                "load_duration": 1_000_000,
                "prompt_eval_count": sum(self.owner.count_tokens(t) for t in texts),
            },
        )

    def _ol_embeddings(self, body: dict[str, Any]) -> None:
        spec = self._ol_model(body)
        if spec is None:
            return
        vec = self.owner.embed(str(body.get("prompt") or ""), self.owner.embed_dim)
        # The older endpoint does not normalise: scale it to show the difference.
        self._send(200, {"embedding": [x * 3.0 for x in vec]})

    # --- OpenAI ---

    def _authorised(self) -> bool:
        key = self.owner.api_key
        if key is None:
            return True
        got = self.headers.get("Authorization", "")
        if got == f"Bearer {key}":
            return True
        shown = got.removeprefix("Bearer ")
        self._oa_error(
            401,
            f"Incorrect API key provided: {shown[:3]}***{shown[-2:]}.",
            "invalid_request_error",
            code="invalid_api_key",
        )
        return False

    def _oa_error(
        self,
        status: int,
        message: str,
        type_: str = "invalid_request_error",
        param: str | None = None,
        code: str | None = None,
    ) -> None:
        self._send(
            status, {"error": {"message": message, "type": type_, "param": param, "code": code}}
        )

    def _oa_spec(self, body: dict[str, Any]) -> ModelSpec | None:
        name = body.get("model")
        if not isinstance(name, str) or not name:
            self._oa_error(400, "you must provide a model parameter", param="model")
            return None
        spec = self.owner.find(name)
        if spec is None:
            self._oa_error(
                404,
                f"The model `{name}` does not exist or you do not have access to it.",
                code="model_not_found",
            )
        return spec

    def _oa_model_record(self, spec: ModelSpec) -> dict[str, Any]:
        return {"id": spec.name, "object": "model", "created": 1735689600, "owned_by": "library"}

    def _oa_models(self, body: dict[str, Any]) -> None:
        data = [self._oa_model_record(m) for m in self.owner.models.values()]
        self._send(200, {"object": "list", "data": data})

    def _oa_model(self, body: dict[str, Any]) -> None:
        name = self.path.split("?", 1)[0][len("/v1/models/") :]
        spec = self.owner.find(name)
        if spec is None:
            self._oa_error(404, f"The model `{name}` does not exist.", code="model_not_found")
        else:
            self._send(200, self._oa_model_record(spec))

    def _oa_chat(self, body: dict[str, Any]) -> None:
        spec = self._oa_spec(body)
        if spec is None:
            return
        raw = body.get("messages")
        if not isinstance(raw, list) or not raw:
            self._oa_error(400, "messages must be a non-empty array", param="messages")
            return
        messages = []
        for i, m in enumerate(raw):
            if not isinstance(m, dict) or m.get("role") not in (
                "system",
                "developer",
                "user",
                "assistant",
                "tool",
            ):
                self._oa_error(400, f"Invalid value for messages[{i}].role", param="messages")
                return
            content = m.get("content") or ""
            if isinstance(content, list):  # content parts
                content = "".join(p.get("text", "") for p in content if isinstance(p, dict))
            messages.append({"role": str(m["role"]), "content": str(content)})
        if body.get("n", 1) != 1:
            self._oa_error(400, "only n=1 is supported", param="n")
            return
        stop = body.get("stop")
        limit = body.get("max_completion_tokens", body.get("max_tokens"))
        options = {
            "max_tokens": limit,
            "temperature": body.get("temperature"),
            "top_p": body.get("top_p"),
            "seed": body.get("seed"),
            "stop": [stop] if isinstance(stop, str) else list(stop or []),
            "num_ctx": spec.context_length,
        }
        prompt_count = self.owner.count_tokens(chatml(messages))
        if limit is not None and prompt_count + int(limit) > spec.context_length:
            self._oa_error(
                400,
                f"This model's maximum context length is {spec.context_length} tokens. However, "
                f"you requested {prompt_count + int(limit)} tokens ({prompt_count} in the "
                f"messages, {limit} in the completion). Please reduce the length.",
                param="messages",
                code="context_length_exceeded",
            )
            return
        run = _Run()
        pieces = self.owner.pieces(run, messages, options)
        cid = "chatcmpl-" + uuid.uuid4().hex[:24]
        created = int(time.time())

        def usage() -> dict[str, int]:
            return {
                "prompt_tokens": prompt_count,
                "completion_tokens": run.count,
                "total_tokens": prompt_count + run.count,
            }

        self._faults_before()
        if not body.get("stream"):
            if self.owner.die_after is not None:
                self._die()
            if self.owner.error_after is not None:
                self._oa_error(500, "The server had an error (injected fault)", "server_error")
                return
            text = "".join(pieces)
            self._send(
                200,
                {
                    "id": cid,
                    "object": "chat.completion",
                    "created": created,
                    "model": spec.name,
                    "system_fingerprint": "fp_protocol",
                    "choices": [
                        {
                            "index": 0,
                            "message": {"role": "assistant", "content": text},
                            "logprobs": None,
                            "finish_reason": run.finish,
                        }
                    ],
                    "usage": usage() if self.owner.send_usage else None,
                },
            )
            return
        include_usage = self.owner.send_usage and bool(
            (body.get("stream_options") or {}).get("include_usage")
        )

        def chunk(delta: dict[str, Any], finish: str | None) -> bytes:
            c: dict[str, Any] = {
                "id": cid,
                "object": "chat.completion.chunk",
                "created": created,
                "model": spec.name,
                "system_fingerprint": "fp_protocol",
                "choices": [
                    {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
                ],
            }
            if include_usage:
                c["usage"] = None
            return b"data: " + json.dumps(c).encode() + b"\n\n"

        def error_event(msg: str) -> None:
            if msg is not _END:
                err = {"error": {"message": msg, "type": "server_error", "param": None}}
                self._chunk(b"data: " + json.dumps(err).encode() + b"\n\n")
            self._end_chunks()

        self._start_chunks("text/event-stream")
        self._chunk(chunk({"role": "assistant", "content": ""}, None))
        sent = 0
        for piece in pieces:
            if (err := self._faults_after(sent)) is not None:
                error_event(err)
                return
            self._chunk(chunk({"content": piece}, None))
            sent += 1
        if (err := self._faults_after(sent)) is not None:
            error_event(err)
            return
        self._chunk(chunk({}, run.finish))
        if include_usage:
            u = {
                "id": cid,
                "object": "chat.completion.chunk",
                "created": created,
                "model": spec.name,
                "choices": [],
                "usage": usage(),
            }
            self._chunk(b"data: " + json.dumps(u).encode() + b"\n\n")
        self._chunk(b"data: [DONE]\n\n")
        self._end_chunks()

    def _oa_embeddings(self, body: dict[str, Any]) -> None:
        spec = self._oa_spec(body)
        if spec is None:
            return
        inp = body.get("input")
        texts = [inp] if isinstance(inp, str) else inp
        if not isinstance(texts, list) or not texts or not all(isinstance(t, str) for t in texts):
            self._oa_error(400, "input must be a string or an array of strings", param="input")
            return
        fmt = body.get("encoding_format") or "float"
        data = []
        for i, t in enumerate(texts):
            v = self.owner.embed(t, self.owner.embed_dim)
            dims = body.get("dimensions")
            if isinstance(dims, int) and 0 < dims < len(v):
                v = _unit(v[:dims])
            emb: Any = v
            if fmt == "base64":
                emb = base64.b64encode(struct.pack(f"<{len(v)}f", *v)).decode()
            data.append({"object": "embedding", "index": i, "embedding": emb})
        n = sum(self.owner.count_tokens(t) for t in texts)
        self._send(
            200,
            {
                "object": "list",
                "data": data,
                "model": spec.name,
                "usage": {"prompt_tokens": n, "total_tokens": n},
            },
        )


_END = "\0end"  # _faults_after: end the stream early, cleanly


class _BadJSON(str):
    """A request body that is not JSON."""


def _unit(v: list[float]) -> list[float]:
    n = math.sqrt(sum(x * x for x in v)) or 1.0
    return [x / n for x in v]


def _duration_s(v: Any) -> float:
    """Seconds of an Ollama keep_alive: a number of seconds or a duration like "5m"."""
    if isinstance(v, (int, float)):
        return float(v)
    m = re.fullmatch(r"\s*(-?\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*", str(v))
    if not m:
        return 300.0
    unit = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, None: 1}[m.group(2)]
    return float(m.group(1)) * unit


_OLLAMA: dict[tuple[str, str], Callable[[_Handler, dict[str, Any]], None]] = {
    ("GET", "/"): _Handler._ol_root,
    ("HEAD", "/"): _Handler._ol_root,
    ("GET", "/api/version"): _Handler._ol_version,
    ("GET", "/api/tags"): _Handler._ol_tags,
    ("GET", "/api/ps"): _Handler._ol_ps,
    ("POST", "/api/show"): _Handler._ol_show,
    ("POST", "/api/chat"): _Handler._ol_chat,
    ("POST", "/api/generate"): _Handler._ol_generate,
    ("POST", "/api/embed"): _Handler._ol_embed,
    ("POST", "/api/embeddings"): _Handler._ol_embeddings,
}
_OPENAI: dict[tuple[str, str], Callable[[_Handler, dict[str, Any]], None]] = {
    ("GET", "/v1/models"): _Handler._oa_models,
    ("POST", "/v1/chat/completions"): _Handler._oa_chat,
    ("POST", "/v1/embeddings"): _Handler._oa_embeddings,
}


def llama_generate(
    model_path: str, n_ctx: int = 2048, n_threads: int = 2
) -> tuple[Generate, Callable[[str], int]]:
    """A real model as the generator: llama.cpp's chat completion of a GGUF, streamed (one
    request at a time), and its tokenizer as the prompt counter."""
    import llama_cpp

    llm = llama_cpp.Llama(model_path=model_path, n_ctx=n_ctx, n_threads=n_threads, verbose=False)
    lock = threading.Lock()

    def generate(messages: list[dict[str, str]], options: dict[str, Any]) -> Iterator[str]:
        with lock:
            chunks: Any = llm.create_chat_completion(
                messages=messages,  # type: ignore[arg-type]
                max_tokens=options.get("max_tokens") or 128,
                temperature=options.get("temperature") or 0.0,
                top_p=options.get("top_p") or 0.95,
                seed=options.get("seed"),
                stop=options.get("stop") or None,
                stream=True,
            )
            for chunk in chunks:
                piece = chunk["choices"][0]["delta"].get("content")
                if piece:
                    yield str(piece)

    def count(text: str) -> int:
        return len(llm.tokenize(text.encode(), add_bos=False, special=True))

    return generate, count


def main(argv: Sequence[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description="An Ollama- and OpenAI-protocol test server.")
    ap.add_argument("--gguf", help="answer with this GGUF model (llama-cpp-python)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--api-key", default=None, help="require this Bearer key on /v1")
    args = ap.parse_args(argv)
    generate: Generate = echo_generate
    count: Callable[[str], int] = count_words
    if args.gguf:
        generate, count = llama_generate(args.gguf, n_threads=args.threads)
    with ProtocolServer(generate, count_tokens=count, api_key=args.api_key) as srv:
        print(srv.url, flush=True)
        sys.stdin.read()  # serve until the parent closes our stdin


if __name__ == "__main__":
    main()
