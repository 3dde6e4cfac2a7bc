"""``facecast train NAME`` and ``facecast eval NAME``: shared dispatchers.

Each model family adds its own sub-command through an entry point, so this
module imports none of them::

    [project.entry-points."facecast.train"]
    motion = "trainers.motion.cli:register_train"

    [project.entry-points."facecast.eval"]
    motion = "trainers.motion.cli:register_eval"

An entry point names a ``register(subparsers)`` callable that adds one
sub-parser and sets ``func(args) -> exit code`` on it. One that fails to load
is reported by name and left out (as ``runtime.cli`` does for commands).
"""

from __future__ import annotations

import argparse
import sys
from importlib.metadata import entry_points

TRAIN = "facecast.train"
EVAL = "facecast.eval"


def _group(sub: argparse._SubParsersAction, name: str, help_text: str, group: str) -> None:
    parser = sub.add_parser(name, help=help_text)
    inner = parser.add_subparsers(dest=f"{name}_model", metavar="MODEL", required=True)
    for ep in sorted(entry_points(group=group), key=lambda e: e.name):
        try:
            ep.load()(inner)
        except Exception as exc:  # one broken model family leaves the others usable
            print(f"facecast {name}: model {ep.name!r} ({ep.value}) is unavailable: "
                  f"{type(exc).__name__}: {exc}", file=sys.stderr)


def register_train(sub: argparse._SubParsersAction) -> None:
    """``facecast train MODEL ...`` (models from the ``facecast.train`` entry points)."""
    _group(sub, "train", "train a model and write its checkpoint", TRAIN)


def register_eval(sub: argparse._SubParsersAction) -> None:
    """``facecast eval MODEL ...`` (models from the ``facecast.eval`` entry points)."""
    _group(sub, "eval", "evaluate checkpoints (the papers' tables, as JSON)", EVAL)
