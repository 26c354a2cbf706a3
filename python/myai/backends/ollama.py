"""The Ollama backend: a model served by an Ollama server (``ollama serve``), through the
official ``ollama`` client.

Every request carries ``num_ctx`` (backend.n_ctx), so the window the prompt was counted
against is the one the server uses, and ``keep_alive``. Ollama cuts a prompt that does not fit
``num_ctx`` without an error, so the prompt is counted here first (SmolLM2's own tokenizer for
a SmolLM2 model, else the estimator with a margin) and one that would not fit with
``max_tokens`` is refused, saying by how many tokens, before anything is sent.

Usage and timings come from the server's final record (``prompt_eval_count``, ``eval_count``
and the ``*_duration`` fields, in nanoseconds). The HTTP timeout (backend.timeout_s) bounds
every wait for a byte, so a server that stalls or dies mid-answer is a BackendError, never a
hang; an unreachable server or a model that is not pulled is BackendUnavailable naming the fix.
"""

from __future__ import annotations

import json
import weakref
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, Literal, overload

import httpx
import ollama
from pydantic import ValidationError

from myai.backends._remote import PromptCounter, check_fits, keep_alive_value
from myai.backends.base import (
    BackendError,
    BackendUnavailable,
    ChatOptions,
    ChatResult,
    Message,
    Timer,
    cfg_get,
    check_messages,
)

__all__ = [
    "DEFAULT_HOST",
    "DEFAULT_MODEL",
    "OllamaBackend",
    "from_config",
    "make_client",
    "ollama_errors",
    "probe",
    "same_model",
]

DEFAULT_HOST = "http://127.0.0.1:11434"
DEFAULT_MODEL = "smollm2:135m"
# The probe must answer fast: auto-selection runs it before every other backend.
PROBE_TIMEOUT_S = 1.0
# Connecting takes no longer than this even when the read timeout is long (a host that does
# not answer at all is reported quickly).
CONNECT_TIMEOUT_S = 5.0
# info() and health() ask the server about itself: seconds, not a generation's timeout.
META_TIMEOUT_S = 5.0

_FINISH = {"stop": "stop", "length": "length", "load": "stop", "unload": "stop"}


def make_client(host: str, timeout_s: float) -> ollama.Client:
    """An ``ollama.Client`` for ``host`` whose every wait (connect, each read) is bounded."""
    t = float(timeout_s)
    return ollama.Client(host=host, timeout=httpx.Timeout(t, connect=min(t, CONNECT_TIMEOUT_S)))


def same_model(a: str, b: str) -> bool:
    """Whether two Ollama model names are the same model ("smollm2" is "smollm2:latest")."""

    def norm(s: str) -> str:
        s = s.strip()
        return s if ":" in s.rsplit("/", 1)[-1] else s + ":latest"

    return norm(a) == norm(b)


@contextmanager
def ollama_errors(host: str, model: str, timeout_s: float) -> Iterator[None]:
    """Turns what the ollama client and httpx raise into BackendUnavailable (the server or
    the model is missing: the message says what to start or pull) or BackendError."""
    try:
        yield
    except BackendError:
        raise
    except ollama.ResponseError as e:
        if e.status_code == 404:
            raise BackendUnavailable(
                f"the Ollama server at {host} does not have model {model!r} ({e.error}): "
                f"run `ollama pull {model}`"
            ) from None
        if e.status_code == -1:  # an error record inside a stream
            raise BackendError(
                f"the Ollama server at {host} failed mid-answer: {e.error}"
            ) from None
        raise BackendError(
            f"the Ollama server at {host} answered HTTP {e.status_code}: {e.error}"
        ) from None
    except (ConnectionError, httpx.ConnectError, httpx.ConnectTimeout) as e:
        # The client turns a refused connection into ConnectionError (its own words, the
        # cause kept as the context), except while streaming.
        cause = e.__context__ if isinstance(e, ConnectionError) and e.__context__ else e
        why = str(cause) or type(cause).__name__
        raise BackendUnavailable(
            f"cannot reach an Ollama server at {host} ({why}): start it with `ollama serve` "
            "(or point backend.host at a running one)"
        ) from None
    except httpx.TimeoutException:
        raise BackendError(
            f"the Ollama server at {host} sent nothing for {timeout_s:g} s "
            "(backend.timeout_s): it stalled, or the model is too slow for the timeout"
        ) from None
    except httpx.TransportError as e:  # the peer closed the connection, a read failed
        raise BackendError(
            f"the connection to the Ollama server at {host} broke: {e or type(e).__name__}"
        ) from None
    except (json.JSONDecodeError, ValidationError) as e:
        raise BackendError(f"the Ollama server at {host} sent a malformed reply: {e}") from None


