"""The ``facecast`` command line.

Sub-commands come from the packages that own them, through the
``facecast.commands`` entry points (``data`` from trainers, ``view`` from
clients, ...), so this module imports none of them. ``facecast bench NAME``
runs the benchmarks registered under ``facecast.benchmarks``.
"""

from __future__ import annotations

import argparse
import sys
from importlib.metadata import entry_points

COMMANDS = "facecast.commands"
BENCHMARKS = "facecast.benchmarks"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="facecast", description="real-time 3D face animation runtime")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    found = sorted(entry_points(group=COMMANDS), key=lambda e: e.name)
    if not found:
        raise SystemExit("facecast: no commands are registered; install the package "
                         "(make demo, or pip install -e .) so its entry points exist")
    for ep in found:
        _register(ep, sub)
    bench = sub.add_parser("bench", help="benchmarks (print JSON)")
    bench_sub = bench.add_subparsers(dest="benchmark", metavar="BENCHMARK", required=True)
    for ep in sorted(entry_points(group=BENCHMARKS), key=lambda e: e.name):
        _register(ep, bench_sub)
    return parser


def _register(ep, sub: argparse._SubParsersAction) -> None:
    """Add one plugin's sub-command; a plugin that fails to load is reported
    (naming it and why) and left out, and every other command still works."""
    try:
        ep.load()(sub)
    except Exception as exc:  # a broken plugin must not take the whole CLI down
        print(f"facecast: command {ep.name!r} ({ep.value}) is unavailable: {type(exc).__name__}: {exc}",
              file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
