"""Training and test pairs for S2D-Dec: (neutral, target) meshes with landmarks.

As in the official code, a frame's neutral is the first frame of its own
sequence. Frames are subsampled every ``step`` frames of each sequence
(CoMA-style sequences are highly redundant).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from trainers.data.cache import FaceData


@dataclass
class PairSet:
    """Pairs as tensors. ``target``/``target_lm``: ``[M, N, 3]`` / ``[M, 68, 3]``;
    ``neutral``/``neutral_lm``: one per sequence, ``[S, N, 3]`` / ``[S, 68, 3]``,
    picked by ``seq`` (``int64 [M]``). ``frames``: cache indices ``[M]``."""

    target: torch.Tensor
    target_lm: torch.Tensor
    neutral: torch.Tensor
    neutral_lm: torch.Tensor
    seq: torch.Tensor
    frames: np.ndarray
    labels: np.ndarray          #: label index of each pair
    subjects: np.ndarray        #: subject index of each pair

    def __len__(self) -> int:
        return len(self.frames)

    def batch(self, idx: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """(neutral, neutral_lm, target, target_lm) for pair indices ``idx``."""
        s = self.seq[idx]
        return self.neutral[s], self.neutral_lm[s], self.target[idx], self.target_lm[idx]

    def subset(self, idx: np.ndarray) -> PairSet:
        idx_t = torch.as_tensor(idx)
        return PairSet(self.target[idx_t], self.target_lm[idx_t], self.neutral, self.neutral_lm,
                       self.seq[idx_t], self.frames[idx], self.labels[idx], self.subjects[idx])


def make_pairs(data: FaceData, frames: np.ndarray, step: int = 4) -> PairSet:
    """Pairs for the cache frames ``frames`` (every ``step``-th frame of each sequence)."""
    frames = np.asarray(frames)
    frames = np.sort(frames[np.asarray(data.frame)[frames] % step == 0])
    seq_ids = np.asarray(data.sequence)[frames]
    used, seq_local = np.unique(seq_ids, return_inverse=True)
    starts = np.array([data.sequences[q].start for q in used])
    neutral = np.asarray(data.vertices[starts], dtype=np.float32)
    target = np.asarray(data.vertices[frames], dtype=np.float32)
    t = data.template
    return PairSet(
        target=torch.from_numpy(target),
        target_lm=torch.from_numpy(t.landmark_points(target).astype(np.float32)),
        neutral=torch.from_numpy(neutral),
        neutral_lm=torch.from_numpy(t.landmark_points(neutral).astype(np.float32)),
        seq=torch.from_numpy(seq_local.reshape(-1).astype(np.int64)),
        frames=frames,
        labels=np.asarray(data.label)[frames].astype(np.int64),
        subjects=np.asarray(data.subject)[frames].astype(np.int64),
    )
