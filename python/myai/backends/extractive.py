"""The backend without a language model: it answers with the retrieved sentences that best
match the question, quoted and attributed ([1], [2] as in the sources). Always available, it is
the last fallback and the min-footprint answerer."""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from typing import Any

from myai import _core
from myai.backends.base import ChatOptions, ChatResult, Message, Timer, check_messages
from myai.sentences import rank_sentences

__all__ = ["ExtractiveBackend", "from_config", "probe"]

NOTHING = "I found nothing in my memory that answers this."
_PIECE = re.compile(r"\S+\s*")


class ExtractiveBackend:
    name = "extractive"
    model = "extractive"
    device = "cpu"
    n_ctx = 1 << 20

    def __init__(self, max_sentences: int = 3) -> None:
        self.max_sentences = max_sentences

    def count_tokens(self, text: str) -> int:
        return int(_core.estimate_tokens(text))

    def answer(self, question: str, sources: Sequence[dict[str, Any]]) -> str:
        """The best sentences of ``sources`` for ``question``, each quoted with its citation."""
        texts = [str(s.get("text", "")) for s in sources]
        ranked = [s for s in rank_sentences(question, texts) if s.score > 0]
        if not ranked:
            return NOTHING
        best = ranked[0].score
        picked = [s for s in ranked[: self.max_sentences] if s.score >= 0.5 * best]
        picked.sort(key=lambda s: (s.passage, s.start))
        parts = []
        for s in picked:
            src = sources[s.passage]
            n = src.get("n", s.passage + 1)
            name = src.get("document_name", "")
            quote = " ".join(s.text.split())
            parts.append(f"“{quote}” [{n}]" + (f" ({name})" if name else ""))
        return "From your memory: " + " ".join(parts)

    def chat(
        self,
        messages: Sequence[Message],
        options: ChatOptions | None = None,
        stream: bool = False,
    ) -> ChatResult | Iterator[str | ChatResult]:
        msgs = check_messages(messages)
        o = options or ChatOptions()
        timer = Timer()
        question = o.question
        if question is None:
            question = next((m["content"] for m in reversed(msgs) if m["role"] == "user"), "")
        sources = o.sources
        if sources is None:  # a bare chat call: quote from what the conversation itself holds
            sources = [{"text": m["content"], "n": i + 1} for i, m in enumerate(msgs)
                       if m["role"] != "assistant" and m["content"] != question]  # fmt: skip
        text = self.answer(question, sources)
        if o.max_tokens is not None:
            pieces = _PIECE.findall(text)[: max(1, o.max_tokens)]
            text = "".join(pieces).rstrip()
        result = ChatResult(
            text=text,
            backend=self.name,
            model=self.model,
            prompt_tokens=sum(self.count_tokens(m["content"]) for m in msgs),
            completion_tokens=self.count_tokens(text),
        )
        if not stream:
            timer.first()
            return timer.fill(result)
        return self._stream(text, result, timer)

    @staticmethod
    def _stream(text: str, result: ChatResult, timer: Timer) -> Iterator[str | ChatResult]:
        for piece in _PIECE.findall(text):
            timer.first()
            yield piece
        yield timer.fill(result)

    def info(self) -> dict[str, Any]:
        return {"backend": self.name, "model": self.model, "device": self.device,
                "detail": "quotes the retrieved sentences that best match the question"}  # fmt: skip

    def health(self) -> dict[str, Any]:
        return {"ok": True, "detail": "always available"}


def from_config(cfg: Any) -> ExtractiveBackend:
    return ExtractiveBackend()


def probe(cfg: Any) -> tuple[bool, str]:
    return True, "always available (no language model)"
