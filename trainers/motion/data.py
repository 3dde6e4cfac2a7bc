"""Neutral-to-apex landmark motions of a data folder, as SRVF curves.

Every sub-sequence of the foundation's Motion3DGAN split
(``trainers.data.splits.motion3dgan``: onsets, and offsets played backwards,
the first of each subject and label held out for test) becomes one row:
its landmarks (``FaceData.landmarks``, iBUG-68, metres) normalised per frame,
resampled to ``steps`` equal arc-length steps (``models.srvf.landmark_curve``)
and encoded as an SRVF on the unit sphere with its length.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from models import srvf
from models.constants import N_LANDMARKS
from trainers.data.cache import FaceData
from trainers.data.splits import SubSequence, motion3dgan


@dataclass
class MotionCurves:
    """Motions as rows; tensors are float32 (int64 for indices)."""

    q: torch.Tensor          #: [N, T, K] SRVFs on the unit sphere
    length: torch.Tensor     #: [N] curve lengths (normalised landmark units)
    curve: torch.Tensor      #: [N, T + 1, K] the normalised, resampled curves
    neutral: torch.Tensor    #: [N, 68, 3] each motion's first frame, metres
    apex: torch.Tensor       #: [N, 68, 3] each motion's last frame, metres
    label: torch.Tensor      #: [N] label index
    subject: torch.Tensor    #: [N] subject index

    def __len__(self) -> int:
        return self.q.shape[0]

    @property
    def displacement(self) -> torch.Tensor:
        """``[N, T, K]``: frames 1..T minus the start, in the normalised frame."""
        return self.curve[:, 1:] - self.curve[:, :1]

    def subset(self, index: torch.Tensor | np.ndarray) -> MotionCurves:
        idx = torch.as_tensor(index, dtype=torch.int64)
        return MotionCurves(*(getattr(self, f)[idx] for f in ("q", "length", "curve", "neutral", "apex", "label",
                                                               "subject")))


@dataclass
class MotionData:
    """The train and test motions of a data folder and what they came from."""

    train: MotionCurves
    test: MotionCurves
    labels: list[str]
    subjects: list[str]
    fps: float
    description: dict        #: for checkpoints' ``data`` block

    @property
    def steps(self) -> int:
        return self.train.q.shape[1]


def build_curves(landmarks: np.ndarray, subs: list[SubSequence], steps: int = srvf.FRAMES) -> MotionCurves:
    """Encode sub-sequences.

    Args:
        landmarks: ``[F, 68, 3]`` every frame's landmarks (metres), cache order.
        subs: the sub-sequences (cache frame indices, neutral first).
        steps: arc-length steps per motion.
    """
    curves, qs, lengths = [], [], []
    for sub in subs:
        points = torch.as_tensor(np.asarray(landmarks[sub.frames]), dtype=torch.float64)
        c = srvf.landmark_curve(points, steps)
        enc = srvf.srvf(c)
        curves.append(c)
        qs.append(enc.q)
        lengths.append(enc.length)
    return MotionCurves(
        q=torch.stack(qs).float(),
        length=torch.stack(lengths).float(),
        curve=torch.stack(curves).float(),
        neutral=torch.as_tensor(np.stack([landmarks[s.frames[0]] for s in subs]), dtype=torch.float32),
        apex=torch.as_tensor(np.stack([landmarks[s.frames[-1]] for s in subs]), dtype=torch.float32),
        label=torch.tensor([s.label for s in subs], dtype=torch.int64),
        subject=torch.tensor([s.subject for s in subs], dtype=torch.int64),
    )


def all_landmarks(data: FaceData) -> np.ndarray:
    """``[F, 68, 3]`` float32: every frame's landmarks, sequence by sequence."""
    out = np.empty((data.n_frames, N_LANDMARKS, 3), dtype=np.float32)
    for seq in data.sequences:
        out[seq.frames] = data.landmarks(seq.frames)
    return out


def load_motion_data(root: str | Path, per_direction: int = 4, seed: int = 0,
                     steps: int = srvf.FRAMES) -> MotionData:
    """The Motion3DGAN split of a data folder as SRVF curves (``DataError`` for a bad folder)."""
    data = FaceData.open(root)
    split = motion3dgan(data, per_direction=per_direction, seed=seed)
    if not split.train or not split.test:
        raise ValueError(f"{root}: the Motion3DGAN split is empty (train {len(split.train)}, test {len(split.test)})")
    landmarks = all_landmarks(data)
    description = {
        "path": str(Path(root)),
        "source": data.meta.get("source", {}),
        "topology_id": data.template.topology_id,
        "subjects": len(data.subjects),
        "labels": list(data.labels),
        "frames": data.n_frames,
        "fps": data.fps,
        "split": {"name": "motion3dgan", "per_direction": per_direction, "seed": seed,
                  "train": len(split.train), "test": len(split.test)},
        "landmarks": "ibug68",
        "representation": f"per-frame centred, unit-Frobenius landmarks; {steps} arc-length steps; SRVF",
    }
    return MotionData(train=build_curves(landmarks, split.train, steps),
                      test=build_curves(landmarks, split.test, steps),
                      labels=list(data.labels), subjects=list(data.subjects), fps=data.fps,
                      description=description)
