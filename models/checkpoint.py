"""Checkpoints: weights as tensors only, plus a JSON metadata block.

One ``.safetensors`` file per trained model. The tensors are the module's
``state_dict``; the metadata (safetensors' string header, key ``facecast``)
is JSON with:

    family        the model family ("s2d", "motion3dgan", ...)
    config        the constructor arguments: any checkpoint rebuilds its model
    topology_id   the face topology it drives (or null for topology-free models)
    data          what it was trained on
    metrics       held-out figures recorded at training time
    code_version  facecast's version

Nothing is ever unpickled: safetensors stores raw tensors and a JSON header.
A file that is missing, truncated or not a facecast checkpoint raises
``CheckpointError`` naming the file; a checkpoint for another topology is
refused by ``check_topology`` with both ids in the message.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

META_KEY = "facecast"
FORMAT_VERSION = 1


class CheckpointError(Exception):
    """A checkpoint that cannot be used; the message names the file."""


class TopologyMismatch(CheckpointError):
    """A checkpoint trained for another face topology."""


@dataclass
class CheckpointMeta:
    family: str
    config: dict[str, Any]
    topology_id: str | None
    data: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    code_version: str = ""
    format_version: int = FORMAT_VERSION

    def to_json(self) -> str:
        return json.dumps(self.__dict__, sort_keys=True)


def config_from_dict(cls, d: dict):
    """A config dataclass ``cls`` from its checkpoint JSON (JSON arrays become tuples again)."""
    return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in d.items()})


def code_version() -> str:
    try:
        from importlib.metadata import version

        return version("facecast")
    except ImportError:  # PackageNotFoundError: running from a checkout without pip
        return "unknown"


def save_checkpoint(path: str | Path, state: dict[str, torch.Tensor], meta: CheckpointMeta) -> Path:
    """Write ``state`` (a flat ``state_dict``) and ``meta`` to ``path`` atomically."""
    from safetensors.torch import save_file

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if not meta.code_version:
        meta.code_version = code_version()
    # own copies: modules may share a buffer (one spiral table used by two
    # layers), which safetensors refuses to write twice
    tensors = {k: v.detach().to("cpu").clone().contiguous() for k, v in state.items()}
    tmp = path.with_suffix(path.suffix + ".tmp")
    save_file(tensors, str(tmp), metadata={META_KEY: meta.to_json()})
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)              # as any new file, not owner-only
    tmp.replace(path)
    return path


def read_meta(path: str | Path) -> CheckpointMeta:
    """The metadata of a checkpoint, without loading its tensors."""
    from safetensors import safe_open

    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    try:
        with safe_open(str(path), framework="pt") as fh:
            raw = (fh.metadata() or {}).get(META_KEY)
    except Exception as exc:  # safetensors raises its own types on a bad header
        raise CheckpointError(f"{path}: not a readable checkpoint ({exc})") from exc
    if raw is None:
        raise CheckpointError(f"{path}: a safetensors file without facecast metadata")
    try:
        fields = json.loads(raw)
        meta = CheckpointMeta(**fields)
    except (json.JSONDecodeError, TypeError) as exc:
        raise CheckpointError(f"{path}: malformed facecast metadata ({exc})") from exc
    if meta.format_version != FORMAT_VERSION:
        raise CheckpointError(f"{path}: checkpoint format v{meta.format_version}, "
                              f"this facecast reads v{FORMAT_VERSION}")
    return meta


def load_checkpoint(path: str | Path, family: str | None = None) -> tuple[CheckpointMeta, dict[str, torch.Tensor]]:
    """Metadata and tensors of a checkpoint (CPU tensors)."""
    from safetensors.torch import load_file

    meta = read_meta(path)
    if family is not None and meta.family != family:
        raise CheckpointError(f"{path}: a {meta.family!r} checkpoint, expected {family!r}")
    try:
        state = load_file(str(path), device="cpu")
    except Exception as exc:
        raise CheckpointError(f"{path}: cannot read its tensors ({exc})") from exc
    return meta, state


def check_topology(meta: CheckpointMeta, topology_id: str, path: str | Path = "checkpoint") -> None:
    """Refuse a checkpoint trained for another face topology."""
    if meta.topology_id is not None and meta.topology_id != topology_id:
        raise TopologyMismatch(
            f"{path}: trained for face topology {meta.topology_id}, but the face to drive has "
            f"topology {topology_id}; retrain on that face or load its own checkpoint")
