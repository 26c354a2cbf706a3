"""The RAG assistant: a question in, a grounded answer with its sources out.

``Assistant.ask`` routes the message by intent (a greeting needs no retrieval), answers a
question that matches a taught question/answer pair directly (no generation), else retrieves
from the context store (hybrid when it has vectors), packs the sentences that bear on the
question under the model's context window (counted with the model's own tokenizer), asks the
backend and maps the citations [1], [2] of the answer to the sources. Each session keeps its
last turns verbatim and a summary of the older ones. Answers are cached (LRU with TTL, keyed by
the normalised question and the memory's version), and every interaction is handed to the
interaction hooks (the feedback store).
"""

from __future__ import annotations

import hashlib
import logging
import re
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

from myai import _core
from myai.backends import Backend, BackendError, ChatOptions, ChatResult, select_backend
from myai.backends.base import final_result
from myai.context import ContextManager
from myai.intent import detect_intent
from myai.sentences import content_words, rank_sentences

__all__ = ["Answer", "Assistant", "ResponseCache", "check_question"]

log = logging.getLogger(__name__)

_CITE = re.compile(r"\[(\d{1,3})\]")
_QA = re.compile(r"^\s*Question:\s*(?P<q>.+?)\s*\n\s*Answer:\s*(?P<a>.+?)\s*$", re.S)
CANNED = {
    "greeting": "Hello! Ask me anything about what you have stored, or teach me something.",
    "thanks": "You're welcome!",
    "farewell": "Goodbye!",
    "feedback": "Thanks for the feedback: it is recorded with the last answer.",
}


@dataclass
class Answer:
    """One answer and everything about it (the HTTP API's record)."""

    response: str
    sources: list[dict[str, Any]]
    intent: str
    model: str
    backend: str
    device: str
    processing_time_ms: float
    usage: dict[str, int]
    interaction_id: str
    session_id: str
    question: str = ""
    cached: bool = False
    faq: bool = False
    timings: dict[str, float] = field(default_factory=dict)
    error: str | None = None

    @property
    def text(self) -> str:
        return self.response

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class ResponseCache:
    """LRU with TTL; keys carry the memory's version, so a change of memory invalidates."""

    def __init__(self, max_entries: int = 1024, ttl_s: float = 3600.0, enabled: bool = True):
        self.max_entries = max(0, max_entries)
        self.ttl_s = ttl_s
        self.enabled = enabled and self.max_entries > 0
        self._d: OrderedDict[str, tuple[float, Answer]] = OrderedDict()
        self.hits = 0
        self.misses = 0

    def get(self, key: str) -> Answer | None:
        if not self.enabled:
            return None
        item = self._d.get(key)
        if item is None or time.monotonic() - item[0] > self.ttl_s:
            if item is not None:
                del self._d[key]
            self.misses += 1
            return None
        self._d.move_to_end(key)
        self.hits += 1
        return item[1]

    def put(self, key: str, value: Answer) -> None:
        if not self.enabled:
            return
        self._d[key] = (time.monotonic(), value)
        self._d.move_to_end(key)
        while len(self._d) > self.max_entries:
            self._d.popitem(last=False)

    def clear(self) -> None:
        self._d.clear()

    def stats(self) -> dict[str, Any]:
        n = self.hits + self.misses
        return {
            "enabled": self.enabled,
            "entries": len(self._d),
            "hits": self.hits,
            "misses": self.misses,
            "hit_rate": self.hits / n if n else 0.0,
        }


@dataclass
class _Turn:
    question: str
    answer: str
    interaction_id: str
    canned: bool = False


@dataclass
class _Session:
    turns: list[_Turn] = field(default_factory=list)
    summary: list[str] = field(default_factory=list)


@dataclass
class _Pair:
    question: str
    answer: str
    terms: frozenset[str]
    document_id: int
    document_name: str


def _norm(q: str) -> str:
    return " ".join(_core.normalize(q).lower().split()).rstrip(" ?!.")


