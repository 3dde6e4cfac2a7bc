"""Geometry helpers against analytic truth."""

from __future__ import annotations

import numpy as np
import pytest
import trimesh

from models.geometry import bump, smoothstep, vertex_normals
from models.geometry.align import aligned_distances, fit_similarity
from models.geometry.intersect import self_intersections
from models.geometry.proximity import closest_points


def test_icosahedron_normals_equal_positions():
    ico = trimesh.creation.icosahedron()
    n = vertex_normals(np.asarray(ico.vertices, np.float64), np.asarray(ico.faces))
    assert np.abs(n - ico.vertices).max() < 1e-12
    s = trimesh.creation.icosphere(subdivisions=3)       # uneven triangles: close, not exact
    assert np.abs(vertex_normals(np.asarray(s.vertices), np.asarray(s.faces)) - s.vertices).max() < 0.02
    batch = np.stack([s.vertices, s.vertices * 2.0])
    nb = vertex_normals(batch, np.asarray(s.faces))
    assert nb.shape == batch.shape and np.allclose(nb[0], nb[1])


def test_smooth_primitives_have_compact_support():
    x = np.linspace(-1, 2, 301)
    s = smoothstep(x)
    assert s[x <= 0].max() == 0 and s[x >= 1].min() == 1 and np.all(np.diff(s) >= 0)
    assert bump(np.array([0.0, 1.0, 2.0])).tolist() == [1.0, 0.0, 0.0]


def test_similarity_recovers_a_known_transform():
    rng = np.random.default_rng(0)
    src = rng.normal(size=(30, 3))
    q, _ = np.linalg.qr(rng.normal(size=(3, 3)))
    rot = q * np.sign(np.linalg.det(q))
    dst = 2.5 * src @ rot.T + np.array([1.0, -2.0, 0.5])
    sim = fit_similarity(src, dst)
    assert sim.scale == pytest.approx(2.5) and np.allclose(sim.rotation, rot)
    assert aligned_distances(src, dst).max() < 1e-9
    flat = fit_similarity(src[:, :2], 0.5 * src[:, :2])
    assert flat.scale == pytest.approx(0.5)


def test_self_intersections():
    sphere = trimesh.creation.icosphere(subdivisions=2)
    assert len(self_intersections(sphere.vertices, sphere.faces)) == 0
    # two triangles crossing each other
    v = np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0], [0.2, 0.2, -0.5], [0.3, 0.3, 0.5], [0.9, 0.9, 0.0]], float)
    f = np.array([[0, 1, 2], [3, 4, 5]])
    assert self_intersections(v, f).tolist() == [[0, 1]]
    # a dent pushed through the far side of the sphere
    dented = np.asarray(sphere.vertices).copy()
    k = 17
    dented[k] = -1.4 * dented[k] + np.array([0.07, -0.03, 0.05])   # off-axis, through the far side
    assert len(self_intersections(dented, sphere.faces)) > 0


def test_closest_points_match_brute_force():
    box = trimesh.creation.box(extents=(1, 2, 3))
    rng = np.random.default_rng(1)
    pts = rng.uniform(-2, 2, (200, 3))
    q, d = closest_points(box.vertices, box.faces, pts, k=len(box.faces))
    inside = np.all(np.abs(pts) < np.array([0.5, 1, 1.5]), axis=1)
    outside_d = np.linalg.norm(np.clip(np.abs(pts) - [0.5, 1, 1.5], 0, None), axis=1)
    inside_d = np.min(np.array([0.5, 1, 1.5]) - np.abs(pts), axis=1)
    truth = np.where(inside, inside_d, outside_d)
    assert np.allclose(d, truth, atol=1e-9)
