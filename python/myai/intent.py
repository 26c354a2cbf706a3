"""Intent detection for the Assistant: what a message is, so it can be routed (a greeting needs
no retrieval, a correction is stored, feedback is recorded) and reported in the ``intent``
field. Rules over the words of the message: cheap (microseconds), predictable, and tested."""

from __future__ import annotations

import re

__all__ = ["INTENTS", "detect_intent"]

INTENTS = (
    "greeting",
    "farewell",
    "thanks",
    "feedback",
    "correction",
    "command",
    "technical_question",
    "question",
    "statement",
)

_GREETING = re.compile(
    r"^(hi|hello|hey|hiya|howdy|greetings|good (morning|afternoon|evening|day)|yo)\b[\s!.,]*"
    r"(there|myai|assistant|friend|all|everyone)?[\s!.,]*$",
    re.I,
)
_FAREWELL = re.compile(
    r"^(bye|goodbye|see you|see ya|good night|farewell|cheers)\b[\s!.,\w]*$", re.I
)
_THANKS = re.compile(r"^(thanks|thank you|thx|ty|cheers|much appreciated)\b[\s!.,\w]{0,30}$", re.I)
_FEEDBACK = re.compile(
    r"^(good|great|perfect|excellent|nice|bad|wrong|terrible|useless|not helpful|helpful|"
    r"correct|incorrect|that('s| is| was) (right|wrong|correct|incorrect|helpful|useless|great|bad))"
    r"\b[\s!.,]*(answer|job|response|one)?[\s!.,]*$",
    re.I,
)
_CORRECTION = re.compile(
    r"^(no[,.!]?\s+(it'?s|it is|the|that|actually)|actually[,\s]|correction\s*[:,]|"
    r"that'?s (not right|wrong|incorrect)[,.:;!]?\s+\S|you'?re wrong|wrong[,.:;!]\s+\S|"
    r"not quite[,.:;!]?\s+\S|the (correct|right) answer is)",
    re.I,
)
_COMMAND = re.compile(
    r"^(/\w+|(please\s+)?(ingest|teach|remember|forget|list|show|delete|remove|add|save|"
    r"summari[sz]e|translate|write|generate|create|make|open|run|status|stats|help)\b)",
    re.I,
)
_WH = re.compile(
    r"^(what|who|whom|whose|when|where|why|which|how|is|are|was|were|do|does|did|can|could|"
    r"should|would|will|shall|may|might|has|have|had|tell me|explain|describe|define)\b",
    re.I,
)
_TECH = re.compile(
    r"\b(source code|codebase|code snippet|function|method|class|api|error|exception|traceback|bug|compile|python|rust|java|"
    r"javascript|sql|database|server|config|configuration|install|command|cli|http|json|yaml|"
    r"regex|docker|linux|git|stack ?trace|segfault|library|module|package|import|variable|"
    r"endpoint|query|algorithm|thread|memory leak|kernel|gpu|cpu)\b|[(){};=<>]|`|\w+\.\w+\(",
    re.I,
)


def detect_intent(message: str) -> str:
    """One of :data:`INTENTS` for ``message``."""
    m = " ".join(message.split())
    if not m:
        return "statement"
    if _GREETING.match(m):
        return "greeting"
    if _THANKS.match(m):
        return "thanks"
    if _FAREWELL.match(m):
        return "farewell"
    if _CORRECTION.match(m):
        return "correction"
    if _FEEDBACK.match(m):
        return "feedback"
    question = m.endswith("?") or bool(_WH.match(m))
    if _COMMAND.match(m) and not m.endswith("?"):
        return "command"
    if question:
        return "technical_question" if _TECH.search(m) else "question"
    return "statement"
