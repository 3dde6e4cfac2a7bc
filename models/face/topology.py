"""A face template: the neutral mesh, its faces, its 68 landmarks and its id.

``FaceTemplate`` is what every topology-aware part of facecast is built for:
SynthFace's own mask, or a user's CoMA/FLAME head loaded with
``load_template``. Its ``topology_id`` (a hash of the template vertices and
faces) is stored in every checkpoint and on every wire frame, and a model is
refused for a face whose id differs.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import connected_components

from models.face.frame import FaceFrame
from models.face.landmarks import LandmarkEmbedding

#: template coordinates are rounded to this (metres) before hashing, so the id
#: survives a float32 round trip through PLY/OBJ text.
TOPOLOGY_HASH_RESOLUTION = 1e-6


@dataclass(frozen=True, eq=False)
class FaceTemplate:
    """``vertices`` float32 [N, 3] metres, ``faces`` int32 [F, 3] (CCW outward)."""

    name: str
    vertices: np.ndarray
    faces: np.ndarray
    landmarks: LandmarkEmbedding

    def __post_init__(self) -> None:
        v, f = self.vertices, self.faces
        if v.ndim != 2 or v.shape[1] != 3:
            raise ValueError(f"template {self.name!r}: vertices must be [N, 3], got {v.shape}")
        if f.ndim != 2 or f.shape[1] != 3:
            raise ValueError(f"template {self.name!r}: faces must be [F, 3], got {f.shape}")
        if f.min() < 0 or f.max() >= len(v):
            raise ValueError(f"template {self.name!r}: face indices outside 0..{len(v) - 1}")
        if self.landmarks.face_idx.max() >= len(f):
            raise ValueError(f"template {self.name!r}: a landmark names a face past {len(f) - 1}")

    @property
    def n_vertices(self) -> int:
        return len(self.vertices)

    @cached_property
    def topology_id(self) -> str:
        """16 hex digits of SHA-256 over the rounded template and the faces."""
        h = hashlib.sha256()
        q = np.round(self.vertices.astype(np.float64) / TOPOLOGY_HASH_RESOLUTION).astype(np.int64)
        h.update(q.tobytes())
        h.update(self.faces.astype(np.int32).tobytes())
        return h.hexdigest()[:16]

    def landmark_points(self, vertices: np.ndarray | None = None) -> np.ndarray:
        """The 68 landmarks ``[..., 68, 3]`` of ``vertices`` (default: the template)."""
        v = self.vertices if vertices is None else vertices
        return self.landmarks.evaluate(v, self.faces)

    @cached_property
    def frame(self) -> FaceFrame:
        """The face frame of the neutral template."""
        return FaceFrame.from_landmarks(self.landmark_points())

    @cached_property
    def components(self) -> np.ndarray:
        """Connected-component label of every vertex, int [N]."""
        n = self.n_vertices
        f = self.faces
        rows = np.concatenate([f[:, 0], f[:, 1], f[:, 2]])
        cols = np.concatenate([f[:, 1], f[:, 2], f[:, 0]])
        adj = sp.coo_matrix((np.ones(len(rows)), (rows, cols)), shape=(n, n))
        return connected_components(adj, directed=False)[1]

    @cached_property
    def skin(self) -> np.ndarray:
        """bool [N]: the component the landmarks sit on (the face skin).

        Expressions deform the skin only; other components (a FLAME head's
        eyeballs) keep their place, since facecast models no eye gaze.
        """
        corners = self.faces[self.landmarks.face_idx].reshape(-1)
        labels, counts = np.unique(self.components[corners], return_counts=True)
        return self.components == labels[np.argmax(counts)]


def load_template(mesh_path: str | Path, landmarks_path: str | Path, name: str | None = None) -> FaceTemplate:
    """A user's template: a mesh file (OBJ/PLY, metres) and its 68 landmarks.

    The landmark file is JSON with either ``vertex_ids`` (68 ints) or
    ``face_idx`` (68 ints) and ``bary`` (68 x 3 floats), in iBUG-68 order,
    as ``flame68_landmark_embedding.json`` for the CoMA/FLAME head.
    """
    import trimesh

    mesh_path, landmarks_path = Path(mesh_path), Path(landmarks_path)
    for p in (mesh_path, landmarks_path):
        if not p.is_file():
            raise FileNotFoundError(f"template file not found: {p}")
    try:
        mesh = trimesh.load(mesh_path, process=False, force="mesh")
    except Exception as exc:  # trimesh raises many types for a bad file
        raise ValueError(f"cannot read template mesh {mesh_path}: {exc}") from exc
    vertices = np.asarray(mesh.vertices, dtype=np.float32)
    faces = np.asarray(mesh.faces, dtype=np.int32)
    if len(vertices) == 0 or len(faces) == 0:
        raise ValueError(f"template mesh {mesh_path} has no triangles")
    try:
        spec = json.loads(landmarks_path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ValueError(f"cannot read landmark file {landmarks_path}: {exc}") from exc
    if "vertex_ids" in spec:
        emb = LandmarkEmbedding.from_vertices(np.asarray(spec["vertex_ids"]), faces)
    elif "face_idx" in spec and "bary" in spec:
        emb = LandmarkEmbedding(face_idx=np.asarray(spec["face_idx"], dtype=np.int32),
                                bary=np.asarray(spec["bary"], dtype=np.float32))
    else:
        raise ValueError(f"landmark file {landmarks_path} needs 'vertex_ids' or 'face_idx' + 'bary'")
    return FaceTemplate(name=name or mesh_path.stem, vertices=vertices, faces=faces, landmarks=emb)
