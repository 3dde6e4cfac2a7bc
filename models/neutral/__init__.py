"""Neutralization and expression transfer: four methods behind one interface
(``models.neutral.base.Neutralizer``), one file each:

    classical.py      Pan et al., CVPR 2010: normals on the sphere -> expression
                      residue per triangle (RBF regression) -> Poisson reconstruction
    latent_gan.py     Kacem et al. 2021: Chebyshev autoencoder + latent GAN
    pointnet_vae.py   FG 2023: PointNet VAE with an identity discriminator
    s2d.py            the landmark motion to a neutral estimate, decoded by S2D-Dec

Every learned method saves one safetensors checkpoint (``models.checkpoint``)
whose family is ``neutral_<method>``; ``load_neutralizer`` rebuilds any of
them from the file alone.
"""

from __future__ import annotations

from importlib import import_module
from pathlib import Path

from models.checkpoint import CheckpointError, read_meta
from models.neutral.base import MeanFace, Neutralizer, as_batch

#: checkpoint family -> (module, loader function); each loader is ``(path, topology_id) -> Neutralizer``
FAMILIES = {
    "neutral_classical": ("models.neutral.classical", "load_classical"),
    "neutral_latent_gan": ("models.neutral.latent_gan", "load_latent_gan"),
    "neutral_pointnet_vae": ("models.neutral.pointnet_vae", "load_pointnet_vae"),
    "neutral_landmarks": ("models.neutral.s2d", "load_landmark_estimator"),
}


def load_neutralizer(path: str | Path, topology_id: str | None = None):
    """The method a ``neutral_*`` checkpoint holds (a ``CheckpointError`` naming the file otherwise).

    A ``neutral_landmarks`` checkpoint holds the S2D method's landmark
    estimator; it needs S2D-Dec too (``models.neutral.s2d.S2DNeutralizer``)."""
    meta = read_meta(path)
    if meta.family not in FAMILIES:
        raise CheckpointError(f"{path}: a {meta.family!r} checkpoint, not a neutralizer "
                              f"({', '.join(FAMILIES)})")
    module, fn = FAMILIES[meta.family]
    return getattr(import_module(module), fn)(path, topology_id)


def discover(paths: list[str | Path], topology_id: str | None = None, decoder=None, template=None
             ) -> tuple[dict[str, tuple[Neutralizer, Path]], list[str]]:
    """The first loadable checkpoint of every method among ``paths`` (files or
    folders of ``.safetensors``, searched in order).

    The S2D method needs S2D-Dec: pass its ``decoder`` and the ``template``
    to get it from a ``neutral_landmarks`` checkpoint. Returns ``({name:
    (method, path)}, problems)``; a checkpoint that fails to load is one
    problem line naming its file, and the search goes on."""
    from models.neutral.s2d import S2DNeutralizer

    found: dict[str, tuple[Neutralizer, Path]] = {}
    problems: list[str] = []
    files: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            files += sorted(p.glob("*.safetensors"))
        elif p.is_file():
            files.append(p)
        else:
            problems.append(f"{p}: no such file or folder")
    for path in files:
        try:
            if read_meta(path).family not in FAMILIES:
                continue
            method = load_neutralizer(path, topology_id)
        except CheckpointError as exc:
            problems.append(str(exc))
            continue
        if not isinstance(method, Neutralizer):           # the S2D method's landmark estimator
            if decoder is None or template is None:
                continue
            method = S2DNeutralizer(decoder, method, template)
        found.setdefault(method.name, (method, path))
    return found, problems


__all__ = ["FAMILIES", "MeanFace", "Neutralizer", "as_batch", "discover", "load_neutralizer"]
