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
        ep.load()(sub)
    bench = sub.add_parser("bench", help="benchmarks (print JSON)")
    bench_sub = bench.add_subparsers(dest="benchmark", metavar="BENCHMARK", required=True)
    for ep in sorted(entry_points(group=BENCHMARKS), key=lambda e: e.name):
        ep.load()(bench_sub)
    return parser


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
