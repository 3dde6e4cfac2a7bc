"""Motion3DGAN: expression dynamics of the 68 landmarks as SRVFs on the sphere.

After Otberdout et al., "Sparse to Dense Dynamic 3D Facial Expression
Generation" (CVPR 2022). A motion is a neutral-to-apex curve of normalised
landmark frames (``models.srvf``): its SRVF ``q [T, K]`` on the unit sphere
(``T = 30`` steps, ``K = 68 * 3``) and its length. The generator maps noise
(128) and a one-hot expression label to a tangent vector at a reference
point ``p`` of the sphere (the Karcher mean of the training SRVFs, or one
training sample as the official code), squashed into a ball of radius just
under pi, where ``exp_p`` is one-to-one; ``exp_p`` puts it on the sphere. The critic
judges ``log_p`` of real and generated SRVFs (WGAN-GP; the losses live
in ``trainers.motion.gan``).

The official generator decodes the 204 x 30 SRVF as an image: a fully
connected layer of 73 M weights and 2D (de)convolutions, about 80 M
parameters. Ours treats it as what it is, 30 steps of 204 coordinates: a
fully connected layer to 8 steps of 128 channels and 1D convolutions over
time up to 30 steps (0.34 M parameters).

The curve length is part of the model: per label, the mean and standard
deviation of the training lengths' logarithm and their range are buffers,
and a sample's length is drawn from that log-normal, clipped to the range
(the official code decodes every sample with a hand-set 0.2).

Runtime API (pure functions on a loaded model):

    model = load_motion3dgan(path)
    motion = sample(model, "high_smile", k=4, seed=0)     # Motion: q [4, 30, 204], length [4]
    frames = apply_motion(motion, neutral_landmarks)      # [4, 31, 68, 3] metres, neutral first
    clip = retime(frames[0], fps=60, onset_s=0.5, hold_s=1.0, offset_s=0.6)   # [F, 68, 3]
    mixed = blend(motion_a, motion_b, 0.5)                # geodesic interpolation of two motions

``apply_motion`` (what "apply a motion to a new identity" means here): the
neutral landmark set is normalised (centred, unit Frobenius norm), the
motion is decoded from it in that normalised frame (``a(0)`` = the neutral,
``a(s) = a(0) + length * integral |q| q``), and each decoded frame is mapped
back to metres by the scale and translation that best put its
``ANCHOR_LANDMARKS`` (nose bridge and eye corners, which expressions do not
move) onto the neutral's. That recovers, per frame, the centre and Frobenius
scale the normalisation removed: the jaw opening moves the landmarks'
centroid and norm, and undoing every frame with the neutral's own centre and
scale would move the brows when the mouth opens.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F

from models import srvf
from models.checkpoint import CheckpointError, building, config_from_dict, load_checkpoint
from models.constants import N_LANDMARKS
from models.paths import CHECKPOINTS

FAMILY = "motion3dgan"

#: the shipped checkpoint for the default SynthFace data
DEFAULT_CHECKPOINT = CHECKPOINTS / "motion3dgan_synthface.safetensors"
#: the dtype of every tensor of a Motion3DGAN checkpoint
DTYPES = {"*": torch.float32}

#: landmarks that expressions leave in place (iBUG-68: nose bridge 27-30, eye corners 36, 39, 42, 45)
ANCHOR_LANDMARKS = (27, 28, 29, 30, 36, 39, 42, 45)

#: the landmark scheme of every motion model
LANDMARK_SCHEME = "ibug68"

#: leaky ReLU slope of the generator and critic
LEAK = 0.2

EASINGS = ("linear", "cosine", "smoothstep")


@dataclass(frozen=True)
class Motion3DGANConfig:
    """Constructor arguments; a checkpoint stores them so it rebuilds its model."""

    labels: tuple[str, ...]            #: expression labels, in one-hot order
    steps: int = srvf.FRAMES           #: SRVF steps (frames after the neutral start)
    landmarks: int = N_LANDMARKS
    noise: int = 128                   #: noise dimension
    channels: int = 128                #: generator channels
    critic_channels: int = 96          #: critic channels
    base_steps: int = 8                #: generator's coarsest temporal resolution

    @property
    def dim(self) -> int:
        return self.landmarks * 3

    @property
    def n_labels(self) -> int:
        return len(self.labels)

    def to_dict(self) -> dict:
        return {**asdict(self), "labels": list(self.labels)}

    @staticmethod
    def from_dict(d: dict, path: str | Path = "checkpoint") -> Motion3DGANConfig:
        return config_from_dict(Motion3DGANConfig, d, path)


@dataclass
class Motion:
    """A batch of motions: SRVFs on the unit sphere, their lengths and labels."""

    q: torch.Tensor          #: [B, T, K] unit norm under <., .> = sum / T
    length: torch.Tensor     #: [B] curve length in normalised landmark units
    label: torch.Tensor      #: [B] int64 label index
    tangent: torch.Tensor | None = field(default=None, repr=False)  #: [B, T, K] log_p(q) when generated

    def __len__(self) -> int:
        return self.q.shape[0]


def _with_label(x: torch.Tensor, onehot: torch.Tensor) -> torch.Tensor:
    """``[B, C, T] x [B, L] -> [B, C + L, T]``: the label as extra constant channels (ExprGAN's concat)."""
    return torch.cat([x, onehot[:, :, None].expand(-1, -1, x.shape[-1])], dim=1)


class Generator(nn.Module):
    """``(z [B, noise], onehot [B, L]) -> [B, T, K]``: a raw tangent vector.

    A fully connected layer to ``channels x base_steps``, then two
    (linear upsampling, conv1d) stages to ``T`` steps and a conv1d to the
    ``K`` coordinates of each step; the label joins every layer's input.
    """

    def __init__(self, cfg: Motion3DGANConfig) -> None:
        super().__init__()
        c, lab = cfg.channels, cfg.n_labels
        self.steps, self.base, self.channels = cfg.steps, cfg.base_steps, c
        self.fc = nn.Linear(cfg.noise + lab, c * cfg.base_steps)
        self.conv1 = nn.Conv1d(c + lab, c, 3, padding=1)
        self.conv2 = nn.Conv1d(c + lab, c, 3, padding=1)
        self.out = nn.Conv1d(c + lab, cfg.dim, 3, padding=1)

    def forward(self, z: torch.Tensor, onehot: torch.Tensor) -> torch.Tensor:
        x = F.leaky_relu(self.fc(torch.cat([z, onehot], dim=1)), LEAK).view(-1, self.channels, self.base)
        x = F.interpolate(x, size=(self.steps + 1) // 2, mode="linear", align_corners=True)
        x = F.leaky_relu(self.conv1(_with_label(x, onehot)), LEAK)
        x = F.interpolate(x, size=self.steps, mode="linear", align_corners=True)
        x = F.leaky_relu(self.conv2(_with_label(x, onehot)), LEAK)
        return self.out(_with_label(x, onehot)).transpose(1, 2)


class Critic(nn.Module):
    """``(v [B, T, K], onehot [B, L]) -> [B]``: the WGAN critic on tangent vectors ``log_p(q)``.

    Three conv1d layers over the steps (the last two with stride 2) and a
    linear read-out; the label joins every layer's input. No normalisation
    layers (the gradient penalty is per sample).
    """

    def __init__(self, cfg: Motion3DGANConfig) -> None:
        super().__init__()
        c, lab = cfg.critic_channels, cfg.n_labels
        self.conv1 = nn.Conv1d(cfg.dim + lab, c, 3, padding=1)
        self.conv2 = nn.Conv1d(c + lab, c, 4, stride=2, padding=1)
        self.conv3 = nn.Conv1d(c + lab, c, 4, stride=2, padding=1)
        self.fc = nn.Linear(c * (cfg.steps // 4) + lab, 1)

    def forward(self, v: torch.Tensor, onehot: torch.Tensor) -> torch.Tensor:
        x = v.transpose(1, 2)
        x = F.leaky_relu(self.conv1(_with_label(x, onehot)), LEAK)
        x = F.leaky_relu(self.conv2(_with_label(x, onehot)), LEAK)
        x = F.leaky_relu(self.conv3(_with_label(x, onehot)), LEAK)
        return self.fc(torch.cat([x.flatten(1), onehot], dim=1))[:, 0]


class Motion3DGAN(nn.Module):
    """The generator with its reference point and per-label length statistics.

    ``forward(z, label, u)`` is deterministic given its inputs: noise ``z [B,
    noise]``, labels ``[B]`` (int64) and ``u [B]`` standard normal draws for
    the lengths. Buffers: ``reference [T, K]`` (on the sphere),
    ``log_length_mean``, ``log_length_std``, ``length_min``, ``length_max``
    (each ``[L]``).
    """

    def __init__(self, cfg: Motion3DGANConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.generator = Generator(cfg)
        n = cfg.n_labels
        self.register_buffer("reference", srvf.normalise(torch.ones(cfg.steps, cfg.dim)))
        self.register_buffer("log_length_mean", torch.zeros(n))
        self.register_buffer("log_length_std", torch.zeros(n))
        self.register_buffer("length_min", torch.zeros(n))
        self.register_buffer("length_max", torch.zeros(n))

    def onehot(self, label: torch.Tensor) -> torch.Tensor:
        """``[B] int64 -> [B, L]``."""
        return F.one_hot(label, self.cfg.n_labels).to(self.reference.dtype)

    def tangent(self, z: torch.Tensor, label: torch.Tensor) -> torch.Tensor:
        """``[B, noise], [B] -> [B, T, K]``: the generator's output made tangent at the
        reference and squashed into a ball of radius just under pi (``srvf.into_ball``),
        where ``exp_p`` is one-to-one: an unbounded output would wrap around the sphere."""
        return srvf.into_ball(srvf.project_tangent(self.reference, self.generator(z, self.onehot(label))))

    def lengths(self, label: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
        """``[B], [B] -> [B]``: ``exp(mean + std u)`` of the label, clipped to its training range."""
        raw = torch.exp(self.log_length_mean[label] + self.log_length_std[label] * u)
        return torch.minimum(torch.maximum(raw, self.length_min[label]), self.length_max[label])

    def forward(self, z: torch.Tensor, label: torch.Tensor, u: torch.Tensor) -> Motion:
        v = self.tangent(z, label)
        return Motion(q=srvf.exp_map(self.reference, v), length=self.lengths(label, u), label=label, tangent=v)

    def label_index(self, label: str | int) -> int:
        """A label's index; an unknown label is a ``ValueError`` naming the known ones."""
        if isinstance(label, str):
            if label not in self.cfg.labels:
                raise ValueError(f"unknown expression label {label!r}; this model knows: {', '.join(self.cfg.labels)}")
            return self.cfg.labels.index(label)
        if not 0 <= int(label) < self.cfg.n_labels:
            raise ValueError(f"label index {label} out of range 0..{self.cfg.n_labels - 1}")
        return int(label)


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def check_config(path: str | Path, cfg: Motion3DGANConfig) -> None:
    """Refuse a config the runtime cannot drive: the model gathers no stored index table,
    but its labels index the per-label length buffers and ``ANCHOR_LANDMARKS`` index its
    landmarks, so the labels must be distinct and non-empty and the landmarks iBUG-68."""
    if not cfg.labels or len(set(cfg.labels)) != len(cfg.labels) or not all(cfg.labels):
        raise CheckpointError(f"{path}: expression labels {list(cfg.labels)} must be distinct non-empty names")
    if cfg.landmarks != N_LANDMARKS:
        raise CheckpointError(f"{path}: a model of {cfg.landmarks} landmarks; motions drive the {N_LANDMARKS} "
                              f"of {LANDMARK_SCHEME} (anchors {list(ANCHOR_LANDMARKS)})")
    sizes = {"steps": cfg.steps, "noise": cfg.noise, "channels": cfg.channels,
             "critic_channels": cfg.critic_channels, "base_steps": cfg.base_steps}
    if min(sizes.values()) < 1:
        raise CheckpointError(f"{path}: config sizes must be positive, got {sizes}")


def load_motion3dgan(path: str | Path = DEFAULT_CHECKPOINT) -> Motion3DGAN:
    """A Motion3DGAN from its checkpoint (eval mode); a bad file is a ``CheckpointError`` naming it."""
    meta, state = load_checkpoint(path, family=FAMILY, dtypes=DTYPES)
    cfg = Motion3DGANConfig.from_dict(meta.config, path)
    check_config(path, cfg)
    with building(path, "Motion3DGAN"):
        model = Motion3DGAN(cfg)
        model.load_state_dict(state)
    return model.eval()


@torch.no_grad()
def sample(model: Motion3DGAN, label: str | int, k: int = 1, seed: int | None = None) -> Motion:
    """``k`` motions of one expression label (noise from ``seed``, fresh if ``None``)."""
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    index = model.label_index(label)
    gen = torch.Generator().manual_seed(seed) if seed is not None else None
    z = torch.randn(k, model.cfg.noise, generator=gen)
    u = torch.randn(k, generator=gen)
    return model(z, torch.full((k,), index, dtype=torch.int64), u)


def blend(a: Motion, b: Motion, tau: float | torch.Tensor) -> Motion:
    """The motion ``tau`` of the way from ``a`` to ``b``: geodesic on the sphere, linear in length.

    ``tau`` is a float or ``[B]``; the label is ``a``'s below one half, ``b``'s above.
    """
    t = torch.as_tensor(tau, dtype=a.q.dtype)
    q = srvf.geodesic(a.q, b.q, t)
    length = (1 - t) * a.length + t * b.length
    label = torch.where(t < 0.5, a.label, b.label)
    return Motion(q=q, length=length, label=label)


def to_metric(points: torch.Tensor, neutral: torch.Tensor,
              anchors: tuple[int, ...] = ANCHOR_LANDMARKS) -> torch.Tensor:
    """Normalised landmark frames back to metres, anchored on a neutral.

    Args:
        points: ``[..., P, 3]`` normalised frames (any centre and scale).
        neutral: ``[P, 3]`` the neutral landmarks in metres.
        anchors: landmarks expressions do not move.

    Returns:
        ``[..., P, 3]``: each frame scaled and translated (no rotation) so that
        its anchors fit the neutral's in least squares.
    """
    index = list(anchors)
    a = points[..., index, :]
    b = neutral[index, :]
    a_mean, b_mean = a.mean(dim=-2, keepdim=True), b.mean(dim=-2, keepdim=True)
    ac, bc = a - a_mean, b - b_mean
    scale = (ac * bc).sum(dim=(-2, -1)) / torch.clamp_min((ac * ac).sum(dim=(-2, -1)), srvf.EPS_CURVE)
    return (points - a_mean) * scale[..., None, None] + b_mean


def apply_motion(motion: Motion, neutral: torch.Tensor) -> torch.Tensor:
    """Landmark trajectories of ``motion`` on a neutral landmark set, in metres.

    Args:
        motion: ``B`` motions.
        neutral: ``[68, 3]`` neutral landmarks in metres (iBUG-68 order), any identity.

    Returns:
        ``[B, T + 1, 68, 3]`` metres: frame 0 is the neutral, frame ``T`` the
        apex, equally spaced along the motion's path (see the module's note).
    """
    neutral = torch.as_tensor(neutral, dtype=motion.q.dtype)
    start = srvf.normalise_landmarks(neutral).points.reshape(-1)
    curve = srvf.curve_from_srvf(motion.q, motion.length, start)
    frames = curve.reshape(*curve.shape[:-1], -1, 3)
    return to_metric(frames, neutral)


def envelope(times: torch.Tensor, onset_s: float, hold_s: float = 0.0, offset_s: float | None = None,
             ease: str = "cosine") -> torch.Tensor:
    """``[F] -> [F]``: ``progress_at`` of each time (seconds), float64."""
    t = torch.as_tensor(times, dtype=torch.float64).reshape(-1)
    return torch.tensor([progress_at(x, onset_s, hold_s, offset_s, ease) for x in t.tolist()],
                        dtype=torch.float64)


def progress_at(t: float, onset_s: float, hold_s: float = 0.0, offset_s: float | None = None,
                ease: str = "cosine") -> float:
    """Progress along a neutral-to-apex motion at time ``t`` (seconds).

    0 (neutral) at ``t <= 0``, rising to 1 (apex) over ``onset_s``, held for
    ``hold_s``, back to 0 over ``offset_s`` (``onset_s`` if ``None``; with 0
    the motion stays at its apex), then 0. ``ease`` shapes each ramp:
    ``linear``, ``cosine`` (``(1 - cos(pi x)) / 2``) or ``smoothstep``
    (``3x^2 - 2x^3``). Plain floats: the runtime calls it per stream per tick.
    """
    if ease not in EASINGS:
        raise ValueError(f"unknown easing {ease!r}; use one of {', '.join(EASINGS)}")
    offset_s = onset_s if offset_s is None else offset_s
    if onset_s < 0 or hold_s < 0 or offset_s < 0:
        raise ValueError("onset, hold and offset durations must be >= 0")
    if t < 0:
        return 0.0
    up = 1.0 if onset_s == 0 else min(t / onset_s, 1.0)
    down = 1.0 if offset_s == 0 else 1.0 - min(max((t - onset_s - hold_s) / offset_s, 0.0), 1.0)
    x = min(up, down)
    if ease == "cosine":
        return 0.5 - 0.5 * math.cos(math.pi * x)
    if ease == "smoothstep":
        return x * x * (3 - 2 * x)
    return x


def at_progress(trajectory: torch.Tensor, progress: torch.Tensor) -> torch.Tensor:
    """Frames at given progress along a keyframed motion.

    Args:
        trajectory: ``[..., T + 1, P, 3]`` keyframes, neutral first, apex last,
            equally spaced along the motion's path.
        progress: ``[F]`` in ``[0, 1]``.

    Returns:
        ``[..., F, P, 3]`` by linear interpolation between keyframes.
    """
    steps = trajectory.shape[-3] - 1
    pos = torch.as_tensor(progress, dtype=torch.float64).clamp(0, 1) * steps
    lo = pos.floor().long().clamp(max=steps - 1)
    w = (pos - lo).to(trajectory.dtype)[:, None, None]
    a = trajectory.index_select(-3, lo)
    b = trajectory.index_select(-3, lo + 1)
    return a + w * (b - a)


def retime(trajectory: torch.Tensor, fps: float, onset_s: float, hold_s: float = 0.0,
           offset_s: float | None = None, ease: str = "cosine") -> torch.Tensor:
    """A neutral -> apex -> hold -> neutral clip at any frame rate and duration.

    Args:
        trajectory: ``[..., T + 1, P, 3]`` a motion's keyframes (``apply_motion``).
        fps: output frame rate.
        onset_s, hold_s, offset_s, ease: as ``envelope``.

    Returns:
        ``[..., F, P, 3]`` with ``F = round((onset + hold + offset) * fps) + 1``
        frames, the first and last neutral (the apex when ``offset_s = 0``).
    """
    if fps <= 0:
        raise ValueError(f"fps must be > 0, got {fps}")
    offset = onset_s if offset_s is None else offset_s
    n = int(round((onset_s + hold_s + offset) * fps)) + 1
    times = torch.arange(n, dtype=torch.float64) / fps
    return at_progress(trajectory, envelope(times, onset_s, hold_s, offset, ease))
