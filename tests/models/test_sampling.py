"""Mesh hierarchies and spirals: sparse up-sampling, selection, fixed-length spirals."""

from __future__ import annotations

import numpy as np
import pytest
import trimesh

from models.face import synthface_template
from models.geometry.sampling import build_hierarchy, cached_hierarchy, decimate
from models.geometry.spirals import ordered_neighbours, spirals


@pytest.fixture(scope="module")
def hierarchy():
    t = synthface_template()
    return build_hierarchy(t.vertices, t.faces)


def test_levels_shrink_by_four_and_stay_manifold(hierarchy):
    sizes = hierarchy.sizes
    assert sizes[0] == synthface_template().n_vertices
    for a, b in zip(sizes, sizes[1:]):
        assert b == int(np.ceil(a / 4))
    for i in range(1, len(sizes)):
        m = trimesh.Trimesh(hierarchy.vertices[i], hierarchy.faces(i), process=False)
        assert m.is_winding_consistent
        _, counts = np.unique(np.sort(m.edges, axis=1), axis=0, return_counts=True)
        assert counts.max() <= 2


def test_down_sampling_is_a_selection(hierarchy):
    for i, lv in enumerate(hierarchy.levels):
        assert np.array_equal(hierarchy.vertices[i + 1], hierarchy.vertices[i][lv.keep])
        assert len(np.unique(lv.keep)) == len(lv.keep)


def test_up_sampling_rows_sum_to_one_and_reproduce_linear_fields(hierarchy):
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(3, 3)), rng.normal(size=3)
    for i, lv in enumerate(hierarchy.levels):
        assert lv.up_idx.shape == (hierarchy.sizes[i], 3) and lv.up_w.shape == (hierarchy.sizes[i], 3)
        assert np.allclose(lv.up_w.sum(axis=1), 1.0, atol=1e-6) and lv.up_w.min() >= 0
        coarse = hierarchy.vertices[i + 1].astype(np.float64)
        field = coarse @ a.T + b                                   # a linear field on the coarse level
        up = hierarchy.upsample(field, i)
        where = np.einsum("nkc,nk->nc", coarse[lv.up_idx], lv.up_w)   # the interpolated points
        assert np.allclose(up, where @ a.T + b, atol=1e-9)
        kept = lv.keep                                              # kept vertices map to themselves
        assert np.allclose(up[kept], field, atol=1e-9)


def test_decimate_a_sphere_keeps_it_closed():
    s = trimesh.creation.icosphere(subdivisions=3)
    keep, faces = decimate(s.vertices, s.faces, 160)
    m = trimesh.Trimesh(s.vertices[keep], faces, process=False)
    assert len(keep) == 160 and m.is_watertight and m.is_winding_consistent


def test_hierarchy_is_cached_by_topology_id(tmp_path):
    t = synthface_template()
    h1 = cached_hierarchy(t.vertices, t.faces, t.topology_id, tmp_path)
    files = list(tmp_path.glob(f"hierarchy-{t.topology_id}-*.npz"))
    assert len(files) == 1
    h2 = cached_hierarchy(t.vertices, t.faces, t.topology_id, tmp_path)
    assert h1.sizes == h2.sizes and all(np.array_equal(a.up_idx, b.up_idx) for a, b in zip(h1.levels, h2.levels))
    files[0].write_bytes(b"broken")                                 # a broken cache is rebuilt
    assert cached_hierarchy(t.vertices, t.faces, t.topology_id, tmp_path).sizes == h1.sizes


def test_spirals_are_valid_fixed_length_and_start_with_the_ring(hierarchy):
    v, f = hierarchy.vertices[0], hierarchy.faces(0)
    sp = spirals(v, f, length=10, dilation=1)
    n = len(v)
    assert sp.shape == (n, 10) and sp.min() >= 0 and sp.max() <= n
    assert np.array_equal(sp[:, 0], np.arange(n))
    ring = ordered_neighbours(v, f)
    for i in range(0, n, 97):
        k = min(len(ring[i]), 9)
        assert set(sp[i, 1:1 + k]) <= set(ring[i].tolist())
    dil = spirals(v, f, length=10, dilation=2)
    assert np.array_equal(dil[:, 0], np.arange(n)) and dil.shape == (n, 10)


def test_flame_topology(flame_template):
    """The hierarchy is topology-agnostic: the FLAME head with its eyeballs."""
    h = build_hierarchy(flame_template.vertices, flame_template.faces)
    assert h.sizes[0] == 5023 and h.sizes[1] == 1256
    for lv in h.levels:
        assert np.allclose(lv.up_w.sum(axis=1), 1.0, atol=1e-6)
