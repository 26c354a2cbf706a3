"""The command line: ``python -m myai [VERB] [ARGS...] [key=value ...]``.

Words that look like Hydra overrides (``key=value``, ``+key=value``, ``~key``) are taken out of
the arguments first and applied to the configuration of every verb; the rest is parsed per
verb. Exit status: 0 on success, 2 on a usage or configuration error, 1 on any other failure,
with a one-line message on stderr (a traceback only with ``debug=true``).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import traceback
from collections.abc import Callable, Sequence
from typing import Any

from omegaconf import DictConfig, OmegaConf

from myai.errors import ConfigError, MyaiError

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
    s = sub.add_parser("stats", help="context, compression and backend statistics")
    s.add_argument("--json", action="store_true", help="machine-readable output")
    return p


def _cmd_stats(cfg: DictConfig, ns: argparse.Namespace) -> int:
    from myai import _core

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
    if ns.json:
        print(json.dumps(info, indent=2))
    else:
        print(f"myai {info['version']} — scenario {info['scenario']}")
        print(f"  data_dir      {info['data_dir']}")
        for k, v in info["context"].items():
            print(f"  context.{k:<14}{v}")
    return 0


_COMMANDS: dict[str, Callable[[DictConfig, argparse.Namespace], int]] = {
    "stats": _cmd_stats,
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
            print(OmegaConf.to_yaml(cfg), end="")
            return 0
        if ns.verb is None:
            parser.print_help()
            return 0
        return _COMMANDS[ns.verb](cfg, ns)
    except (_UsageError, ConfigError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except (MyaiError, OSError, ValueError) as e:
        if debug:
            traceback.print_exc()
        print(f"error: {e}", file=sys.stderr)
        return 1
