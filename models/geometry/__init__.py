"""Topology-agnostic mesh geometry: pure array-in, array-out functions.

Vertices are ``float32 [..., N, 3]`` in metres, faces ``int32 [F, 3]``.
"""

from models.geometry.normals import face_normals, vertex_normals
from models.geometry.smooth import bump, smoothstep, soft_plus

__all__ = ["bump", "face_normals", "smoothstep", "soft_plus", "vertex_normals"]
