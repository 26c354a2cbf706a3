"""Generation backends: llama.cpp (embedded, the default model), Ollama, HuggingFace,
OpenAI-compatible servers and the extractive fallback, chosen by ``backend.name``.

Each backend lives in its own module with a class speaking :class:`Backend`, a
``from_config(cfg)`` that builds it from the ``backend`` config group (raising
:class:`BackendUnavailable` naming what is missing) and a cheap ``probe(cfg) -> (ok, reason)``
used by ``auto``. Modules are imported only when used, so a missing optional runtime (torch,
llama-cpp-python, the ollama client) costs nothing until asked for.
"""

from __future__ import annotations

import importlib
import logging
from typing import Any

from myai.backends.base import (
    Backend,
    BackendError,
    BackendUnavailable,
    ChatOptions,
    ChatResult,
    Message,
    check_messages,
    final_result,
)

__all__ = [
    "AUTO_ORDER",
    "BACKENDS",
    "Backend",
    "BackendError",
    "BackendUnavailable",
    "ChatOptions",
    "ChatResult",
    "FallbackBackend",
    "Message",
    "check_messages",
    "make_backend",
    "probe_backend",
    "select_backend",
]

log = logging.getLogger(__name__)

# name -> module (relative to myai.backends)
BACKENDS: dict[str, str] = {
    "llamacpp": "llamacpp",
    "ollama": "ollama",
    "hf": "hf",
    "openai": "openai_compat",
    "extractive": "extractive",
}
# The order in which ``auto`` tries them (the seed's selection), and falls back at run time.
AUTO_ORDER = ("ollama", "hf", "llamacpp", "extractive")


def _module(name: str) -> Any:
    if name not in BACKENDS:
        raise ValueError(f"unknown backend {name!r}: expected auto or one of {', '.join(BACKENDS)}")
    return importlib.import_module(f"myai.backends.{BACKENDS[name]}")


def _name(v: Any) -> str:
    return str(getattr(v, "value", v))


def _offline_refusal(name: str, cfg: Any) -> str | None:
    """Why backend ``name`` may not be used with ``backend.internet=false`` (its server is not
    on this machine), or None."""
    if bool(getattr(cfg, "internet", True)) or name not in ("ollama", "openai"):
        return None
    from urllib.parse import urlsplit

    url = str(cfg.host if name == "ollama" else cfg.base_url)
    host = urlsplit(url if "//" in url else f"http://{url}").hostname or ""
    if host in ("localhost", "127.0.0.1", "::1") or host.startswith("127."):
        return None
    return f"{name}: {url} is not on this machine and internet features are off (backend.internet=false)"


def make_backend(name: str, cfg: Any) -> Backend:
    """The backend called ``name`` built from the ``backend`` config group ``cfg`` (a
    DictConfig or BackendConfig). BackendUnavailable when its runtime or model is missing."""
    refused = _offline_refusal(_name(name), cfg)
    if refused:
        raise BackendUnavailable(refused)
    try:
        mod = _module(_name(name))
    except ImportError as e:  # a module that itself imports an optional runtime at top level
        raise BackendUnavailable(f"backend {name} cannot be loaded: {e}") from e
    backend: Backend = mod.from_config(cfg)
    return backend


def probe_backend(name: str, cfg: Any) -> tuple[bool, str]:
    """Whether backend ``name`` can be used now, and why (or why not), cheaply: no model is
    loaded. Never raises."""
    refused = _offline_refusal(_name(name), cfg)
    if refused:
        return False, refused
    try:
        ok, reason = _module(_name(name)).probe(cfg)
        return bool(ok), str(reason)
    except Exception as e:
        return False, f"{type(e).__name__}: {e}"


