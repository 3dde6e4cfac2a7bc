"""Face and vertex normals of triangle meshes, batched.

``vertices``: ``float [..., N, 3]``; ``faces``: ``int [F, 3]`` with
counter-clockwise winding seen from outside. Normals point outward.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from models.constants import EPS_LENGTH


def face_normals(vertices: np.ndarray, faces: np.ndarray, normalize: bool = True) -> np.ndarray:
    """Per-triangle normals.

    Args:
        vertices: ``[..., N, 3]``.
        faces: ``[F, 3]``.
        normalize: unit length if True, else twice the triangle area.

    Returns:
        ``[..., F, 3]``.
    """
    v0 = vertices[..., faces[:, 0], :]
    v1 = vertices[..., faces[:, 1], :]
    v2 = vertices[..., faces[:, 2], :]
    n = np.cross(v1 - v0, v2 - v0)
    if normalize:
        n = n / np.maximum(np.linalg.norm(n, axis=-1, keepdims=True), EPS_LENGTH)
    return n


def vertex_face_incidence(faces: np.ndarray, n_vertices: int) -> sp.csr_matrix:
    """``[N, F]`` sparse matrix with a 1 where vertex ``i`` is a corner of face ``f``."""
    rows = faces.reshape(-1)
    cols = np.repeat(np.arange(len(faces)), 3)
    data = np.ones(len(rows), dtype=np.float64)
    return sp.csr_matrix((data, (rows, cols)), shape=(n_vertices, len(faces)))


def vertex_normals(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Area-weighted unit vertex normals.

    Args:
        vertices: ``[..., N, 3]``.
        faces: ``[F, 3]``.

    Returns:
        ``[..., N, 3]`` in the dtype of ``vertices``; a vertex used by no
        face gets a zero normal.
    """
    n_vertices = vertices.shape[-2]
    fn = face_normals(vertices, faces, normalize=False)            # [..., F, 3]
    batch = fn.shape[:-2]
    flat = np.moveaxis(fn.reshape(-1, fn.shape[-2], 3), 1, 0)      # [F, B, 3]
    summed = vertex_face_incidence(faces, n_vertices) @ flat.reshape(flat.shape[0], -1)
    out = np.moveaxis(summed.reshape(n_vertices, -1, 3), 0, 1).reshape(*batch, n_vertices, 3)
    length = np.linalg.norm(out, axis=-1, keepdims=True)
    return (out / np.maximum(length, EPS_LENGTH)).astype(vertices.dtype, copy=False)
