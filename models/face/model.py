"""SynthFace: the morphable face, evaluated in batches.

A mesh from identity ``beta [B, 35]`` and ARKit weights ``w [B, 52]``:

1. neutral:  ``V0 = T + sum_k beta_k D_k``           (identity fields, linear)
2. expression: ``E = J(beta) . (sum_j w_j E_j + sum_k s_k(w) S_k)``  (blendshapes and
   the nonlinear wrinkle/bulge/corrective terms of ``secondary.py``, pushed through the
   Jacobian ``J = I + sum_k beta_k dD_k/dp`` of the identity map, so a
   blendshape follows the identity's own proportions: a wider mouth gets a
   wider smile, bigger eyes a longer blink)
3. jaw: ``V = hinge rotation of (V0 + E)`` by ``w_jawOpen * JAW_OPEN_ANGLE *
   jaw_weight`` about the identity's own jaw-joint axis.

Step 2 makes the expression bilinear in (identity, weights) and step 3 makes
it non-linear, so the same weights on two identities give different
displacements: no single linear basis reproduces the data.

All bases are computed once per template from the fields in
``identity.py`` and ``expression.py``; evaluation is matrix products and a
vectorised rotation, chunked to bound memory.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

import numpy as np

from models.face.anchors import Anchors
from models.face.base import check_batch
from models.face.expression import (
    INDEX, JAW_HINGE, JAW_OPEN_ANGLE, N_EXPRESSION, expression_fields, jaw_weight,
)
from models.face.identity import NAMES as IDENTITY_NAMES
from models.face.identity import N_IDENTITY, identity_fields, population_identity, sample_identities
from models.face.regions import region_labels
from models.face.secondary import N_SECONDARY, secondary_fields, secondary_response
from models.face.topology import FaceTemplate
from models.geometry.normals import vertex_normals
from models.geometry.rotation import rotate_about_axis

#: finite-difference step (normalised face units) for the identity Jacobian
JACOBIAN_STEP = 1e-4
#: identities, and meshes, evaluated per chunk (bounds the [chunk, N, 3, 3] buffers)
CHUNK = 128


@dataclass(frozen=True)
class FaceBatch:
    """``vertices`` float32 [B, N, 3] and ``landmarks`` float32 [B, 68, 3], metres."""

    vertices: np.ndarray
    landmarks: np.ndarray


class SynthFaceBase(ABC):
    """What both SynthFace versions share: the identity space on a template,
    batching by identity, and the ``FaceModel`` interface. A subclass builds
    ``_parts(beta)`` (what a group of identities gives all its frames) and
    ``_express(parts, which, weights)`` (meshes of those frames)."""

    identity_names = IDENTITY_NAMES
    template: FaceTemplate
    identity_basis: np.ndarray

    @property
    def n_identity(self) -> int:
        return N_IDENTITY

    def sample_identities(self, n: int, rng: np.random.Generator) -> np.ndarray:
        return sample_identities(n, rng)

    def population_identity(self, index: int, seed: int = 0) -> np.ndarray:
        return population_identity(index, seed)

    def neutral(self, identity: np.ndarray) -> np.ndarray:
        """Neutral meshes ``float32 [B, N, 3]`` of identities ``[B, 35]``."""
        beta = np.atleast_2d(np.asarray(identity, dtype=np.float32))
        check_batch(beta, N_IDENTITY, "identity")
        k, n = self.identity_basis.shape[:2]
        flat = beta @ self.identity_basis.reshape(k, n * 3)
        return (self.template.vertices[None] + flat.reshape(-1, n, 3)).astype(np.float32)

    def vertices(self, identity: np.ndarray, weights: np.ndarray) -> np.ndarray:
        """Meshes ``float32 [B, N, 3]`` from identities ``[B, 35]`` and ARKit weights ``[B, 52]``.

        Rows that share an identity (the frames of one sequence) share what it
        gives them (its neutral, Jacobian, ...), computed once; zero weights
        give exactly ``neutral(identity)``.
        """
        beta = np.atleast_2d(np.asarray(identity, dtype=np.float32))
        w = np.atleast_2d(np.asarray(weights, dtype=np.float32))
        check_batch(beta, N_IDENTITY, "identity")
        check_batch(w, N_EXPRESSION, "weights")
        if len(beta) != len(w):
            raise ValueError(f"identity has {len(beta)} rows but weights has {len(w)}")
        uniq, inverse = np.unique(beta, axis=0, return_inverse=True)
        inverse = inverse.reshape(-1)
        out = np.empty((len(beta), self.template.n_vertices, 3), dtype=np.float32)
        for s in range(0, len(uniq), CHUNK):
            group = uniq[s:s + CHUNK]
            rows = np.flatnonzero((inverse >= s) & (inverse < s + len(group)))
            parts = self._parts(group)
            for r in range(0, len(rows), CHUNK):
                sel = rows[r:r + CHUNK]
                out[sel] = self._express(parts, inverse[sel] - s, w[sel])
        return out

    def evaluate(self, identity: np.ndarray, weights: np.ndarray) -> FaceBatch:
        """Meshes and their landmarks."""
        v = self.vertices(identity, weights)
        return FaceBatch(vertices=v, landmarks=self.landmarks(v))

    def landmarks(self, vertices: np.ndarray) -> np.ndarray:
        """The 68 landmarks ``[..., 68, 3]`` of meshes ``[..., N, 3]``."""
        return self.template.landmark_points(vertices)

    @abstractmethod
    def _parts(self, beta: np.ndarray):
        """What identities ``beta [G, 35]`` give every one of their frames."""

    @abstractmethod
    def _express(self, parts, which: np.ndarray, weights: np.ndarray) -> np.ndarray:
        """Meshes ``[B, N, 3]`` of identities ``parts[which]`` with ARKit ``weights [B, 52]``."""


class SynthFace(SynthFaceBase):
    """The SynthFace morphable model on one template (SynthFace's own mask,
    or any template with 68 landmarks, e.g. a user's FLAME head).

    Stateless after construction: every method is a pure function of its
    arguments and the precomputed bases. A ``models.face.base.FaceModel``.
    """

    name = "synthface-1"

    def __init__(self, template: FaceTemplate) -> None:
        self.template = template
        self.face_mask = template.skin
        frame = template.frame
        v64 = template.vertices.astype(np.float64)
        xi = frame.to_local(v64)
        anchors = Anchors(frame.to_local(template.landmark_points(v64)))
        normals_xi = vertex_normals(v64, template.faces) @ frame.rotation
        skin = template.skin
        self.anchors = anchors
        self.regions = region_labels(xi, anchors, skin)

        self.identity_basis, self.identity_jacobian = identity_bases(template, xi, anchors)

        expr = expression_fields(xi, normals_xi, anchors, skin)               # [52, N, 3]
        self.expression_basis = frame.vectors_to_world(expr).astype(np.float32)
        extra = secondary_fields(xi, normals_xi, anchors, skin)               # [K2, N, 3]
        self.secondary_basis = frame.vectors_to_world(extra).astype(np.float32)
        self.jaw_weight = jaw_weight(xi, normals_xi, anchors, skin).astype(np.float32)
        self._jaw_vertices = np.flatnonzero(self.jaw_weight > 0.0)
        self.hinge, self.hinge_identity = jaw_hinge(template, anchors)

    def _parts(self, beta: np.ndarray) -> "IdentityParts":
        return IdentityParts(self, beta)

    # ------------------------------------------------------------------
    def _express(self, parts: "IdentityParts", which: np.ndarray, w: np.ndarray) -> np.ndarray:
        """Meshes of identities ``parts[which]`` with weights ``w``."""
        n = self.template.n_vertices
        w_lin = w.copy()
        w_lin[:, INDEX["jawOpen"]] = 0.0
        lin = w_lin @ self.expression_basis.reshape(N_EXPRESSION, n * 3)
        lin += secondary_response(w) @ self.secondary_basis.reshape(N_SECONDARY, n * 3)
        lin = lin.reshape(len(w), n, 3)
        jac = parts.jacobian[which]
        verts = parts.neutral[which] + lin
        for j in range(3):                       # verts += J(beta) . lin, per vertex
            verts += jac[..., j] * lin[..., j:j + 1]
        angle = w[:, INDEX["jawOpen"]] * JAW_OPEN_ANGLE                       # [B]
        if np.any(angle != 0.0):
            jaw = self._jaw_vertices
            verts[:, jaw] = rotate_about_axis(verts[:, jaw], parts.hinge[which],
                                               angle[:, None] * self.jaw_weight[None, jaw])
        return verts


def identity_bases(template: FaceTemplate, xi: np.ndarray, anchors: Anchors, step: float = JACOBIAN_STEP
                   ) -> tuple[np.ndarray, np.ndarray]:
    """The identity fields on a template's vertices, in metres: ``basis [35, N, 3]``
    and the world Jacobian of each field ``[35, N, 3, 3]`` (by central differences
    of ``step`` in normalised coordinates, rotated into the world: ``R (df/dxi) R^T``;
    a wide step gives the field's stretch at that scale, not its finest detail)."""
    frame = template.frame
    basis = frame.vectors_to_world(identity_fields(xi, anchors)).astype(np.float32)
    grads = np.empty((N_IDENTITY, len(xi), 3, 3))
    for axis in range(3):
        offset = np.zeros(3)
        offset[axis] = step
        diff = identity_fields(xi + offset, anchors) - identity_fields(xi - offset, anchors)
        grads[..., axis] = diff / (2 * step)                                  # d f / d xi_axis
    r = frame.rotation
    return basis, np.einsum("ij,knjl,ml->knim", r, grads, r).astype(np.float32)


def jaw_hinge(template: FaceTemplate, anchors: Anchors, hinge_xi: np.ndarray = JAW_HINGE
              ) -> tuple[np.ndarray, np.ndarray]:
    """The jaw joints ``[2, 3]`` (m) of the template, at ``hinge_xi [2, 3]``
    (normalised; v1's ``JAW_HINGE`` by default), and how each identity field
    moves them ``[35, 2, 3]``."""
    frame = template.frame
    return frame.to_world(hinge_xi[None])[0], frame.vectors_to_world(identity_fields(hinge_xi, anchors))


class IdentityParts:
    """What a group of identities contributes to every one of their frames."""

    def __init__(self, model: SynthFaceBase, beta: np.ndarray) -> None:
        k, n = model.identity_basis.shape[:2]
        self.neutral = model.neutral(beta)
        self.jacobian = (beta @ model.identity_jacobian.reshape(k, n * 9)).reshape(len(beta), n, 3, 3)
        self.hinge = model.hinge[None] + np.einsum("bk,kpc->bpc", beta, model.hinge_identity)