class FallbackBackend:
    """A backend that hands a failed call to the next candidate: ``auto``'s run-time fallback.

    Candidates after the first are built only when needed. A failure before the first piece of
    an answer is invisible to the caller (the next backend answers); a failure mid-stream is
    told in the stream, and the next backend answers in full after it. The result names the
    backend and model that produced it.
    """

    def __init__(self, first: Backend, rest: list[str], cfg: Any) -> None:
        self._chain: list[Backend | str] = [first, *rest]
        self._cfg = cfg
        self.failures: list[str] = []

    @property
    def primary(self) -> Backend:
        b = self._chain[0]
        assert not isinstance(b, str)
        return b

    name = property(lambda self: self.primary.name)
    model = property(lambda self: self.primary.model)
    device = property(lambda self: self.primary.device)
    n_ctx = property(lambda self: self.primary.n_ctx)

    def count_tokens(self, text: str) -> int:
        return self.primary.count_tokens(text)

    def info(self) -> dict[str, Any]:
        d = dict(self.primary.info())
        d["fallbacks"] = [b if isinstance(b, str) else b.name for b in self._chain[1:]]
        return d

    def health(self) -> dict[str, Any]:
        return self.primary.health()

    def _get(self, i: int) -> Backend:
        b = self._chain[i]
        if isinstance(b, str):
            b = make_backend(b, self._cfg)
            self._chain[i] = b
        return b

    def chat(
        self,
        messages: Any,
        options: ChatOptions | None = None,
        stream: bool = False,
    ) -> Any:
        msgs = check_messages(messages)  # bad input is the caller's error, not a backend's
        it = self._chat(msgs, options)
        return it if stream else final_result(it, ChatResult)

    def _chat(self, msgs: list[Message], options: ChatOptions | None) -> Any:
        said: list[str] = []
        errors: list[str] = []
        for i in range(len(self._chain)):
            try:
                b = self._get(i)
            except BackendError as e:
                errors.append(str(e))
                continue
            try:
                for piece in b.chat(msgs, options, stream=True):  # type: ignore[union-attr]
                    if isinstance(piece, ChatResult):
                        if said:
                            piece.text = "".join(said).strip()
                        yield piece
                        return
                    said.append(piece)
                    yield piece
            except BackendError as e:
                log.warning("backend %s failed (%s); falling back", b.name, e)
                self.failures.append(f"{b.name}: {e}")
                errors.append(f"{b.name}: {e}")
                if said:
                    notice = f"\n\n[{b.name} failed mid-answer ({e}); continuing with the next backend]\n"
                    said.append(notice)
                    yield notice
        raise BackendError("every backend failed: " + "; ".join(errors))


def select_backend(cfg: Any) -> tuple[Backend, list[str]]:
    """The backend the ``backend`` config group asks for, and the reasons for the choice.

    ``auto`` probes ollama, hf, llamacpp and extractive in this order and takes the first that
    can answer; the others that can are its run-time fallbacks (with ``fallback``). A named
    backend that cannot be built raises BackendUnavailable; at run time it falls back to the
    extractive answerer (with ``fallback``).
    """
    name = _name(cfg.name)
    reasons: list[str] = []
    fallback = bool(getattr(cfg, "fallback", True))
    if name != "auto":
        b = make_backend(name, cfg)
        reasons.append(f"{name}: configured (backend.name={name})")
        rest = ["extractive"] if fallback and name != "extractive" else []
        chosen: Backend = FallbackBackend(b, rest, cfg) if rest else b
        return chosen, reasons
    usable: list[str] = []
    for cand in AUTO_ORDER:
        ok, why = probe_backend(cand, cfg)
        reasons.append(f"{cand}: {'yes' if ok else 'no'} — {why}")
        if ok:
            usable.append(cand)
    for i, cand in enumerate(usable):
        try:
            b = make_backend(cand, cfg)
        except BackendError as e:
            reasons.append(f"{cand}: probe passed but loading failed — {e}")
            continue
        rest = usable[i + 1 :] if fallback else []
        reasons.append(f"chosen: {cand} ({b.model})")
        for r in reasons:
            log.info("backend auto-selection: %s", r)
        return (FallbackBackend(b, rest, cfg) if rest else b), reasons
    raise BackendUnavailable("no backend can answer: " + "; ".join(reasons))  # pragma: no cover
