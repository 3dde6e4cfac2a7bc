"""Benchmarks behind ``facecast bench NAME``: each measures real work and
prints one JSON object (also written to ``--json FILE``)."""

from __future__ import annotations

import json
import platform
import time
from pathlib import Path
from typing import Callable


def machine() -> dict:
    """What the figures were measured on."""
    import os

    return {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
            "python": platform.python_version()}


def best_of(fn: Callable[[], object], repeats: int = 3) -> float:
    """Fastest wall time (seconds) of ``repeats`` calls."""
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def emit(result: dict, path: str | None) -> None:
    text = json.dumps(result, indent=1)
    print(text)
    if path:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_text(text + "\n")
