"""The command line (being built)."""

from __future__ import annotations


def main(argv: list[str] | None = None) -> int:
    print("myai: command line under construction")
    return 0
