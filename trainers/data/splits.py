"""The splits the papers use, as frame indices into a data folder's cache.

- ``identity_kfold``: subjects in ``k`` folds (CoMA / S2D: 4 folds of 3);
  test on one fold's subjects, train on the others.
- ``expression_kfold``: the same over labels.
- ``interpolation``: CoMA's interpolation experiment, 10 of every 100
  frames (counted over the whole cache in storage order) to test.
- ``motion3dgan``: neutral-to-apex sub-sequences of every sequence (its
  onset, and its offset played backwards), several per sequence with varied
  ends; the first sub-sequence of each subject and label is held out for
  test. As in Motion3DGAN's own list, sub-sequences of one sequence overlap,
  so this split tests generalisation over performances, not identities.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from trainers.data.cache import FaceData

#: a frame is at the apex when its landmark motion is at least this share of the peak
APEX_SHARE = 0.9
#: ... and still neutral below this share
NEUTRAL_SHARE = 0.1


@dataclass(frozen=True)
class Split:
    """Frame indices (int64) into the cache."""

    name: str
    train: np.ndarray
    test: np.ndarray


def _by_group(groups: np.ndarray, n_groups: int, k: int, fold: int, what: str, name: str) -> Split:
    if not 2 <= k <= n_groups:
        raise ValueError(f"{what} k-fold needs 2 <= k <= {n_groups} {what}s, got k={k}")
    if not 0 <= fold < k:
        raise ValueError(f"fold must be in 0..{k - 1}, got {fold}")
    held = np.array_split(np.arange(n_groups), k)[fold]
    test = np.isin(groups, held)
    return Split(name=f"{name}-{fold}of{k}", train=np.flatnonzero(~test), test=np.flatnonzero(test))


def identity_kfold(data: FaceData, k: int = 4, fold: int = 0) -> Split:
    """Hold out the subjects of fold ``fold`` (of ``k``)."""
    return _by_group(np.asarray(data.subject), len(data.subjects), k, fold, "subject", "identity")


def expression_kfold(data: FaceData, k: int = 4, fold: int = 0) -> Split:
    """Hold out the labels of fold ``fold`` (of ``k``)."""
    return _by_group(np.asarray(data.label), len(data.labels), k, fold, "label", "expression")


def interpolation(data: FaceData, every: int = 100, held: int = 10) -> Split:
    """CoMA's interpolation split: the last ``held`` of every ``every`` frames to test."""
    idx = np.arange(data.n_frames)
    test = (idx % every) >= every - held
    return Split(name="interpolation", train=idx[~test], test=idx[test])


@dataclass(frozen=True)
class SubSequence:
    """Frames (cache indices, neutral first, apex last) of one neutral-to-apex motion."""

    sequence: int
    subject: int
    label: int
    frames: np.ndarray
    backwards: bool           #: taken from the offset, played in reverse


@dataclass(frozen=True)
class MotionSplit:
    train: list[SubSequence]
    test: list[SubSequence]


def apex_phases(motion: np.ndarray) -> tuple[int, int, int, int]:
    """Phase marks of a sequence from its per-frame motion ``[T]`` (distance to
    the first frame): (last neutral frame before the onset, first apex frame,
    last apex frame, first neutral frame after the offset)."""
    peak = motion.max()
    if peak <= 0:
        raise ValueError("a sequence without motion has no apex")
    apex = np.flatnonzero(motion >= APEX_SHARE * peak)
    first, last = int(apex[0]), int(apex[-1])
    quiet = motion <= NEUTRAL_SHARE * peak
    before = np.flatnonzero(quiet[:first])
    after = np.flatnonzero(quiet[last:])
    lead = int(before[-1]) if len(before) else 0
    tail = last + int(after[0]) if len(after) else len(motion) - 1
    return lead, first, last, tail


def motion3dgan(data: FaceData, per_direction: int = 4, seed: int = 0) -> MotionSplit:
    """Neutral-to-apex sub-sequences; the first of each subject and label to test."""
    train: list[SubSequence] = []
    test: list[SubSequence] = []
    seen: set[tuple[int, int]] = set()
    for q, seq in enumerate(data.sequences):
        lm = data.landmarks(seq.frames)
        motion = np.linalg.norm(lm - lm[0], axis=-1).mean(axis=-1)
        lead, first, last, tail = apex_phases(motion)
        rng = np.random.default_rng([seed, q])
        hold = max(last - first, 1)
        subs = []
        for _ in range(per_direction):
            s = int(rng.integers(0, lead + 1))
            e = int(rng.integers(first, first + hold // 2 + 1))
            subs.append(SubSequence(q, seq.subject, seq.label, seq.start + np.arange(s, e + 1), False))
        for _ in range(per_direction):
            s = int(rng.integers(tail, seq.length))
            e = int(rng.integers(last - hold // 2, last + 1))
            subs.append(SubSequence(q, seq.subject, seq.label, seq.start + np.arange(s, e - 1, -1), True))
        key = (seq.subject, seq.label)
        if key not in seen:
            seen.add(key)
            test.append(subs[0])
            subs = subs[1:]
        train.extend(subs)
    return MotionSplit(train=train, test=test)
