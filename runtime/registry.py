"""The model registry: finds checkpoints, loads them safely, checks topology
ids, and reports what is loaded and what is not (and why).

Where it looks: each ``--models`` path in order (a folder of
``.safetensors`` files, or one file), then the shipped checkpoints
(``models/checkpoints``). The first loadable checkpoint of each family the
runtime uses wins; one that fails is reported with its file and the reason,
and the next candidate of the family is tried. Failing means: missing,
corrupt, another topology, or refused by the load-time checks
(``models.checkpoint``: metadata of the wrong type, NaN or Inf weights, a
config or an index table that does not fit its model), each a
``CheckpointError``. Nothing is unpickled: checkpoints are safetensors files.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch

from models import motion3dgan, neutral, s2d
from models.checkpoint import CheckpointError, read_meta
from models.face import FaceTemplate
from models.paths import CHECKPOINTS

# Loaders of the families the runtime drives: (path, template) -> model.
LOADERS: dict[str, Callable[[Path, FaceTemplate], Any]] = {
    s2d.FAMILY: lambda path, template: s2d.load_s2d(path, template.topology_id)[0],
    motion3dgan.FAMILY: lambda path, template: motion3dgan.load_motion3dgan(path),
    # the neutralizers (``neutral`` and ``transfer`` streams); "neutral_landmarks" is the S2D method's estimator
    **{family: (lambda path, template: neutral.load_neutralizer(path, template.topology_id))
       for family in neutral.FAMILIES},
}


@dataclass
class Loaded:
    family: str
    path: Path
    model: Any
    topology_id: str | None = None


class ModelUnavailable(Exception):
    """A command needs a model family that did not load; the message says why."""


@dataclass
class Registry:
    """The loaded models for one face template."""

    template: FaceTemplate
    loaded: dict[str, Loaded] = field(default_factory=dict)
    #: {"path", "family" (None when unreadable), "error"}
    failures: list[dict] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)    #: (path, family) not used by the runtime

    @staticmethod
    def discover(template: FaceTemplate, paths: list[str | Path] = (), shipped: bool = True) -> "Registry":
        """Load the first good checkpoint of every family in ``LOADERS``."""
        reg = Registry(template)
        candidates: list[Path] = []
        for p in paths:
            p = Path(p)
            if p.is_dir():
                candidates += sorted(p.glob("*.safetensors"))
            elif p.is_file():
                candidates.append(p)
            else:
                reg._fail(p, None, f"{p}: no such file or folder")
        if shipped:
            candidates += sorted(CHECKPOINTS.glob("*.safetensors"))
        for path in candidates:
            reg._consider(path)
        return reg

    def _consider(self, path: Path) -> None:
        try:
            meta = read_meta(path)
        except CheckpointError as exc:
            self._fail(path, None, str(exc))
            return
        if meta.family not in LOADERS:
            self.skipped.append((str(path), meta.family))
            return
        if meta.family in self.loaded:
            return
        try:
            with torch.no_grad():
                model = LOADERS[meta.family](path, self.template)
        except CheckpointError as exc:               # includes TopologyMismatch
            self._fail(path, meta.family, str(exc))
            return
        except Exception as exc:                    # a checkpoint that does not fit its model
            self._fail(path, meta.family, f"{path}: cannot build a {meta.family} model from it "
                                          f"({type(exc).__name__}: {exc})")
            return
        self.loaded[meta.family] = Loaded(meta.family, path, model, meta.topology_id)

    def _fail(self, path: Path, family: str | None, error: str) -> None:
        self.failures.append({"path": str(path), "family": family, "error": error})

    def get(self, family: str) -> Any:
        """The loaded model of ``family``, or ``ModelUnavailable`` naming what failed."""
        if family in self.loaded:
            return self.loaded[family].model
        why = [f["error"] for f in self.failures if f["family"] in (family, None)]
        detail = "; ".join(why[-3:]) if why else "no checkpoint of this family was found"
        raise ModelUnavailable(f"no {family} model is loaded ({detail})")

    def report(self) -> dict:
        """What is loaded, what failed and why (the ``models`` control command)."""
        return {
            "template": {"name": self.template.name, "topology": self.template.topology_id,
                         "vertices": self.template.n_vertices},
            "loaded": {f: {"path": str(m.path), "topology": m.topology_id} for f, m in self.loaded.items()},
            "missing": [f for f in LOADERS if f not in self.loaded],
            "failures": list(self.failures),
            "not_used": [{"path": p, "family": f} for p, f in self.skipped],
        }

    def summary(self) -> str:
        """One line per family and one per failure, for the console."""
        lines = [f"{f}: {m.path}" for f, m in self.loaded.items()]
        lines += [f"{f}: NOT LOADED" for f in LOADERS if f not in self.loaded]
        lines += [f"failed: {f['error']}" for f in self.failures]
        return "\n".join(lines)
