"""The one training loop every trainer uses.

A trainer is a frozen config dataclass, a loss, and a call to ``train``:

    history = train(step, batches, epochs=cfg.epochs, desc="s2d",
                    evaluate=lambda epoch: {"val_mm": ...}, time_limit_s=cfg.time_limit_s)

``step(batch) -> dict[str, float]`` does one optimisation step (its own
optimiser(s): one for a decoder, two for a GAN) and returns the scalars to
log. ``batches(epoch)`` yields the batches of an epoch. The loop owns the
rest: seeding, the progress bar with its ETA, per-epoch averages, optional
evaluation, the time budget, the history, and the one-line summary.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from trainers.progress import summary


@dataclass
class History:
    """Per-epoch means of the step scalars and the evaluation results."""

    epochs: list[dict[str, float]] = field(default_factory=list)
    seconds: float = 0.0
    stopped_early: bool = False

    def last(self, key: str) -> float:
        for row in reversed(self.epochs):
            if key in row:
                return row[key]
        raise KeyError(key)

    def series(self, key: str) -> list[float]:
        return [row[key] for row in self.epochs if key in row]


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (call before building a model)."""
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def train(step: Callable[[Any], dict[str, float]], batches: Callable[[int], Iterable[Any]], epochs: int,
          *, desc: str, steps_per_epoch: int | None = None,
          evaluate: Callable[[int], dict[str, float]] | None = None, eval_every: int = 1,
          time_limit_s: float | None = None, show_progress: bool = True,
          on_epoch: Callable[[int, History], None] | None = None) -> History:
    """Run ``epochs`` epochs of ``step`` over ``batches(epoch)``.

    Args:
        step: one optimisation step on a batch; returns scalars to average per epoch.
        batches: the batches of an epoch.
        epochs: how many epochs at most.
        desc: the progress bar's name.
        steps_per_epoch: batches per epoch, for the bar's ETA (if known).
        evaluate: called after every ``eval_every`` epochs (and the last); its
            dict joins that epoch's row.
        time_limit_s: stop after the epoch that crosses this wall time.
        on_epoch: called with the epoch index and the history (checkpointing).

    Returns:
        The history; ``stopped_early`` when the time budget ended it.
    """
    import sys

    from tqdm import tqdm

    history = History()
    start = time.perf_counter()
    # with a time budget the bar runs in seconds, so its ETA is the budget's
    # end (or the last epoch's, if that comes first); else in steps
    timed = time_limit_s is not None
    total = (int(math.ceil(time_limit_s)) if timed
             else (epochs * steps_per_epoch if steps_per_epoch else None))
    fmt = ("{l_bar}{bar}| {n:.0f}/{total:.0f} s of budget [{elapsed}<{remaining}{postfix}]" if timed
           else None)
    bar = tqdm(total=total, desc=desc, unit="s" if timed else "step", disable=not show_progress,
               file=sys.stderr, dynamic_ncols=True, leave=False, bar_format=fmt)
    shown = 0.0
    try:
        for epoch in range(epochs):
            sums: dict[str, float] = {}
            count = 0
            for batch in batches(epoch):
                scalars = step(batch)
                for k, v in scalars.items():
                    sums[k] = sums.get(k, 0.0) + float(v)
                count += 1
                if timed:
                    now = min(time.perf_counter() - start, float(total))
                    bar.update(now - shown)
                    shown = now
                else:
                    bar.update(1)
                if scalars:
                    first = next(iter(scalars))
                    bar.set_postfix({first: f"{scalars[first]:.4g}", "epoch": epoch + 1})
            row = {k: v / max(count, 1) for k, v in sums.items()}
            row["epoch"] = epoch + 1
            row["seconds"] = time.perf_counter() - start
            out_of_time = time_limit_s is not None and row["seconds"] >= time_limit_s
            last = epoch == epochs - 1 or out_of_time
            if evaluate is not None and ((epoch + 1) % eval_every == 0 or last):
                row.update(evaluate(epoch))
            history.epochs.append(row)
            if on_epoch is not None:
                on_epoch(epoch, history)
            if out_of_time and epoch != epochs - 1:
                history.stopped_early = True
                break
    finally:
        bar.close()
    history.seconds = time.perf_counter() - start
    final = history.epochs[-1] if history.epochs else {}
    figures = ", ".join(f"{k} {v:.4g}" for k, v in final.items() if k not in ("epoch", "seconds")
                      and isinstance(v, float) and math.isfinite(v))
    summary(f"{desc}: {len(history.epochs)} epoch(s) in {history.seconds:.0f} s"
            + (" (time budget reached)" if history.stopped_early else "") + (f"; {figures}" if figures else ""))
    return history
