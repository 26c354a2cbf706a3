"""The conversational verbs of the command line: ``ask`` and ``chat`` (the default verb).

``chat`` on a terminal is an interactive assistant with streamed answers, compact sources,
line editing and a history file; the memory verbs work inside it (``ingest``, ``teach``,
``correct``, ``remember``, ``forget``, ``status``), and ``good`` / ``bad`` / ``score N`` rate
the last answer. With stdin not a terminal it answers one question per line, so scripts can
drive it. Both log the backend choice at start-up and append every interaction to
``data_dir/interactions.jsonl`` (until the feedback store takes them).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import logging.handlers
import os
import shlex
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from myai import cli_verbs
from myai.errors import MyaiError

if TYPE_CHECKING:
    from omegaconf import DictConfig

__all__ = ["InteractionLog", "cmd_ask", "cmd_chat", "open_assistant", "setup_logging"]

log = logging.getLogger("myai")


def setup_logging(cfg: DictConfig) -> None:
    """Logs go to ``logging.file`` (rotated at ``logging.rotate_mb``), warnings also to stderr."""
    root = logging.getLogger("myai")
    if getattr(root, "_myai_configured", False):
        return
    root.setLevel(str(getattr(cfg.logging.level, "value", cfg.logging.level)))
    if cfg.logging.file:
        path = Path(str(cfg.logging.file)).expanduser()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            h: logging.Handler
            if cfg.logging.rotate:
                h = logging.handlers.RotatingFileHandler(
                    path, maxBytes=int(cfg.logging.rotate_mb) << 20, backupCount=3
                )
            else:
                h = logging.FileHandler(path)
            h.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
            root.addHandler(h)
        except OSError as e:
            print(f"warning: cannot write the log file {path}: {e}", file=sys.stderr)
    err = logging.StreamHandler(sys.stderr)
    err.setLevel(logging.DEBUG if cfg.debug else logging.WARNING)
    err.setFormatter(logging.Formatter("%(levelname)s: %(message)s"))
    root.addHandler(err)
    root._myai_configured = True  # type: ignore[attr-defined]


class InteractionLog:
    """An interaction hook appending each record as a JSON line, flushed and fsynced, so an
    acknowledged interaction survives a crash."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path).expanduser()
        self.path.parent.mkdir(parents=True, exist_ok=True)

    def __call__(self, rec: dict[str, Any]) -> None:
        line = json.dumps(rec, default=str, ensure_ascii=False) + "\n"
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(line)
            f.flush()
            os.fsync(f.fileno())


@contextlib.contextmanager
def open_assistant(cfg: DictConfig, *, write: bool) -> Iterator[Any]:
    """The Assistant over the configured store (read-only for ``ask`` when the store exists,
    so several can run beside a writer; in memory when there is none yet)."""
    from myai.assistant import Assistant
    from myai.context import DB_NAME, ContextManager

    path = Path(cfg.context.storage_dir).expanduser()
    exists = cfg.context.persist_to_disk and (path / DB_NAME).is_file()
    if write or not exists:
        cm = (
            ContextManager.from_config(cfg)
            if write
            else ContextManager.from_config(cfg, storage_dir=None)
        )
    else:
        cm = ContextManager.from_config(cfg, readonly=True)
    try:
        hooks: list[Callable[[dict[str, Any]], None]] = [
            InteractionLog(Path(cfg.data_dir).expanduser() / "interactions.jsonl")
        ]
        a = Assistant(cfg, context=cm, hooks=hooks)
        for r in a.backend_reasons:
            log.info("backend: %s", r)
        yield a
    finally:
        cm.close()


def _print_sources(ans: Any, console: Any) -> None:
    if not ans.sources:
        return
    if console is not None:
        from rich.markup import escape

        for s in ans.sources:
            mark = "" if s.get("cited") else " (not cited)"
            console.print(f"  [dim][{s['n']}] {escape(str(s['document_name']))}"
                          f" · score {s['score']:.2f}{mark}[/dim]")  # fmt: skip
        return
    for s in ans.sources:
        print(f"  [{s['n']}] {s['document_name']} (score {s['score']:.2f})")


def _answer(a: Any, question: str, session: str | None, *, stream: bool, console: Any) -> Any:
    """Asks, printing the answer (streamed on a terminal) and its sources; returns the Answer."""
    from myai.assistant import Answer

    ans: Any = None
    if stream:
        for piece in a.ask(question, session_id=session, stream=True):
            if isinstance(piece, Answer):
                ans = piece
            else:
                sys.stdout.write(piece)
                sys.stdout.flush()
        print()
    else:
        ans = a.ask(question, session_id=session)
        print(ans.response)
    _print_sources(ans, console)
    return ans