class OllamaBackend:
    """A chat model served by Ollama. ``chat`` checks the prompt's length locally, then asks
    ``/api/chat`` with ``num_ctx``, ``num_predict``, the sampling options and ``keep_alive``."""

    name = "ollama"

    def __init__(
        self,
        host: str = DEFAULT_HOST,
        model: str = "",
        n_ctx: int = 4096,
        max_tokens: int = 512,
        temperature: float = 0.7,
        timeout_s: float = 120.0,
        keep_alive: str | int | float | None = "5m",
    ) -> None:
        if n_ctx < 1:
            raise ValueError(f"n_ctx must be at least 1, not {n_ctx}")
        if max_tokens < 1:
            raise ValueError(f"max_tokens must be at least 1, not {max_tokens}")
        if timeout_s <= 0:
            raise ValueError(f"timeout_s must be positive, not {timeout_s}")
        self.host = host or DEFAULT_HOST
        self.model = model or DEFAULT_MODEL
        self.device = "remote"  # the server decides (see info()["processor"])
        self.n_ctx = int(n_ctx)
        self.max_tokens = int(max_tokens)
        self.temperature = float(temperature)
        self.timeout_s = float(timeout_s)
        self.keep_alive = keep_alive_value(keep_alive)
        self.client = make_client(self.host, self.timeout_s)
        self._meta = make_client(self.host, min(self.timeout_s, META_TIMEOUT_S))
        # Pooled connections are closed when the backend goes away unclosed.
        self._finalizer = weakref.finalize(self, _close, self.client, self._meta)
        self.counter = PromptCounter(self.model)

    def __repr__(self) -> str:
        return f"OllamaBackend(host={self.host!r}, model={self.model!r}, n_ctx={self.n_ctx})"

    def close(self) -> None:
        """Closes the HTTP connections (also done when the backend is garbage-collected)."""
        self._finalizer()

    def __enter__(self) -> OllamaBackend:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _errors(self) -> Any:
        return ollama_errors(self.host, self.model, self.timeout_s)

    def count_tokens(self, text: str) -> int:
        return self.counter.count(text)

    def prepare(
        self, messages: Sequence[Message], options: ChatOptions | None = None
    ) -> tuple[list[Message], dict[str, Any], int]:
        """The checked messages, the request's ``options`` and the prompt's token count;
        BackendError when the prompt and max_tokens do not fit ``n_ctx``."""
        msgs = check_messages(messages)
        o = options or ChatOptions()
        max_tokens = self.max_tokens if o.max_tokens is None else int(o.max_tokens)
        if max_tokens < 1:
            raise ValueError(f"max_tokens must be at least 1, not {max_tokens}")
        prompt_tokens = self.counter.prompt_tokens(msgs)
        check_fits(prompt_tokens, max_tokens, self.n_ctx, f"{self.model} (Ollama)")
        opts: dict[str, Any] = {
            "num_ctx": self.n_ctx,
            "num_predict": max_tokens,
            "temperature": self.temperature if o.temperature is None else float(o.temperature),
        }
        if o.top_p is not None:
            opts["top_p"] = float(o.top_p)
        if o.seed is not None:
            opts["seed"] = int(o.seed)
        if o.stop:
            opts["stop"] = list(o.stop)
        return msgs, opts, prompt_tokens

    @overload
    def chat(
        self,
        messages: Sequence[Message],
        options: ChatOptions | None = None,
        stream: Literal[False] = False,
    ) -> ChatResult: ...

    @overload
    def chat(
        self, messages: Sequence[Message], options: ChatOptions | None, stream: Literal[True]
    ) -> Iterator[str | ChatResult]: ...

    @overload
    def chat(
        self, messages: Sequence[Message], *, stream: Literal[True]
    ) -> Iterator[str | ChatResult]: ...

    @overload
    def chat(
        self, messages: Sequence[Message], options: ChatOptions | None = None, stream: bool = False
    ) -> ChatResult | Iterator[str | ChatResult]: ...

    def chat(
        self,
        messages: Sequence[Message],
        options: ChatOptions | None = None,
        stream: bool = False,
    ) -> ChatResult | Iterator[str | ChatResult]:
        """The answer (``stream=False``), or an iterator of its pieces then the ChatResult.

        A streamed call connects and waits for the first record before returning, so an
        unreachable server or a missing model raises here, before anything is yielded.
        """
        msgs, opts, prompt_tokens = self.prepare(messages, options)
        timer = Timer()
        if not stream:
            with self._errors():
                resp = self.client.chat(
                    model=self.model,
                    messages=msgs,
                    options=opts,
                    keep_alive=self.keep_alive,
                    stream=False,
                )
            text = resp.message.content or ""
            return self._result(text, resp, prompt_tokens, timer, streamed=False)
        records = self.client.chat(
            model=self.model, messages=msgs, options=opts, keep_alive=self.keep_alive, stream=True
        )
        try:
            with self._errors():
                first = next(records, None)
        except BaseException:
            _close_iter(records)
            raise
        return self._stream(records, first, prompt_tokens, timer)

    def _stream(
        self,
        records: Iterator[ollama.ChatResponse],
        rec: ollama.ChatResponse | None,
        prompt_tokens: int,
        timer: Timer,
    ) -> Iterator[str | ChatResult]:
        parts: list[str] = []
        try:
            while rec is not None:
                piece = rec.message.content or ""
                if piece:
                    timer.first()
                    parts.append(piece)
                    yield piece
                if rec.done:
                    yield self._result("".join(parts), rec, prompt_tokens, timer, streamed=True)
                    return
                with self._errors():
                    rec = next(records, None)
        finally:
            _close_iter(records)
        raise BackendError(
            f"the Ollama server at {self.host} ended the answer without its final record "
            f"after {len(parts)} pieces: the server or the model stopped mid-answer"
        )

    def _result(
        self,
        text: str,
        final: ollama.ChatResponse,
        prompt_tokens: int,
        timer: Timer,
        streamed: bool,
    ) -> ChatResult:
        r = ChatResult(
            text=text,
            backend=self.name,
            model=final.model or self.model,
            device=self.device,
            finish_reason=_FINISH.get(final.done_reason or "stop", "stop"),
            # The server's counts; ours when it leaves them out (a fully cached prompt).
            prompt_tokens=(
                final.prompt_eval_count if final.prompt_eval_count is not None else prompt_tokens
            ),
            completion_tokens=(
                final.eval_count if final.eval_count is not None else self.counter.count(text)
            ),
        )
        ns = 1e-6
        r.prompt_ms = (final.prompt_eval_duration or 0) * ns
        r.generation_ms = (final.eval_duration or 0) * ns
        timer.fill(r)
        if not streamed and (final.prompt_eval_duration or final.load_duration):
            # Nothing was seen before the end: the server's time to its first token.
            r.ttft_ms = ((final.load_duration or 0) + (final.prompt_eval_duration or 0)) * ns
        if final.total_duration:
            r.total_ms = max(final.total_duration * ns, r.ttft_ms)
        return r

    def info(self) -> dict[str, Any]:
        """What the backend is, plus what the server says of the model (``/api/show``:
        family, parameters, quantisation, trained context length; ``/api/ps``: where it is
        loaded). ``error`` says why the server could not be asked."""
        d: dict[str, Any] = {
            "name": self.name,
            "model": self.model,
            "device": self.device,
            "n_ctx": self.n_ctx,
            "host": self.host,
            "keep_alive": self.keep_alive,
            "tokenizer": self.counter.name,
            "quantization": None,
        }
        try:
            with ollama_errors(self.host, self.model, META_TIMEOUT_S):
                show = self._meta.show(self.model)
        except BackendError as e:
            d["error"] = str(e)
            return d
        det = show.details
        if det is not None:
            d["family"] = det.family
            d["parameter_size"] = det.parameter_size
            d["quantization"] = det.quantization_level
            d["format"] = det.format
        for k, v in (show.modelinfo or {}).items():
            if k.endswith(".context_length") and isinstance(v, int):
                d["context_length"] = v  # the window the model was trained for
        caps = getattr(show, "capabilities", None)  # newer clients only
        if caps is not None:
            d["capabilities"] = list(caps)
        try:  # where the model is loaded now (an older server may not have /api/ps)
            with ollama_errors(self.host, self.model, META_TIMEOUT_S):
                running = self._meta.ps().models
        except BackendError:
            running = []
        for m in running:
            if m.model and same_model(m.model, self.model):
                vram, size = m.size_vram or 0, m.size or 0
                d["processor"] = "gpu" if size and vram >= size else "cpu+gpu" if vram else "cpu"
                if getattr(m, "context_length", None):  # newer clients only
                    d["loaded_context_length"] = m.context_length
        return d

    def health(self) -> dict[str, Any]:
        """``{"ok", "detail"}``: whether the server answers now and has the model."""
        ok, detail = _check(self._meta, self.host, self.model, META_TIMEOUT_S)
        return {"ok": ok, "detail": detail, "host": self.host, "model": self.model}


