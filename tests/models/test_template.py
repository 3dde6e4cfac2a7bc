"""The SynthFace template: a manifold mask with the stated boundaries,
human proportions, left-right symmetry and a smooth surface."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
import trimesh

from models.face import synthface_template
from models.face.template import build_template
from models.geometry import vertex_normals
from models.geometry.intersect import self_intersections


@pytest.fixture(scope="module")
def tpl():
    return synthface_template()


@pytest.fixture(scope="module")
def mesh(tpl):
    return trimesh.Trimesh(tpl.vertices, tpl.faces, process=False)


def boundary_loops(faces: np.ndarray) -> list[np.ndarray]:
    edges = np.sort(np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]]), axis=1)
    uniq, counts = np.unique(edges, axis=0, return_counts=True)
    assert counts.max() <= 2, "an edge shared by more than two triangles"
    border = uniq[counts == 1]
    g = trimesh.graph.nx.Graph()
    g.add_edges_from(map(tuple, border))
    return [np.array(sorted(c)) for c in trimesh.graph.nx.connected_components(g)]


def test_vertex_count_and_dtypes(tpl):
    assert 4000 <= tpl.n_vertices <= 6000
    assert tpl.vertices.dtype == np.float32 and tpl.faces.dtype == np.int32
    assert tpl.vertices.shape[1] == 3 and tpl.faces.shape[1] == 3


def test_manifold_with_rim_mouth_and_two_eye_slits(tpl, mesh):
    assert mesh.is_winding_consistent
    # every vertex's one-ring is a single fan (no pinched vertices)
    loops = boundary_loops(tpl.faces)
    assert len(loops) == 4
    # a disk with three holes
    assert mesh.euler_number == 1 - 3
    lm = tpl.landmarks.vertex_ids(tpl.faces)
    by_size = sorted(loops, key=len)
    rim = by_size[-1]
    mouth = next(loop for loop in loops if lm[62] in loop)
    eyes = [loop for loop in loops if lm[37] in loop or lm[44] in loop]
    assert len(eyes) == 2 and mouth is not rim
    # the inner lips and the lid landmarks sit on their slits
    for i in range(60, 68):
        assert lm[i] in mouth
    for i in range(36, 42):
        assert lm[i] in eyes[0] or lm[i] in eyes[1]
    # the rim runs round the whole face: above the brows (hairline), out to the
    # ears, and under the chin (behind the chin point, no higher than it)
    rim_pts = tpl.vertices[rim]
    chin = tpl.vertices[lm[8]]
    assert rim_pts[:, 1].max() > tpl.vertices[lm[19], 1] + 0.04
    assert np.abs(rim_pts[:, 0]).max() > 0.065
    under = rim_pts[np.abs(rim_pts[:, 0]) < 0.005]
    under = under[under[:, 1] < 0]
    assert len(under) and under[:, 2].max() < chin[2] - 0.02 and under[:, 1].max() < chin[1] + 0.004


def test_no_pinched_vertices(tpl):
    n = tpl.n_vertices
    f = tpl.faces
    for v in range(0, n, 7):
        ring = f[(f == v).any(axis=1)]
        edges = [tuple(sorted(e)) for t in ring for e in ((t[0], t[1]), (t[1], t[2]), (t[2], t[0])) if v not in e]
        g = trimesh.graph.nx.Graph()
        g.add_edges_from(edges)
        assert trimesh.graph.nx.number_connected_components(g) == 1, f"vertex {v} is pinched"


def test_outward_normals(tpl):
    n = vertex_normals(tpl.vertices, tpl.faces)
    lm = tpl.landmarks.vertex_ids(tpl.faces)
    assert n[lm[30], 2] > 0.9          # nose tip faces forward
    assert n[lm[8], 1] < 0.0           # chin faces down-forward
    assert n[lm[19], 2] > 0.5          # brow faces forward


def test_embedded(tpl):
    assert len(self_intersections(tpl.vertices, tpl.faces)) == 0


def test_human_proportions(tpl):
    """Facts to aim at (metres), within stated tolerances."""
    L = tpl.landmark_points().astype(np.float64)
    d = lambda a, b: float(np.linalg.norm(L[a] - L[b]))  # noqa: E731
    assert d(36, 45) == pytest.approx(0.09, abs=0.008)      # outer eye corners
    assert d(39, 42) == pytest.approx(0.032, abs=0.005)     # inner eye corners
    assert d(48, 54) == pytest.approx(0.05, abs=0.006)      # mouth width
    assert d(27, 8) == pytest.approx(0.12, abs=0.012)       # nasion to chin
    # alar width: on the row through the wings, the span standing 5 mm proud of the cheeks
    v = tpl.vertices.astype(np.float64)
    wings = 0.5 * (L[31, 1] + L[30, 1])
    row = v[(np.abs(v[:, 1] - wings) < 0.002) & (np.abs(v[:, 0]) < 0.04) & (v[:, 2] > 0.05)]
    cheek = row[np.argmin(np.abs(np.abs(row[:, 0]) - 0.03)), 2]
    proud = row[row[:, 2] > cheek + 0.005]
    assert 2 * np.abs(proud[:, 0]).max() == pytest.approx(0.035, abs=0.004)
    assert L[30, 2] - L[31:36, 2].mean() == pytest.approx(0.02, abs=0.007)   # nose projection
    assert d(0, 16) == pytest.approx(0.14, abs=0.012)        # face width


def test_left_right_symmetric(tpl):
    v = tpl.vertices
    mirrored = v * np.array([-1.0, 1.0, 1.0], dtype=np.float32)
    from scipy.spatial import cKDTree

    dist, _ = cKDTree(v).query(mirrored)
    assert dist.max() < 1e-6


def test_smooth_no_spikes(tpl, mesh):
    """The normal part of the umbrella Laplacian stays well below the local
    edge length everywhere inside the mask (a spike or fold would reach it)."""
    v = tpl.vertices.astype(np.float64)
    e = mesh.edges_unique
    n = len(v)
    adj = sp.coo_matrix((np.ones(2 * len(e)), (np.r_[e[:, 0], e[:, 1]], np.r_[e[:, 1], e[:, 0]])),
                        shape=(n, n)).tocsr()
    deg = np.asarray(adj.sum(1)).ravel()
    lap = v - (adj @ v) / deg[:, None]
    mean_edge = np.bincount(np.r_[e[:, 0], e[:, 1]], np.r_[mesh.edges_unique_length, mesh.edges_unique_length],
                            minlength=n) / deg
    border = np.unique(np.concatenate(boundary_loops(tpl.faces)))
    inner = np.setdiff1d(np.arange(n), border)
    ratio = np.abs(np.sum(lap * vertex_normals(v, tpl.faces), axis=1)) / mean_edge
    assert ratio[inner].max() < 0.6


def test_build_is_deterministic():
    a, b = build_template(), build_template()
    assert np.array_equal(a.vertices, b.vertices) and np.array_equal(a.faces, b.faces)
    assert synthface_template().topology_id == synthface_template().topology_id