def cmd_ask(cfg: DictConfig, ns: argparse.Namespace) -> int:
    setup_logging(cfg)
    console = None if ns.json else cli_verbs._console()
    try:  # an empty or oversized question is a usage error (exit 2), found before any loading
        from myai.assistant import check_question

        check_question(ns.question, int(cfg.assistant.max_question_chars))
    except ValueError as e:
        raise cli_verbs._usage(f"ask: {e}") from None
    with open_assistant(cfg, write=False) as a:
        if ns.json:
            ans = a.ask(ns.question)
            cli_verbs._dump(ans.to_dict())
        else:
            ans = _answer(a, ns.question, None, stream=not ns.no_stream, console=console)
            if console is not None:
                console.print(
                    f"[dim]{ans.backend} · {ans.model} · {ans.processing_time_ms:.0f} ms[/dim]"
                )
    return 1 if ans.error else 0


_HELP = """verbs inside the chat:
  ingest PATH...        add files or folders          teach FACT       store a fact
  correct WRONG RIGHT   record a correction           remember [QUERY] list memories
  forget ID             remove a document             status           statistics
  talk TEXT             ask TEXT even if it looks like a verb
  good | bad | score N  rate the last answer          help | quit
anything else is a question."""

_VERBS = {"ingest", "teach", "correct", "remember", "forget", "status", "stats"}


def _history_file(cfg: DictConfig) -> Path:
    return Path(cfg.data_dir).expanduser() / "chat_history"


def _setup_readline(cfg: DictConfig) -> Callable[[], None]:
    try:
        import readline
    except ImportError:  # pragma: no cover - not on this platform
        return lambda: None
    hist = _history_file(cfg)
    with contextlib.suppress(OSError):
        readline.read_history_file(hist)
    readline.set_history_length(1000)

    def save() -> None:
        with contextlib.suppress(OSError):
            hist.parent.mkdir(parents=True, exist_ok=True)
            readline.write_history_file(hist)

    return save


def _feedback(a: Any, words: list[str]) -> str:
    last = a.last_interaction
    if last is None:
        return "nothing to rate yet"
    if words[0] == "score":
        try:
            score = float(words[1])
        except (IndexError, ValueError):
            return "usage: score N (1 to 5)"
        if not 1.0 <= score <= 5.0:
            return "the score must be within 1 to 5"
        kind = "score"
    else:
        kind, score = words[0], (5.0 if words[0] == "good" else 1.0)
    a._emit({"event": "feedback", "feedback_type": kind, "feedback_score": score, **last})
    return f"recorded: {kind} ({score:g}) for the last answer"


def _run_verb(cfg: DictConfig, line: str) -> int:
    from myai.cli import _COMMANDS, _parser, _UsageError

    verb, _, rest = line.partition(" ")
    rest = rest.strip()
    try:
        argv = shlex.split(line)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if argv[0] == "status":
        argv[0] = "stats"
    # Free text after teach / remember is one argument, quoted or not; correct takes
    # "WRONG" "RIGHT" or WRONG => RIGHT.
    if verb in ("teach", "remember") and rest and not rest.startswith(("'", '"', "-")):
        argv = [verb, rest]
    elif verb == "correct" and len(argv) != 3:
        for sep in ("=>", "->", "|"):
            if sep in rest:
                wrong, _, right = rest.partition(sep)
                argv = [verb, wrong.strip(), right.strip()]
                break
    try:
        ns = _parser().parse_args(argv)
        return _COMMANDS[ns.verb](cfg, ns)
    except (_UsageError, MyaiError, OSError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except SystemExit as e:  # --help inside the chat
        return int(e.code or 0)


def cmd_chat(cfg: DictConfig, ns: argparse.Namespace) -> int:
    setup_logging(cfg)
    interactive = sys.stdin.isatty()
    console = cli_verbs._console() if interactive else None
    session = f"cli-{os.getpid()}-{int(time.time())}"
    failed = 0
    with open_assistant(cfg, write=True) as a, cli_verbs.shared_store(a.context):
        save_history = _setup_readline(cfg) if interactive else (lambda: None)
        if interactive:
            b = a.backend
            print(f"myai — {b.name} · {b.model} · {a.context.get_statistics()['total_documents']} "
                  "documents in memory. Type help for the verbs, quit to leave.")  # fmt: skip
        try:
            while True:
                try:
                    line = input("you> " if interactive else "")
                except EOFError:
                    break
                line = line.strip()
                if not line:
                    continue
                words = line.split()
                verb = words[0].lower()
                if verb in ("quit", "exit", "/quit", "/exit"):
                    break
                if verb in ("help", "/help", "?"):
                    print(_HELP)
                    continue
                if (verb in ("good", "bad") and len(words) == 1) or verb == "score":
                    print(_feedback(a, [verb, *words[1:]]))
                    continue
                if verb in _VERBS:
                    _run_verb(cfg, line)
                    continue
                if verb == "talk":
                    line = line[4:].strip()
                    if not line:
                        continue
                try:
                    if interactive:
                        sys.stdout.write("myai> ")
                    ans = _answer(a, line, session, stream=True, console=console)
                    if ans.error:
                        failed += 1
                except (ValueError, TypeError, MyaiError) as e:
                    print(f"error: {e}", file=sys.stderr)
                    failed += 1
                if not interactive:
                    print()
        except KeyboardInterrupt:
            print()
        finally:
            save_history()
    return 1 if failed and not interactive else 0
