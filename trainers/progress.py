"""Progress bars (with ETA) and the one-line summary that ends long work."""

from __future__ import annotations

import sys
from typing import Iterable, Iterator, TypeVar

from tqdm import tqdm

T = TypeVar("T")


def progress(items: Iterable[T], total: int | None = None, desc: str = "", unit: str = "it",
             enabled: bool = True) -> Iterator[T]:
    """Iterate with a progress bar on stderr (elapsed, rate and ETA)."""
    return iter(tqdm(items, total=total, desc=desc, unit=unit, disable=not enabled,
                     file=sys.stderr, dynamic_ncols=True, leave=False))


def summary(line: str) -> None:
    """Print the one-line summary of a finished job."""
    print(line, flush=True)


def human_bytes(n: float) -> str:
    """``1234567`` -> ``"1.2 MB"`` (powers of 1024)."""
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if n < 1024 or unit == "TB":
            return f"{int(n)} B" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    raise AssertionError("unreachable")
