"""The OpenAI-compatible backend: any server speaking ``/v1/chat/completions`` (vLLM, LM
Studio, llama.cpp's server, Ollama's /v1, a remote API), through the official ``openai``
client.

The key is backend.api_key, or a placeholder for local servers that want none. The model is
backend.model, or the first one the server lists at ``/v1/models``. Streaming asks for the
usage chunk (``stream_options.include_usage``); a server that gives no usage has its tokens
counted here. The server enforces its own context window (it answers 400 when the prompt is too
long: a BackendError quoting it). A refused connection, a refused key (401) or an unknown model
(404) is BackendUnavailable naming the URL, the key or the model; a server that dies or stalls
mid-answer is a BackendError within backend.timeout_s.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, Literal, overload

import openai
from pydantic import ValidationError

from myai.backends._remote import PromptCounter
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

__all__ = ["DEFAULT_BASE_URL", "OpenAIBackend", "from_config", "openai_errors", "probe"]

DEFAULT_BASE_URL = "http://127.0.0.1:8000/v1"
# Local servers need no key, but the client insists on one.
PLACEHOLDER_KEY = "not-needed"
PROBE_TIMEOUT_S = 1.0
CONNECT_TIMEOUT_S = 5.0
META_TIMEOUT_S = 5.0
# Retries cover a transient 429/5xx; more would multiply the wait for a server that is down.
MAX_RETRIES = 1


def _connect_failed(cause: BaseException | None) -> bool:
    """Whether the client's error came from connecting (httpx or httpx2, whichever the
    installed openai uses: matched by name so that neither must be importable)."""
    return isinstance(cause, ConnectionRefusedError) or type(cause).__name__ in (
        "ConnectError",
        "ConnectTimeout",
    )


def _timeout(timeout_s: float) -> openai.Timeout:
    t = float(timeout_s)
    return openai.Timeout(t, connect=min(t, CONNECT_TIMEOUT_S))


def _message(e: openai.APIStatusError) -> str:
    body = e.body
    if isinstance(body, dict):
        err = body.get("error", body)
        msg = err.get("message") if isinstance(err, dict) else err
        if msg:
            return str(msg)
    return e.message


@contextmanager
def openai_errors(url: str, model: str, timeout_s: float, started: bool = False) -> Iterator[None]:
    """Turns what the openai client raises into BackendUnavailable (no server, key refused,
    unknown model: the message names the URL, the key or the model) or BackendError.
    ``started``: the answer had begun, so a broken connection is a failure mid-answer."""
    try:
        yield
    except BackendError:
        raise
    except openai.AuthenticationError as e:
        raise BackendUnavailable(
            f"the server at {url} refused the API key (HTTP 401: {_message(e)}): set "
            "backend.api_key (or $MYAI_OPENAI_API_KEY) to a key it accepts"
        ) from None
    except openai.PermissionDeniedError as e:
        raise BackendUnavailable(
            f"the server at {url} refused access to model {model!r} (HTTP 403: {_message(e)})"
        ) from None
    except openai.NotFoundError as e:
        raise BackendUnavailable(
            f"the server at {url} has no model {model!r} (HTTP 404: {_message(e)}): set "
            "backend.model to one that its /v1/models lists (or check backend.base_url)"
        ) from None
    except openai.APIStatusError as e:
        raise BackendError(
            f"the server at {url} answered HTTP {e.status_code}: {_message(e)}"
        ) from None
    except openai.APIConnectionError as e:  # APITimeoutError included
        cause = e.__cause__
        if not started and _connect_failed(cause):
            raise BackendUnavailable(
                f"cannot reach an OpenAI-compatible server at {url}: start it, or point "
                "backend.base_url at a running one"
            ) from None
        if isinstance(e, openai.APITimeoutError):
            raise BackendError(
                f"the server at {url} sent nothing for {timeout_s:g} s (backend.timeout_s): "
                "it stalled, or the model is too slow for the timeout"
            ) from None
        raise BackendError(
            f"the connection to the server at {url} broke"
            f"{' mid-answer' if started else ''}: {cause or e}"
        ) from None
    except openai.APIError as e:  # an error event inside the stream
        raise BackendError(f"the server at {url} failed mid-answer: {e.message}") from None
    except (openai.OpenAIError, ValidationError, ValueError) as e:
        raise BackendError(f"the server at {url} sent a malformed reply: {e}") from None


def _extra(obj: Any, key: str) -> Any:
    """A field outside the OpenAI schema that a server added (llama.cpp's ``timings``)."""
    extra = getattr(obj, "model_extra", None) or {}
    return extra.get(key)


class OpenAIBackend:
    """A chat model behind an OpenAI-compatible ``/v1/chat/completions``."""

    name = "openai"

    def __init__(
        self,
        base_url: str = DEFAULT_BASE_URL,
        model: str = "",
        api_key: str | None = None,
        n_ctx: int = 4096,
        max_tokens: int = 512,
        temperature: float = 0.7,
        timeout_s: float = 120.0,
        max_retries: int = MAX_RETRIES,
    ) -> None:
        if max_tokens < 1:
            raise ValueError(f"max_tokens must be at least 1, not {max_tokens}")
        if timeout_s <= 0:
            raise ValueError(f"timeout_s must be positive, not {timeout_s}")
        self.base_url = (base_url or DEFAULT_BASE_URL).rstrip("/")
        self.device = "remote"
        self.n_ctx = int(n_ctx)
        self.max_tokens = int(max_tokens)
        self.temperature = float(temperature)
        self.timeout_s = float(timeout_s)
        self.client = openai.OpenAI(
            base_url=self.base_url,
            api_key=api_key or PLACEHOLDER_KEY,
            timeout=_timeout(self.timeout_s),
            max_retries=max_retries,
        )
        self._meta = self.client.with_options(
            timeout=_timeout(min(self.timeout_s, META_TIMEOUT_S)), max_retries=0
        )
        # Pooled connections are closed when the backend goes away unclosed.
        self._finalizer = weakref.finalize(self, self.client.close)
        try:
            self.model = model or self._first_model()
        except BaseException:
            self.close()
            raise
        self.counter = PromptCounter(self.model)

    def __repr__(self) -> str:
        return f"OpenAIBackend(base_url={self.base_url!r}, model={self.model!r})"

    def close(self) -> None:
        """Closes the HTTP connections (also done when the backend is garbage-collected)."""
        self._finalizer()

    def __enter__(self) -> OpenAIBackend:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _errors(self, started: bool = False) -> Any:
        return openai_errors(self.base_url, self.model, self.timeout_s, started)

    def _first_model(self) -> str:
        with openai_errors(self.base_url, "", META_TIMEOUT_S):
            ids = [m.id for m in self._meta.models.list()]
        if not ids:
            raise BackendUnavailable(
                f"the server at {self.base_url} lists no model at /v1/models: set backend.model"
            )
        return ids[0]

    def count_tokens(self, text: str) -> int:
        return self.counter.count(text)

    def prepare(
        self, messages: Sequence[Message], options: ChatOptions | None = None
    ) -> tuple[list[Message], dict[str, Any]]:
        """The checked messages and the request's sampling arguments."""
        msgs = check_messages(messages)
        o = options or ChatOptions()
        max_tokens = self.max_tokens if o.max_tokens is None else int(o.max_tokens)
        if max_tokens < 1:
            raise ValueError(f"max_tokens must be at least 1, not {max_tokens}")
        args: dict[str, Any] = {
            "max_tokens": max_tokens,
            "temperature": self.temperature if o.temperature is None else float(o.temperature),
        }
        if o.top_p is not None:
            args["top_p"] = float(o.top_p)
        if o.seed is not None:
            args["seed"] = int(o.seed)
        if o.stop:
            args["stop"] = list(o.stop)
        return msgs, args

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

        A streamed call returns once the server has answered the request (its headers), so a
        missing server, a refused key or an unknown model raises here, before any piece.
        """
        msgs, args = self.prepare(messages, options)
        # Untyped on purpose: the client's overloads cannot see through **args.
        completions: Any = self.client.chat.completions
        timer = Timer()
        if not stream:
            with self._errors():
                resp = completions.create(model=self.model, messages=msgs, stream=False, **args)
            choice = resp.choices[0] if resp.choices else None
            text = (choice.message.content if choice else None) or ""
            r = self._result(text, choice.finish_reason if choice else None, resp.usage, msgs)
            self._timings(r, _extra(resp, "timings"))
            timer.fill(r)
            return r
        with self._errors():
            try:
                chunks = completions.create(
                    model=self.model,
                    messages=msgs,
                    stream=True,
                    stream_options={"include_usage": True},
                    **args,
                )
            except openai.BadRequestError as e:
                if "stream_options" not in _message(e):
                    raise
                # An older server that does not know stream_options: usage counted here.
                chunks = completions.create(model=self.model, messages=msgs, stream=True, **args)
        return self._stream(chunks, msgs, timer)

    def _stream(self, chunks: Any, msgs: list[Message], timer: Timer) -> Iterator[str | ChatResult]:
        parts: list[str] = []
        finish: str | None = None
        usage: Any = None
        timings: Any = None
        it = iter(chunks)
        try:
            while True:
                with self._errors(started=True):
                    chunk = next(it, None)
                if chunk is None:
                    break
                usage = chunk.usage or usage
                timings = _extra(chunk, "timings") or timings
                for choice in chunk.choices[:1]:
                    piece = choice.delta.content if choice.delta is not None else None
                    if piece:
                        timer.first()
                        parts.append(piece)
                        yield piece
                    if choice.finish_reason:
                        finish = choice.finish_reason
        finally:
            chunks.close()
        if finish is None:
            raise BackendError(
                f"the server at {self.base_url} ended the stream after {len(parts)} pieces "
                "without finishing the answer (no finish_reason): it stopped mid-answer"
            )
        r = self._result("".join(parts), finish, usage, msgs)
        self._timings(r, timings)
        yield timer.fill(r)

    def _result(self, text: str, finish: str | None, usage: Any, msgs: list[Message]) -> ChatResult:
        r = ChatResult(
            text=text,
            backend=self.name,
            model=self.model,
            device=self.device,
            finish_reason="length" if finish == "length" else "stop",
        )
        if usage is not None and usage.prompt_tokens is not None:
            r.prompt_tokens = int(usage.prompt_tokens)
            r.completion_tokens = int(usage.completion_tokens or 0)
        else:  # the server gave none: counted here
            r.prompt_tokens = self.counter.prompt_tokens(msgs)
            r.completion_tokens = self.counter.count(text)
        return r

    @staticmethod
    def _timings(r: ChatResult, timings: Any) -> None:
        """llama.cpp's server reports its own prompt and generation times."""
        if isinstance(timings, dict):
            r.prompt_ms = float(timings.get("prompt_ms") or 0.0)
            r.generation_ms = float(timings.get("predicted_ms") or 0.0)

    def info(self) -> dict[str, Any]:
        """What the backend is, plus the server's record of the model (``/v1/models``; vLLM
        adds ``max_model_len``). ``error`` says why the server could not be asked."""
        d: dict[str, Any] = {
            "name": self.name,
            "model": self.model,
            "device": self.device,
            "n_ctx": self.n_ctx,
            "base_url": self.base_url,
            "tokenizer": self.counter.name,
            "quantization": None,
        }
        try:
            with openai_errors(self.base_url, self.model, META_TIMEOUT_S):
                models = list(self._meta.models.list())
        except BackendError as e:
            d["error"] = str(e)
            return d
        for m in models:
            if m.id == self.model:
                d["owned_by"] = m.owned_by
                for key in ("max_model_len", "context_length", "meta"):
                    if (v := _extra(m, key)) is not None:
                        d[key] = v
        d["listed"] = any(m.id == self.model for m in models)
        return d

    def health(self) -> dict[str, Any]:
        """``{"ok", "detail"}``: whether the server answers ``/v1/models`` now."""
        ok, detail = _check(self._meta, self.base_url, self.model)
        return {"ok": ok, "detail": detail, "base_url": self.base_url, "model": self.model}


def _check(client: openai.OpenAI, url: str, model: str) -> tuple[bool, str]:
    try:
        with openai_errors(url, model, PROBE_TIMEOUT_S):
            ids = [m.id for m in client.models.list()]
    except BackendError as e:
        return False, str(e)
    if not model:
        if not ids:
            return False, f"the server at {url} lists no model: set backend.model"
        return True, f"the server at {url} serves {ids[0]}"
    if model in ids:
        return True, f"the server at {url} serves {model}"
    # Some servers (llama.cpp's) answer whatever model name is asked for.
    return True, f"the server at {url} answers ({model!r} is not among its {len(ids)} models)"


def from_config(cfg: Any) -> OpenAIBackend:
    """The backend configured by the ``backend`` group (base_url, api_key, model, n_ctx,
    max_tokens, temperature, timeout_s). An empty model asks the server for its first one."""
    return OpenAIBackend(
        base_url=str(cfg_get(cfg, "base_url", DEFAULT_BASE_URL)),
        model=str(cfg_get(cfg, "model", "")),
        api_key=cfg_get(cfg, "api_key", None),
        n_ctx=int(cfg_get(cfg, "n_ctx", 4096)),
        max_tokens=int(cfg_get(cfg, "max_tokens", 512)),
        temperature=float(cfg_get(cfg, "temperature", 0.7)),
        timeout_s=float(cfg_get(cfg, "timeout_s", 120.0)),
    )


def probe(cfg: Any) -> tuple[bool, str]:
    """Whether the server at backend.base_url answers ``/v1/models`` within about a second
    (and takes the key). Loads nothing."""
    url = str(cfg_get(cfg, "base_url", DEFAULT_BASE_URL)) or DEFAULT_BASE_URL
    with openai.OpenAI(
        base_url=url,
        api_key=cfg_get(cfg, "api_key", None) or PLACEHOLDER_KEY,
        timeout=PROBE_TIMEOUT_S,
        max_retries=0,
    ) as client:
        return _check(client, url.rstrip("/"), str(cfg_get(cfg, "model", "")))
