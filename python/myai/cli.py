"""The command line: ``python -m myai [VERB] [ARGS...] [key=value ...]``.

Words that look like Hydra overrides (``key=value``, ``+key=value``, ``~key``) are taken out of
the arguments first and applied to the configuration of every verb; the rest is parsed per
verb. Exit status: 0 on success, 2 on a usage or configuration error, 1 on any other failure,
with a one-line message on stderr (a traceback only with ``debug=true``).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import os
import re
import sys
import traceback
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from myai.errors import ConfigError, MyaiError

if TYPE_CHECKING:
    from omegaconf import DictConfig

__all__ = ["main"]

_OVERRIDE = re.compile(r"^(\+{1,2}|~)?[A-Za-z_][\w.@/-]*(=|$)")


def split_overrides(argv: Sequence[str]) -> tuple[list[str], list[str]]:
    """Separates Hydra overrides from the verb's own arguments."""
    args: list[str] = []
    overrides: list[str] = []
    for a in argv:
        bare_tilde = a.startswith("~") and "=" not in a
        if ("=" in a or bare_tilde) and not a.startswith("-") and _OVERRIDE.match(a):
            overrides.append(a)
        else:
            args.append(a)
    return args, overrides


class _UsageError(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> Any:  # argparse would print usage and exit(2) itself
        raise _UsageError(f"{self.prog}: {message}")


def _parser() -> _Parser:
    p = _Parser(
        prog="python -m myai",
        description=(
            "myai: a local personal-AI engine with a million-token memory.\n"
            "Any configuration key can be overridden after the verb: key=value "
            "(e.g. scenario=min_ram context.max_tokens=262144)."
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--cfg",
        choices=["job"],
        help="print the composed configuration and exit",
    )
    sub = p.add_subparsers(dest="verb", metavar="VERB")
    s = sub.add_parser(
        "chat",
        help="the interactive assistant (the default verb); one answer per line when piped",
        description="Talks with your memory. On a terminal: streamed answers with sources, "
        "line editing and history, and the verbs inside (type help). With stdin not a "
        "terminal: one question per line, one answer per question.",
    )
    s = sub.add_parser(
        "ask",
        help="one answer with its sources, then exit",
        description="Answers QUESTION from the memory with the configured backend (auto: "
        "Ollama, a GPU, llama.cpp with the default model, else extractive) and lists the "
        "sources. Exit status 1 if no backend could answer.",
    )
    s.add_argument("question", metavar="QUESTION")
    s.add_argument("--no-stream", action="store_true", help="print the answer when complete")
    s.add_argument("--json", action="store_true", help="machine-readable output")
    s = sub.add_parser(
        "ingest",
        help="add files or folders (txt, md, json, jsonl, csv, pdf, docx, html, code)",
        description=(
            "Adds files and folders (recursively) to the memory. Unchanged files are skipped, "
            "changed ones replaced, and files deleted from an ingested folder removed. Hidden "
            "and binary files are skipped. Exit status 1 if any file failed."
        ),
    )
    s.add_argument("paths", nargs="+", metavar="PATH", help="a file or a folder")
    s.add_argument(
        "--include", action="append", default=[], metavar="GLOB",
        help="only files matching GLOB (repeatable; matched on the name and the relative path)",
    )  # fmt: skip
    s.add_argument(
        "--exclude", action="append", default=[], metavar="GLOB",
        help="leave out files and folders matching GLOB (repeatable)",
    )  # fmt: skip
    s.add_argument(
        "--importance", type=_unit, metavar="X",
        help="importance in [0, 1] of records that do not give their own (default 0.5)",
    )  # fmt: skip
    s.add_argument("--json", action="store_true", help="print the summary as JSON")
    s.add_argument(
        "--watch", action="store_true",
        help="after ingesting, keep the memory in sync with the paths until interrupted",
    )  # fmt: skip
    s = sub.add_parser(
        "teach",
        help="store a fact with high importance",
        description="Stores FACT as a pinned memory of importance 0.75.",
    )
    s.add_argument("fact", metavar="FACT")
    s.add_argument("--json", action="store_true", help="machine-readable output")
    s = sub.add_parser(
        "correct",
        help="record a correction (a high-importance fact)",
        description="Stores a pinned memory of importance 0.95: RIGHT, and that it corrects WRONG.",
    )
    s.add_argument("wrong", metavar="WRONG")
    s.add_argument("right", metavar="RIGHT")
    s.add_argument("--json", action="store_true", help="machine-readable output")
    s = sub.add_parser(
        "remember",
        help="list stored memories / documents matching QUERY",
        description="Searches the memory for QUERY; without QUERY lists every document.",
    )
    s.add_argument("query", nargs="?", metavar="QUERY")
    s.add_argument("--top-k", type=_positive, default=10, metavar="N", help="hits (default 10)")
    s.add_argument("--json", action="store_true", help="machine-readable output")
    s = sub.add_parser(
        "forget",
        help="remove a document or memory",
        description="Removes the document or memory with this ID (or this exact name).",
    )
    s.add_argument("id", metavar="ID")
    s.add_argument("--json", action="store_true", help="machine-readable output")
    s = sub.add_parser("stats", help="context, compression and backend statistics")
    s.add_argument("--json", action="store_true", help="machine-readable output")
    s = sub.add_parser(
        "bench",
        help="measure a scenario's promise: peak RSS, ingest, search, answers, quality",
        description="Ingests a fixed corpus (~200K tokens with ten planted facts) into a fresh "
        "store configured by the scenario, searches and answers the ten questions about the "
        "facts with the scenario's backend, times twelve broad questions answered with exactly "
        "32 tokens (the latency), reads the peak RSS, then scores retrieval on a "
        "small labelled set. --all runs the four scenarios, each in its own process, and "
        "checks the promised ordering.",
    )
    s.add_argument("--all", action="store_true", help="all four scenarios and the ordering")
    s.add_argument(
        "--questions",
        type=_positive,
        default=10,
        metavar="N",
        help="fact questions (10); twice as many broad ones, at most 12",
    )
    s.add_argument("--no-quality", action="store_true", help="skip the labelled-set score")
    s.add_argument("--json", action="store_true", help="machine-readable output")
    s = sub.add_parser(
        "eval",
        help="measure retrieval quality on a labelled set",
        description="eval retrieval PATH: ingests a BEIR-layout folder (corpus.jsonl, "
        "queries.jsonl, qrels/test.tsv) into a fresh in-memory store configured like the "
        "scenario, and prints nDCG@10, recall@10, recall@100 and MRR@10 per search mode.",
    )
    s.add_argument("what", choices=["retrieval"])
    s.add_argument("path", metavar="PATH")
    s.add_argument("--modes", default="bm25,vector,hybrid", help="comma-separated search modes")
    s.add_argument("--max-queries", type=int, default=None, help="score only the first N queries")
    s.add_argument("--json", action="store_true", help="machine-readable output")
    return p


def _unit(v: str) -> float:
    try:
        x = float(v)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {v!r}") from None
    if not 0.0 <= x <= 1.0:
        raise argparse.ArgumentTypeError(f"must be within [0, 1], got {v}")
    return x


def _positive(v: str) -> int:
    try:
        x = int(v)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {v!r}") from None
    if x < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {v}")
    return x


def _cmd_stats(cfg: DictConfig, ns: argparse.Namespace) -> int:
    from pathlib import Path

    from myai import _core
    from myai.context import DB_NAME, ContextManager

    info: dict[str, Any] = {
        "version": _core.__version__,
        "scenario": cfg.scenario_name,
        "data_dir": cfg.data_dir,
        "context": {
            "max_tokens": cfg.context.max_tokens,
            "chunk_size": cfg.context.chunk_size,
            "storage_dir": cfg.context.storage_dir,
        },
    }
    store = Path(cfg.context.storage_dir).expanduser()
    if (store / DB_NAME).is_file():
        with ContextManager.open(store, readonly=True, tokenizer=cfg.context.tokenizer) as cm:
            st = cm.get_statistics()
        info["context"].update({k: v for k, v in st.items() if k != "compression"})
        info["compression"] = st["compression"]
    else:
        info["context"]["total_documents"] = 0
    info["backend"] = _backend_status(cfg)
    if ns.json:
        print(json.dumps(info, indent=2, default=str))
        return 0
    print(f"myai {info['version']} — scenario {info['scenario']}")
    b = info["backend"]
    print(f"  backend             {b['configured']} → {b['chosen'] or 'none'}")
    for name, p in b["probes"].items():
        print(f"    {name:<16}{'yes' if p['ok'] else 'no '}  {p['reason']}")
    print(f"  data_dir            {info['data_dir']}")
    c = info["context"]
    print(f"  storage_dir         {c['storage_dir']}")
    print(f"  documents           {c.get('total_documents', 0)}")
    if c.get("total_documents"):
        print(
            f"  tokens              {c['total_tokens']:,} of {c['max_tokens']:,} "
            f"({100 * c['capacity_used']:.1f}% used)"
        )
        print(
            f"  chunks              {c['total_chunks']:,} (average {c['average_chunk_size']:.0f} tokens)"
        )
        print(f"  on disk / in RAM    {c['storage_size_mb']:.2f} MB / {c['memory_mb']:.2f} MB")
        comp = info["compression"]
        print(
            f"  compression         storage {comp['storage_ratio']:.2f}:1, "
            f"context {comp['context_ratio']:.2f}:1"
        )
        for ct, t in comp.get("by_content_type", {}).items():
            print(
                f"    {ct:<16}{t['documents']:>6} docs  storage {t['storage_ratio']:.2f}:1  "
                f"context {t['context_ratio']:.2f}:1"
            )
    return 0


def _backend_status(cfg: DictConfig) -> dict[str, Any]:
    """What ``auto`` would choose now and why, from the cheap probes (no model is loaded)."""
    from myai.backends import AUTO_ORDER, probe_backend

    name = str(getattr(cfg.backend.name, "value", cfg.backend.name))
    probes = {}
    for cand in AUTO_ORDER if name == "auto" else (name,):
        ok, why = probe_backend(cand, cfg.backend)
        probes[cand] = {"ok": ok, "reason": why}
    chosen = next((n for n, p in probes.items() if p["ok"]), None)
    return {"configured": name, "model": cfg.backend.model, "chosen": chosen, "probes": probes}


def _cmd_bench(cfg: DictConfig, ns: argparse.Namespace) -> int:
    from myai import bench

    if ns.all:
        overrides = split_overrides(sys.argv[1:])[1]
        rows = bench.run_all(overrides, quality=not ns.no_quality)
    else:
        rows = [bench.run_scenario(cfg, questions=ns.questions, quality=not ns.no_quality)]
    checks = bench.check_ordering(rows)
    if ns.json:
        print(json.dumps(rows[0] if not ns.all else {"rows": rows, "checks": checks}, indent=2))
        return 0
    print(bench.format_table(rows))
    r0 = rows[0]
    print(f"corpus: {r0['corpus']}, {r0['tokens']:,} tokens; backend: "
          + ", ".join(sorted({r['backend'] for r in rows}))
          + (f"; quality set: {r0['quality_set']}" if "quality_set" in r0 else ""))  # fmt: skip
    for what, ok in checks:
        print(f"  {'yes' if ok else 'NO '}  {what}")
    return 0


def _cmd_eval(cfg: DictConfig, ns: argparse.Namespace) -> int:
    from myai.context import ContextManager
    from myai.retrieval import evaluate, labelled_set_store, load_beir

    data = load_beir(ns.path)
    probe = ContextManager.from_config(cfg, storage_dir=None)
    modes = [m.strip() for m in ns.modes.split(",") if m.strip()]
    if probe._vectors is None:
        modes = [m for m in modes if m == "bm25"] or ["bm25"]
    results = evaluate(
        data,
        lambda: labelled_set_store(cfg),
        modes=modes,
        max_queries=ns.max_queries,
    )
    rows = [
        {"set": data.name, "scenario": cfg.scenario_name, "mode": r.mode, **r.scores,
         "ingest_s": r.ingest_s, "query_ms_p50": r.query_ms_p50, "queries": r.queries}
        for r in results
    ]  # fmt: skip
    if ns.json:
        print(json.dumps(rows, indent=2))
        return 0
    print(f"{'set':<10}{'scenario':<17}{'mode':<8}{'nDCG@10':>9}{'R@10':>8}{'R@100':>8}"
          f"{'MRR@10':>8}{'ingest s':>10}{'query ms':>10}")  # fmt: skip
    for r in rows:
        print(f"{r['set']:<10}{r['scenario']:<17}{r['mode']:<8}{r['ndcg@10']:>9.4f}"
              f"{r['recall@10']:>8.4f}{r['recall@100']:>8.4f}{r['mrr@10']:>8.4f}"
              f"{r['ingest_s']:>10.2f}{r['query_ms_p50']:>10.2f}")  # fmt: skip
    return 0


def _lazy(module: str, name: str) -> Callable[[DictConfig, argparse.Namespace], int]:
    """A verb whose module is imported when it runs (each verb imports only what it needs)."""

    def run(cfg: DictConfig, ns: argparse.Namespace) -> int:
        cmd: Callable[[DictConfig, argparse.Namespace], int]
        cmd = getattr(importlib.import_module(module), name)
        return cmd(cfg, ns)

    run.__name__ = run.__qualname__ = name
    return run


_COMMANDS: dict[str, Callable[[DictConfig, argparse.Namespace], int]] = {
    "stats": _cmd_stats,
    "chat": _lazy("myai.cli_chat", "cmd_chat"),
    "ask": _lazy("myai.cli_chat", "cmd_ask"),
    "eval": _cmd_eval,
    "bench": _cmd_bench,
    "ingest": _lazy("myai.cli_verbs", "cmd_ingest"),
    "teach": _lazy("myai.cli_verbs", "cmd_teach"),
    "correct": _lazy("myai.cli_verbs", "cmd_correct"),
    "remember": _lazy("myai.cli_verbs", "cmd_remember"),
    "forget": _lazy("myai.cli_verbs", "cmd_forget"),
}


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args, overrides = split_overrides(argv)
    debug = any(o in ("debug=true", "debug=True") for o in overrides)
    try:
        parser = _parser()
        ns = parser.parse_args(args)
        from myai.config import load_config

        cfg = load_config(overrides)
        if ns.cfg == "job":
            from omegaconf import OmegaConf

            print(OmegaConf.to_yaml(cfg), end="")
            return 0
        if ns.verb is None:  # the default verb
            ns = parser.parse_args(["chat"])
        return _COMMANDS[ns.verb](cfg, ns)
    except (_UsageError, ConfigError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # the reader went away (| head): nothing left to say
        with contextlib.suppress(OSError):
            sys.stdout = open(os.devnull, "w")  # noqa: SIM115
        return 0
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except (MyaiError, OSError, ValueError) as e:
        if debug:
            traceback.print_exc()
        print(f"error: {e}", file=sys.stderr)
        return 1