def _close_iter(it: Iterator[Any]) -> None:
    """Closes a generator (its HTTP response with it)."""
    close = getattr(it, "close", None)
    if close is not None:
        close()


def _close(*clients: ollama.Client) -> None:
    for c in clients:
        c.close()


def _check(client: ollama.Client, host: str, model: str, timeout_s: float) -> tuple[bool, str]:
    try:
        with ollama_errors(host, model, timeout_s):
            listed = client.list()
    except BackendError as e:
        return False, str(e)
    names = [m.model for m in listed.models if m.model]
    if any(same_model(n, model) for n in names):
        return True, f"Ollama at {host} serves {model}"
    return False, (
        f"the Ollama server at {host} does not have model {model!r} "
        f"({len(names)} models pulled): run `ollama pull {model}`"
    )


def from_config(cfg: Any) -> OllamaBackend:
    """The backend configured by the ``backend`` group (host, model, n_ctx, max_tokens,
    temperature, timeout_s, keep_alive). Nothing is asked of the server yet."""
    return OllamaBackend(
        host=str(cfg_get(cfg, "host", DEFAULT_HOST)),
        model=str(cfg_get(cfg, "model", "")),
        n_ctx=int(cfg_get(cfg, "n_ctx", 4096)),
        max_tokens=int(cfg_get(cfg, "max_tokens", 512)),
        temperature=float(cfg_get(cfg, "temperature", 0.7)),
        timeout_s=float(cfg_get(cfg, "timeout_s", 120.0)),
        keep_alive=cfg_get(cfg, "keep_alive", "5m"),
    )


def probe(cfg: Any) -> tuple[bool, str]:
    """Whether an Ollama server answers ``/api/tags`` at backend.host within about a second
    and lists the configured model. Loads nothing."""
    host = str(cfg_get(cfg, "host", DEFAULT_HOST)) or DEFAULT_HOST
    model = str(cfg_get(cfg, "model", "")) or DEFAULT_MODEL
    with make_client(host, PROBE_TIMEOUT_S) as client:
        return _check(client, host, model, PROBE_TIMEOUT_S)
