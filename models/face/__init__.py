"""The face model: SynthFace's template, landmarks, regions, identity and
expression spaces, and the CoMA expression labels.

Entry points:
    synthface_template()  the built-in mask as a ``FaceTemplate``
    load_template(...)    a user's template (e.g. the CoMA/FLAME head)
    SynthFace(template)   the morphable model on any template
    synthface_v2()        SynthFace v2 on its own template (calibrated expressions)
    face_model(version)   SynthFace v1 or v2 on its own template
"""

from __future__ import annotations

from functools import lru_cache

from models.face.expression import ARKIT_NAMES, N_EXPRESSION, ZERO_SHAPES
from models.face.identity import N_IDENTITY, NAMES as IDENTITY_NAMES, population_identity, sample_identities
from models.face.landmarks import LandmarkEmbedding
from models.face.model import FaceBatch, SynthFace
from models.face.regions import REGIONS
from models.face.template import build_template
from models.face.topology import FaceTemplate, load_template

#: name of the built-in template
SYNTHFACE = "synthface"


@lru_cache(maxsize=1)
def synthface_template() -> FaceTemplate:
    """SynthFace's own face mask (built by code; about 30 ms)."""
    mesh = build_template()
    return FaceTemplate(
        name=SYNTHFACE,
        vertices=mesh.vertices,
        faces=mesh.faces,
        landmarks=LandmarkEmbedding.from_vertices(mesh.landmark_vertices, mesh.faces),
    )


@lru_cache(maxsize=1)
def synthface() -> SynthFace:
    """The SynthFace model on its own template."""
    return SynthFace(synthface_template())


@lru_cache(maxsize=1)
def synthface_v2():
    """SynthFace v2 on SynthFace's template (same topology as v1), from the
    shipped calibration (about 1 s to build)."""
    from models.face.model_v2 import SynthFaceV2

    return SynthFaceV2(synthface_template())


#: the SynthFace versions ``face_model`` knows
FACE_VERSIONS = (1, 2)


def face_model(version: int = 1):
    """SynthFace ``version`` (1 or 2) on its own template, as a ``FaceModel``."""
    if version == 1:
        return synthface()
    if version == 2:
        return synthface_v2()
    raise ValueError(f"unknown SynthFace version {version!r}; known: {', '.join(map(str, FACE_VERSIONS))}")


__all__ = [
    "ARKIT_NAMES", "FACE_VERSIONS", "IDENTITY_NAMES", "N_EXPRESSION", "N_IDENTITY", "REGIONS", "SYNTHFACE",
    "ZERO_SHAPES", "FaceBatch", "FaceTemplate", "LandmarkEmbedding", "SynthFace",
    "face_model", "load_template", "population_identity", "sample_identities", "synthface", "synthface_template",
    "synthface_v2",
]
