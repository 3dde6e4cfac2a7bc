"""The face model: SynthFace's template, landmarks, regions, identity and
expression spaces, and the CoMA expression labels.

Entry points:
    synthface_template()  the built-in mask as a ``FaceTemplate``
    load_template(...)    a user's template (e.g. the CoMA/FLAME head)
    SynthFace(template)   the morphable model on any template
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


__all__ = [
    "ARKIT_NAMES", "IDENTITY_NAMES", "N_EXPRESSION", "N_IDENTITY", "REGIONS", "SYNTHFACE",
    "ZERO_SHAPES", "FaceBatch", "FaceTemplate", "LandmarkEmbedding", "SynthFace",
    "load_template", "population_identity", "sample_identities", "synthface", "synthface_template",
]
