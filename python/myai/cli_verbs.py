"""The memory verbs of the command line: ingest, teach, correct, remember, forget.

Each takes the composed configuration and the parsed arguments and returns the exit status.
Output is rich on a terminal and plain text when piped; ``--json`` prints one JSON document.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from myai.errors import MyaiError

if TYPE_CHECKING:
    from omegaconf import DictConfig

__all__ = [
    "cmd_correct",
    "cmd_forget",
    "cmd_ingest",
    "cmd_remember",
    "cmd_teach",
    "shared_store",
]


def _tty() -> bool:
    return sys.stdout.isatty()


def _console() -> Any:
    """A rich console on a terminal, else None (plain output)."""
    if not _tty():
        return None
    try:
        from rich.console import Console
    except ImportError:
        return None
    return Console()


_SHARED: list[Any] = []


@contextlib.contextmanager
def shared_store(cm: Any) -> Iterator[None]:
    """Inside this block every verb works on ``cm`` (the chat's open store) instead of opening
    the configured one, whose writer lock the chat holds."""
    _SHARED.append(cm)
    try:
        yield
    finally:
        _SHARED.pop()


@contextlib.contextmanager
def _store(cfg: DictConfig, *, write: bool) -> Iterator[Any]:
    """The configured store, closed (saved, lock released) on the way out. Read-only use of
    a store that does not exist yet gives an empty in-memory one."""
    from myai.context import DB_NAME, ContextManager

    if _SHARED:
        yield _SHARED[-1]
        return

    path = Path(cfg.context.storage_dir).expanduser()
    if not write and cfg.context.persist_to_disk and (path / DB_NAME).is_file():
        cm = ContextManager.open(path, readonly=True, tokenizer=cfg.context.tokenizer)
    elif not write:
        cm = ContextManager(storage_dir=None, tokenizer=cfg.context.tokenizer)
    else:
        cm = ContextManager.from_config(cfg)
    try:
        yield cm
    finally:
        cm.close()


def _dump(obj: Any) -> None:
    print(json.dumps(obj, indent=2, default=str))


# ---------------------------------------------------------------------------- ingest


def _mb(n: int) -> str:
    return f"{n / 1e6:.1f} MB"


def cmd_ingest(cfg: DictConfig, ns: argparse.Namespace) -> int:
    from myai.loaders import IngestProgress, ingest_paths

    console = None if ns.json else _console()
    bar: Any = None
    task: Any = None

    def plain(p: IngestProgress) -> None:
        print(f"[{p.files_done}/{p.files_total}] {p.status:<9} {p.path}", flush=True)

    def fancy(p: IngestProgress) -> None:
        rate = p.tokens_added / p.elapsed_s if p.elapsed_s > 0 else 0.0
        bar.update(
            task,
            completed=p.bytes_done,
            total=max(p.bytes_total, 1),
            files=f"{p.files_done}/{p.files_total} files",
            rate=f"{rate:,.0f} tok/s",
        )

    callback: Any = None if ns.json else plain
    with _store(cfg, write=True) as cm:
        if console is not None:
            from rich.progress import (
                BarColumn,
                DownloadColumn,
                Progress,
                TextColumn,
                TimeRemainingColumn,
            )

            bar = Progress(
                TextColumn("ingest"),
                BarColumn(),
                TextColumn("{task.fields[files]}"),
                DownloadColumn(),
                TextColumn("{task.fields[rate]}"),
                TimeRemainingColumn(),
                console=console,
                transient=True,
            )
            task = bar.add_task("ingest", total=None, files="", rate="")
            callback = fancy
            with bar:
                summary = ingest_paths(
                    cm, ns.paths, ns.include, ns.exclude, ns.importance, progress=callback
                )
        else:
            summary = ingest_paths(
                cm, ns.paths, ns.include, ns.exclude, ns.importance, progress=callback
            )
        if getattr(ns, "watch", False):
            _report(summary, ns, console)
            return _watch(cm, ns)
    return _report(summary, ns, console)


def _report(summary: dict[str, Any], ns: argparse.Namespace, console: Any) -> int:
    if ns.json:
        _dump(summary)
    else:
        _print_summary(summary, console)
    if summary["failed"]:
        n = len(summary["failed"])
        first = summary["failed"][0]
        print(
            f"error: {n} file{'s' if n > 1 else ''} failed (first: {first['path']}: "
            f"{first['reason']})",
            file=sys.stderr,
        )
        return 1
    return 0


def _watch(cm: Any, ns: argparse.Namespace) -> int:
    """Keeps the memory in sync with ``ns.paths``: every batch of file changes re-runs the
    incremental ingest (unchanged files skipped, changed ones replaced, deleted ones removed).
    Ends on Ctrl-C or SIGTERM with status 0, the store saved."""
    import signal
    import threading

    import watchfiles

    from myai.loaders import ingest_paths

    stop = threading.Event()

    def on_term(signum: int, frame: Any) -> None:
        stop.set()

    old = signal.signal(signal.SIGTERM, on_term)
    roots = [p for p in ns.paths if Path(p).exists()]
    print(f"watching {', '.join(roots)} (Ctrl-C to stop)", flush=True)
    try:
        for changes in watchfiles.watch(*roots, stop_event=stop, debounce=300, step=50,
                                        rust_timeout=500, yield_on_timeout=False):  # fmt: skip
            s = ingest_paths(cm, ns.paths, ns.include, ns.exclude, ns.importance)
            cm.save()
            done = {k: s[k] for k in ("files_added", "files_replaced", "files_removed") if s.get(k)}
            line = ", ".join(f"{v} {k.removeprefix('files_')}" for k, v in done.items())
            failed = "; ".join(f"{f['path']}: {f['reason']}" for f in s["failed"])
            print(f"sync: {len(changes)} change(s): {line or 'nothing to do'}"
                  + (f"; failed: {failed}" if failed else ""), flush=True)  # fmt: skip
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, old)
    print("stopped watching", flush=True)
    return 0


def _print_summary(s: dict[str, Any], console: Any) -> None:
    rows = [
        ("files added", f"{s['files_added']}"),
        ("files replaced", f"{s['files_replaced']}"),
        ("files unchanged", f"{s['files_unchanged']}"),
        ("files removed", f"{s['files_removed']}"),
        ("files skipped", f"{len(s['skipped'])}"),
        ("files failed", f"{len(s['failed'])}"),
        ("documents added", f"{s['documents_added']}"),
        ("tokens added", f"{s['tokens_added']:,}"),
        ("duplicates skipped", f"{s['duplicates_skipped']:,} chunks"),
        (
            "compression",
            f"context {s['compression_ratio']:.2f}:1, storage {s['storage_ratio']:.2f}:1",
        ),
        ("read", f"{_mb(s['bytes'])} in {s['seconds']:.2f} s"),
    ]
    if s["evicted"]:
        rows.append(("evicted", f"{s['evicted']} documents (capacity)"))
    if console is not None:
        from rich.table import Table

        t = Table(title="ingest summary", show_header=False)
        t.add_column(style="bold")
        t.add_column(justify="right")
        for k, v in rows:
            t.add_row(k, v)
        console.print(t)
        from rich.markup import escape

        for f in s["skipped"]:
            console.print(f"[yellow]skipped[/] {escape(f['path'])}: {escape(f['reason'])}")
        for f in s["failed"]:
            console.print(f"[red]failed[/]  {escape(f['path'])}: {escape(f['reason'])}")
        return
    print("ingest summary")
    for k, v in rows:
        print(f"  {k:<20}{v}")
    for f in s["skipped"]:
        print(f"skipped {f['path']}: {f['reason']}")
    for f in s["failed"]:
        print(f"failed  {f['path']}: {f['reason']}")


# ---------------------------------------------------------------------------- teach / correct


def _memory_name(kind: str, text: str) -> str:
    from myai import _core

    return f"{kind}:{_core.hash64(_core.normalize(text).strip()):016x}"


def _store_memory(
    cfg: DictConfig, ns: argparse.Namespace, kind: str, text: str, meta: dict[str, Any], imp: float
) -> int:
    if not text.strip():
        raise _usage(f"{kind}: the text is empty")
    meta = {"kind": kind, "created_by": "cli", **meta, "at": time.time()}
    with _store(cfg, write=True) as cm:
        r = cm.add_document(
            text, _memory_name(kind, text), meta, "text", importance=imp, pinned=True
        )
    out = {
        "document_id": r["document_id"],
        "document_name": r["document_name"],
        "kind": kind,
        "importance": imp,
        "tokens_added": r["tokens_added"],
        "unchanged": r["unchanged"],
    }
    if ns.json:
        _dump(out)
    else:
        what = "already known" if r["unchanged"] else "stored"
        shown = meta.get("right", text.strip())
        if "wrong" in meta:
            shown = f"{shown} (instead of: {meta['wrong']})"
        print(f"{kind} {what} (id {r['document_id']}, importance {imp}): {shown}")
    return 0


def _usage(msg: str) -> Exception:
    from myai.errors import ConfigError

    return ConfigError(msg)  # exit 2 like any usage error


def cmd_teach(cfg: DictConfig, ns: argparse.Namespace) -> int:
    from myai.context import IMPORTANCE_TAUGHT

    return _store_memory(cfg, ns, "taught", ns.fact, {}, IMPORTANCE_TAUGHT)


def cmd_correct(cfg: DictConfig, ns: argparse.Namespace) -> int:
    from myai.context import IMPORTANCE_CORRECTION

    wrong, right = ns.wrong.strip(), ns.right.strip()
    if not wrong or not right:
        raise _usage("correct: WRONG and RIGHT must both be given")
    text = f"Correction: {right}\nThis corrects the earlier, wrong statement: {wrong}\n"
    return _store_memory(
        cfg, ns, "correction", text, {"wrong": wrong, "right": right}, IMPORTANCE_CORRECTION
    )


# ---------------------------------------------------------------------------- remember / forget


def _short(text: str, n: int = 160) -> str:
    t = " ".join(text.split())
    return t if len(t) <= n else t[: n - 1] + "…"


def cmd_remember(cfg: DictConfig, ns: argparse.Namespace) -> int:
    console = None if ns.json else _console()
    with _store(cfg, write=False) as cm:
        if ns.query:
            hits = cm.search_context(ns.query, top_k=ns.top_k)
            items = [
                {
                    "document_id": h["document_id"],
                    "document_name": h["document_name"],
                    "score": h["score"],
                    "text": h["text"],
                    "metadata": h.get("metadata", {}),
                }
                for h in hits
            ]
        else:
            items = [
                {
                    "document_id": d["document_id"],
                    "document_name": d["document_name"],
                    "content_type": d["content_type"],
                    "importance": d["importance"],
                    "pinned": d["pinned"],
                    "tokens": d["tokens"],
                    "metadata": d["metadata"],
                }
                for d in cm.list_documents()
            ]
    if ns.json:
        _dump({"query": ns.query, "results": items})
        return 0
    if not items:
        print("nothing found" if ns.query else "the memory is empty")
        return 0
    if console is not None:
        from rich.markup import escape
        from rich.table import Table

        for it in items:  # names and texts are data, not rich markup
            it["document_name"] = escape(it["document_name"])
            if "text" in it:
                it["text"] = escape(it["text"])
        t = Table(title=f"memories matching {ns.query!r}" if ns.query else "memory")
        t.add_column("id", justify="right")
        t.add_column("name")
        if ns.query:
            t.add_column("score", justify="right")
            t.add_column("text")
            for it in items:
                t.add_row(
                    str(it["document_id"]), it["document_name"], f"{it['score']:.2f}",
                    _short(it["text"]),
                )  # fmt: skip
        else:
            t.add_column("type")
            t.add_column("importance", justify="right")
            t.add_column("tokens", justify="right")
            for it in items:
                t.add_row(
                    str(it["document_id"]), it["document_name"], it["content_type"],
                    f"{it['importance']:.2f}", f"{it['tokens']:,}",
                )  # fmt: skip
        console.print(t)
        return 0
    for it in items:
        if ns.query:
            print(f"[{it['document_id']}] {it['document_name']} ({it['score']:.2f})")
            print(f"    {_short(it['text'])}")
        else:
            print(
                f"[{it['document_id']}] {it['document_name']} ({it['content_type']}, "
                f"importance {it['importance']:.2f}, {it['tokens']:,} tokens)"
            )
    return 0


def cmd_forget(cfg: DictConfig, ns: argparse.Namespace) -> int:
    key = ns.id.strip()
    with _store(cfg, write=True) as cm:
        docs = cm.list_documents()
        if key.isdigit():
            match = [d for d in docs if d["document_id"] == int(key)]
        else:
            match = [d for d in docs if d["document_name"] == key]
        if not match:
            raise MyaiError(f"no document or memory with id {key!r} (see: python -m myai remember)")
        d = match[0]
        cm.remove_document(d["document_id"])
    if ns.json:
        _dump(
            {"document_id": d["document_id"], "document_name": d["document_name"], "removed": True}
        )
    else:
        print(f"forgot [{d['document_id']}] {d['document_name']}")
    return 0