class Assistant:
    """Answers questions from a context store with a generation backend.

    ``Assistant(cfg)`` builds both from a composed configuration (``myai.config.load_config``);
    ``context`` and ``backend`` may be given instead (tests, the server). ``hooks`` receive
    every interaction record (a dict) as it completes, failed ones included.
    """

    def __init__(
        self,
        cfg: Any = None,
        *,
        context: ContextManager | None = None,
        backend: Backend | None = None,
        overrides: list[str] | tuple[str, ...] = (),
        hooks: list[Callable[[dict[str, Any]], None]] | None = None,
    ) -> None:
        if cfg is None:
            from myai.config import load_config

            cfg = load_config(overrides)
        self.cfg = cfg
        a = cfg.assistant
        self.persona = str(a.persona)
        self.history_limit = int(a.conversation_history_limit)
        self.context_tokens = int(a.context_tokens)
        self.packing = str(getattr(a.packing, "value", a.packing))
        self.faq_threshold = float(a.faq_threshold)
        self.relevance_cut = float(a.relevance_cut)
        self.max_question_chars = int(a.max_question_chars)
        self.top_k = int(cfg.retrieval.top_k)
        self.max_tokens = int(cfg.backend.max_tokens)
        self._own_context = context is None
        self.context = context if context is not None else ContextManager.from_config(cfg)
        if backend is None:
            backend, self.backend_reasons = select_backend(cfg.backend)
        else:
            self.backend_reasons = [f"{backend.name}: given by the caller"]
        self.backend: Backend = backend
        c = cfg.cache
        entries = max(0, int(c.size_mb)) * 64  # ~16 KB per cached answer with its sources
        self.cache = ResponseCache(entries, float(c.ttl_s), bool(c.enabled))
        self.hooks: list[Callable[[dict[str, Any]], None]] = list(hooks or [])
        self._sessions: OrderedDict[str, _Session] = OrderedDict()
        self._pairs: list[_Pair] = []
        self._pairs_version = -1
        self._lock = threading.RLock()
        self.counts: dict[str, int] = {"interactions": 0, "faq": 0, "errors": 0}
        self.last_interaction: dict[str, Any] | None = None
        # Extra ChatOptions fields for every generation (benchmarks: ignore_eos, seed).
        self.chat_options: dict[str, Any] = {}
        self.last_messages: list[dict[str, str]] = []

    # ----------------------------------------------------------------- public API

    def ask(
        self,
        question: str,
        session_id: str | None = None,
        stream: bool = False,
        *,
        top_k: int | None = None,
        user_id: str | None = None,
    ) -> Answer | Iterator[str | Answer]:
        """The answer to ``question``. With ``stream=True``, an iterator of the answer's text
        pieces followed by the :class:`Answer`. ValueError for an empty or oversized question."""
        q = self._check_question(question)
        it = self._ask(q, session_id or uuid.uuid4().hex, top_k or self.top_k, user_id)
        return it if stream else final_result(it, Answer)

    def stats(self) -> dict[str, Any]:
        return {
            "backend": self.backend.info(),
            "backend_selection": list(self.backend_reasons),
            "cache": self.cache.stats(),
            "sessions": len(self._sessions),
            **self.counts,
        }

    def reset_session(self, session_id: str) -> None:
        self._sessions.pop(session_id, None)

    def close(self) -> None:
        if self._own_context:
            self.context.close()

    def __enter__(self) -> Assistant:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ----------------------------------------------------------------- the pipeline

    def _check_question(self, question: Any) -> str:
        return check_question(question, self.max_question_chars)

    def _session(self, sid: str) -> _Session:
        s = self._sessions.get(sid)
        if s is None:
            s = self._sessions[sid] = _Session()
            while len(self._sessions) > 1000:
                self._sessions.popitem(last=False)
        self._sessions.move_to_end(sid)
        return s

    def _ask(self, q: str, sid: str, top_k: int, user_id: str | None) -> Iterator[str | Answer]:
        t0 = time.perf_counter()
        iid = uuid.uuid4().hex
        intent = detect_intent(q)
        with self._lock:
            session = self._session(sid)
            fresh = not session.turns and not session.summary
        base = dict(intent=intent, interaction_id=iid, session_id=sid, question=q)
        # 1. Small talk and feedback: no retrieval.
        if intent in CANNED and (intent != "feedback" or self.last_interaction is not None):
            if intent == "feedback" and self.last_interaction is not None:
                self._emit({"event": "feedback", "text": q, **self.last_interaction})
            ans = self._record(
                Answer(CANNED[intent], [], model="myai", backend="myai", device="cpu",
                       processing_time_ms=0.0, usage={}, **base),  # type: ignore[arg-type]
                session, t0, user_id,
            )  # fmt: skip
            yield ans.response
            yield ans
            return
        if intent == "correction" and session.turns:
            self._store_correction(session.turns[-1], q)
        # 2. The response cache (answers that do not depend on a conversation).
        key = self._cache_key(q) if fresh else None
        if key is not None:
            hit = self.cache.get(key)
            if hit is not None:
                ans = Answer(**{**hit.to_dict(), **base, "cached": True})
                ans = self._record(ans, session, t0, user_id)
                yield ans.response
                yield ans
                return
        # 3. A taught question/answer pair.
        pair = self._match_pair(q)
        if pair is not None:
            src = {"n": 1, "document_id": pair.document_id, "document_name": pair.document_name,
                   "chunk_id": None, "start": 0, "end": 0, "score": 1.0, "cited": True,
                   "text": f"Question: {pair.question}\nAnswer: {pair.answer}"}  # fmt: skip
            self.counts["faq"] += 1
            ans = self._record(
                Answer(pair.answer, [src], model="taught-answers", backend="faq", device="cpu",
                       processing_time_ms=0.0, usage={}, faq=True, **base),  # type: ignore[arg-type]
                session, t0, user_id,
            )  # fmt: skip
            if key is not None:
                self.cache.put(key, ans)
            yield ans.response
            yield ans
            return
        # 4. Retrieval, packing, generation.
        t_r = time.perf_counter()
        history = self._history_messages(session)
        reserve = min(self.max_tokens, max(64, self.backend.n_ctx // 4))
        fixed = self._count(self.persona) + self._count(q) + 48
        fixed += sum(self._count(m["content"]) + 4 for m in history)
        left = self.backend.n_ctx - reserve - fixed
        budget = self.context_tokens if self.context_tokens > 0 else min(left, 1024)
        budget = max(0, min(budget, left))
        hits = self.context.search_context(q, top_k=top_k) if budget > 0 else []
        sources, packed = self._pack(q, hits, budget)
        retrieval_ms = (time.perf_counter() - t_r) * 1e3
        messages = [{"role": "system", "content": self.persona}, *history]
        messages.append({"role": "user", "content": self._user_message(q, packed, session)})
        opts = ChatOptions(max_tokens=self.max_tokens, sources=sources, question=q,
                           **self.chat_options)  # fmt: skip
        self.last_messages = messages
        pieces: list[str] = []
        result: ChatResult | None = None
        error: str | None = None
        try:
            out = self.backend.chat(messages, opts, stream=True)
            assert not isinstance(out, ChatResult)
            for piece in out:
                if isinstance(piece, ChatResult):
                    result = piece
                else:
                    pieces.append(piece)
                    yield piece
        except BackendError as e:
            error = str(e)
            self.counts["errors"] += 1
            log.error("answering failed: %s", e)
        text = result.text if result is not None else "".join(pieces).strip()
        if result is None and not text:
            text = f"Sorry, no answer could be generated: {error}"
        text = _attribute(text, sources, q)
        said = "".join(pieces).rstrip()
        if pieces and text.startswith(said) and len(text) > len(said):
            yield text[len(said) :]  # the citation markers added by attribution
        ans = Answer(
            text,
            sources,
            model=result.model if result else getattr(self.backend, "model", ""),
            backend=result.backend if result else self.backend.name,
            device=result.device if result else self.backend.device,
            processing_time_ms=0.0,
            usage=result.usage if result else {},
            timings={
                "retrieval_ms": retrieval_ms,
                "ttft_ms": (result.ttft_ms if result else 0.0),
                "generation_ms": (result.total_ms if result else 0.0),
            },
            error=error,
            **base,  # type: ignore[arg-type]
        )
        ans = self._record(ans, session, t0, user_id)
        if key is not None and error is None:
            self.cache.put(key, ans)
        if error is not None and not pieces:
            yield ans.response
        yield ans

    # ----------------------------------------------------------------- pieces

    def _count(self, text: str) -> int:
        return int(self.backend.count_tokens(text))

    def _cache_key(self, q: str) -> str:
        raw = f"{_norm(q)}\x00{self.context.version}\x00{self.backend.model}"
        return hashlib.blake2b(raw.encode(), digest_size=16).hexdigest()

    def _pack(
        self, q: str, hits: list[dict[str, Any]], budget: int
    ) -> tuple[list[dict[str, Any]], list[tuple[int, str, str]]]:
        """The sources (one per contributing hit, numbered from 1) and the packed text of each,
        under ``budget`` tokens: the best sentences in their document order, or whole chunks."""
        if not hits or budget <= 0:
            return [], []
        texts = [h["text"] for h in hits]
        chosen: dict[int, list[tuple[int, int]]] = {}
        used = 0
        if self.packing == "chunks":
            for i, t in enumerate(texts):
                n = self._count(t) + 8
                if used + n > budget:
                    break
                chosen[i] = [(0, len(t))]
                used += n
        else:
            weights = [1.0 / (1.0 + 0.15 * i) for i in range(len(hits))]
            ranked = rank_sentences(q, texts, weights)
            best = ranked[0].score if ranked else 0.0
            fill = self.packing == "fill"  # the budget filled, best sentences first
            # Only sentences close to the best, and holding the question's most specific term
            # that the best one holds: a small model is misled by near-misses (another vault's
            # code when asked for one).
            anchor = _anchor_term(q, ranked)
            for s in ranked:
                if not fill:
                    if s.score <= 0 or s.score < self.relevance_cut * best:
                        break
                    if anchor and s.score < 0.9 * best and anchor not in s.terms:
                        continue
                n = self._count(s.text) + (8 if s.passage not in chosen else 1)
                if used + n > budget:
                    continue
                chosen.setdefault(s.passage, []).append((s.start, s.end))
                used += n
        sources: list[dict[str, Any]] = []
        packed: list[tuple[int, str, str]] = []
        for i in sorted(chosen, key=lambda i: hits[i]["score"], reverse=True):
            h = hits[i]
            spans = sorted(chosen[i])
            snippet = " … ".join(" ".join(texts[i][a:b].split()) for a, b in spans)
            n = len(sources) + 1
            a0, b0 = spans[0][0], spans[-1][1]
            # Offsets into the normalised document (chunk start + character offset as bytes).
            start = h["start"] + len(texts[i][:a0].encode())
            end = h["start"] + len(texts[i][:b0].encode())
            sources.append({"n": n, "document_id": h["document_id"],
                            "document_name": h["document_name"], "chunk_id": h["chunk_id"],
                            "start": start, "end": end, "score": h["score"],
                            "text": snippet, "cited": False})  # fmt: skip
            packed.append((n, h["document_name"], snippet))
        return sources, packed

    def _user_message(self, q: str, packed: list[tuple[int, str, str]], s: _Session) -> str:
        parts = []
        if s.summary:
            parts.append("Earlier in this conversation:\n" + "\n".join(s.summary))
        if packed:
            body = "\n\n".join(f"[{n}] ({name})\n{text}" for n, name, text in packed)
            parts.append(f"Sources:\n{body}")
        parts.append(f"Question: {q}")
        return "\n\n".join(parts)

    def _history_messages(self, s: _Session) -> list[dict[str, str]]:
        out: list[dict[str, str]] = []
        for t in s.turns[-self.history_limit :] if self.history_limit > 0 else []:
            if t.canned:  # small talk tells the model nothing
                continue
            out.append({"role": "user", "content": t.question})
            out.append({"role": "assistant", "content": t.answer})
        return out

    def _record(self, ans: Answer, s: _Session, t0: float, user_id: str | None) -> Answer:
        ans.processing_time_ms = (time.perf_counter() - t0) * 1e3
        with self._lock:
            canned = ans.backend == "myai"
            s.turns.append(_Turn(ans.question, ans.response, ans.interaction_id, canned))
            if self.history_limit >= 0 and len(s.turns) > self.history_limit:
                old = s.turns[: len(s.turns) - self.history_limit]
                del s.turns[: len(old)]
                for t in old:
                    s.summary.append(
                        f"- asked: {_clip(t.question, 24)} → answered: {_clip(t.answer, 40)}"
                    )
                del s.summary[:-12]  # the summary stays bounded however long the chat
            self.counts["interactions"] += 1
        rec = {
            "event": "interaction",
            "interaction_id": ans.interaction_id,
            "session_id": ans.session_id,
            "user_id": user_id,
            "question": ans.question,
            "response": ans.response,
            "intent": ans.intent,
            "model": ans.model,
            "backend": ans.backend,
            "processing_time_ms": ans.processing_time_ms,
            "sources": [{k: v for k, v in x.items() if k != "text"} for x in ans.sources],
            "usage": ans.usage,
            "cached": ans.cached,
            "faq": ans.faq,
            "error": ans.error,
            "at": time.time(),
        }
        self.last_interaction = {"interaction_id": ans.interaction_id, "question": ans.question,
                                 "response": ans.response}  # fmt: skip
        self._emit(rec)
        return ans

    def _emit(self, rec: dict[str, Any]) -> None:
        for h in self.hooks:
            try:
                h(rec)
            except Exception:  # a hook's failure must not lose the answer
                log.exception("interaction hook %r failed", h)

    # ----------------------------------------------------------------- taught answers

    def _load_pairs(self) -> None:
        v = self.context.version
        if v == self._pairs_version:
            return
        pairs: list[_Pair] = []
        for d in self.context.list_documents():
            meta = d.get("metadata") or {}
            q = a = None
            if meta.get("question") and meta.get("answer"):
                q, a = str(meta["question"]), str(meta["answer"])
            elif d["content_type"] == "conversation" or meta.get("kind") == "conversation":
                m = _QA.match(self.context.get_document(d["document_id"])["text"])
                if m:
                    q, a = m["q"], m["a"]
            if q and a:
                pairs.append(_Pair(q, a, frozenset(content_words(q)), d["document_id"],
                                   d["document_name"]))  # fmt: skip
        self._pairs, self._pairs_version = pairs, v

    def _match_pair(self, q: str) -> _Pair | None:
        self._load_pairs()
        if not self._pairs:
            return None
        nq = _norm(q)
        terms = frozenset(content_words(q))
        best, best_sim = None, 0.0
        for p in self._pairs:
            if _norm(p.question) == nq:
                return p
            if not terms or not p.terms:
                continue
            sim = 2.0 * len(terms & p.terms) / (len(terms) + len(p.terms))  # Dice
            if sim > best_sim:
                best, best_sim = p, sim
        return best if best_sim >= self.faq_threshold else None

    def _store_correction(self, last: _Turn, correction: str) -> None:
        """A correction of the last answer becomes a taught pair: the question, the right
        answer (the message with its lead-in removed)."""
        from myai.context import IMPORTANCE_CORRECTION

        right = re.sub(
            r"^(no[,.!]?\s+|actually[,\s]+|correction\s*[:,]\s*|that'?s (not right|wrong|"
            r"incorrect)[,.:;!]?\s*|you'?re wrong[,.:;!]?\s*|wrong[,.:;!]\s*|not quite[,.:;!]?\s*)",
            "",
            correction,
            flags=re.I,
        ).strip()
        if not right or self.context.readonly:
            return
        meta = {"kind": "correction", "question": last.question, "answer": right,
                "wrong": last.answer, "right": right, "interaction_id": last.interaction_id}  # fmt: skip
        text = f"Question: {last.question}\nAnswer: {right}\n"
        name = f"correction:{_core.hash64(_norm(last.question)):016x}"
        self.context.add_document(
            text, name, meta, "conversation", importance=IMPORTANCE_CORRECTION, pinned=True
        )
        self._emit({"event": "correction", **meta})


def check_question(question: Any, max_chars: int) -> str:
    """The question normalised and stripped; TypeError / ValueError naming what is wrong."""
    if not isinstance(question, str):
        raise TypeError(f"question must be a str, got {type(question).__name__}")
    q = _core.normalize(question).strip()
    if not q:
        raise ValueError("the question is empty")
    if len(q) > max_chars:
        raise ValueError(
            f"the question is {len(q):,} characters, over the limit of {max_chars:,} "
            "(assistant.max_question_chars): store long text with ingest and ask about it"
        )
    return q


def _anchor_term(question: str, ranked: list[Any]) -> str | None:
    """The question's most specific term that the best sentence holds: the one fewest of the
    candidate sentences contain (ties: the longer word)."""
    if not ranked:
        return None
    have = set(ranked[0].terms)
    terms = [t for t in dict.fromkeys(content_words(question)) if t in have]
    if not terms:
        return None
    bags = [set(x.terms) for x in ranked if x.score > 0]
    return min(terms, key=lambda t: (sum(t in bag for bag in bags), -len(t)))


def _attribute(text: str, sources: list[dict[str, Any]], question: str = "") -> str:
    """Marks the sources the answer cites. A model that cites nothing (small ones rarely do)
    has its answer attributed by content: a source is cited when it shares at least two
    content words (or all of a short answer's) with the answer, and the markers are appended."""
    cited = {int(n) for n in _CITE.findall(text)}
    if not cited and sources:
        words = set(content_words(text))
        # What the answer adds to the question (a code, a name) identifies its source best.
        new = words - set(content_words(question))
        for s in sources:
            have = set(content_words(s["text"]))
            if (new and new & have) or (not new and len(words & have) >= min(2, len(words))):
                cited.add(s["n"])
        if cited:
            text = text.rstrip() + " " + "".join(f"[{n}]" for n in sorted(cited))
    for s in sources:
        s["cited"] = s["n"] in cited
    return text


def _clip(text: str, words: int) -> str:
    w = text.split()
    return " ".join(w[:words]) + (" …" if len(w) > words else "")
