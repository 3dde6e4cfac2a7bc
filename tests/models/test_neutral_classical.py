"""The classical neutralizer (Pan et al. 2010): the sphere maps, the expression residue and
the Poisson reconstruction against analytic truth, then a small fit on SynthFace."""

from __future__ import annotations

import numpy as np
import pytest
import trimesh
from scipy.spatial.transform import Rotation

from models.checkpoint import TopologyMismatch
from models.constants import MM_PER_M
from models.neutral import load_neutralizer
from models.neutral.classical import (
    Classical,
    ClassicalConfig,
    PoissonSolver,
    _edges,
    choose_pins,
    component_labels,
    full_residue,
    karcher_mean,
    load_classical,
    residue,
    save_classical,
    sphere_exp,
    sphere_log,
    stretch_axes,
    target_edges,
    triangle_frames,
)
from trainers.neutral.classical import train_classical
from trainers.neutral.data import NeutralDataConfig, synth_set


def mm(a, b) -> np.ndarray:
    return np.linalg.norm(a - b, axis=-1).mean(axis=-1) * MM_PER_M


def unit(v):
    return v / np.linalg.norm(v, axis=-1, keepdims=True)


@pytest.fixture(scope="module")
def sphere():
    m = trimesh.creation.icosphere(subdivisions=2)
    return np.asarray(m.vertices, np.float64) * 0.05, np.asarray(m.faces, np.int64)


def test_sphere_log_and_exp_are_inverse_and_measure_geodesics():
    rng = np.random.default_rng(0)
    p, q = unit(rng.normal(size=(100, 3))), unit(rng.normal(size=(100, 3)))
    v = sphere_log(p, q)
    assert np.allclose(np.einsum("ij,ij->i", v, p), 0.0, atol=1e-12)          # tangent at p
    angle = np.arccos(np.clip(np.einsum("ij,ij->i", p, q), -1, 1))
    assert np.allclose(np.linalg.norm(v, axis=1), angle)                     # its length is the geodesic distance
    assert np.allclose(sphere_exp(p, v), q, atol=1e-10)
    assert np.allclose(sphere_log(p, p), 0.0)


def test_karcher_mean_of_a_symmetric_ring_is_its_axis():
    axis = unit(np.array([0.3, -0.2, 1.0]))
    ring = Rotation.from_rotvec(unit(np.cross(axis, [1.0, 0, 0])) * 0.4).apply(axis)
    spins = Rotation.from_rotvec(np.linspace(0, 2 * np.pi, 12, endpoint=False)[:, None] * axis)
    normals = spins.apply(ring)[:, None, :]                                  # [M, F=1, 3]
    assert np.allclose(karcher_mean(normals)[0], axis, atol=1e-9)


def test_a_similarity_moves_each_triangle_by_its_exact_residue(sphere):
    """A global rotation and uniform scale has no shear: the residue reproduces every triangle."""
    v, f = sphere
    target = 1.3 * Rotation.from_rotvec([0.2, -0.5, 0.3]).apply(v) + [0.01, 0.02, -0.03]
    res = residue(v, target, f, np.zeros(len(f)))
    assert np.allclose(res[:, 3:], np.log(1.3), atol=1e-9)                    # both stretches log 1.3
    e1, e2 = target_edges(triangle_frames(v, f), res, np.zeros(len(f)))
    t1, t2 = _edges(target, f)
    assert np.allclose(e1, t1, atol=1e-12) and np.allclose(e2, t2, atol=1e-12)


def test_the_residue_of_an_unchanged_face_is_zero(sphere):
    v, f = sphere
    assert np.abs(full_residue(v, v, f)).max() < 1e-12


def test_stretch_axes_recover_the_direction_of_a_known_stretch():
    # log-stretch tensors l = s * d d^T with d at 30 degrees from the first edge, s varying
    theta = np.deg2rad(30.0)
    d = np.array([np.cos(theta), np.sin(theta)])
    s = np.linspace(0.1, 0.5, 20)
    full = np.zeros((20, 1, 6))
    full[:, 0, 3], full[:, 0, 4], full[:, 0, 5] = s * d[0] ** 2, s * d[0] * d[1], s * d[1] ** 2
    got = stretch_axes(full)[0]
    # the stretch frame: the axis or the one across it (both diagonalise every tensor)
    assert np.isclose(np.cos(4 * (got - theta)), 1.0, atol=1e-9)


def test_poisson_gives_a_mesh_back_from_its_own_edges_and_moves_with_its_pins(sphere):
    v, f = sphere
    pins = np.array([0])
    solver = PoissonSolver(v, f, pins)
    rng = np.random.default_rng(1)
    other = v * (1 + 0.1 * rng.normal(size=v.shape))                         # another face of the same topology
    e1, e2 = _edges(other, f)
    back = solver.solve(e1[None], e2[None], other[None, pins])
    assert np.allclose(back[0], other, atol=1e-10)
    shifted = solver.solve(e1[None], e2[None], other[None, pins] + 0.5)
    assert np.allclose(shifted[0], other + 0.5, atol=1e-10)                 # one pin: translation only


def test_one_pin_per_connected_component_at_its_least_moving_vertex():
    a = trimesh.creation.icosphere(subdivisions=1)
    b = a.copy()
    b.apply_translation([3, 0, 0])
    both = trimesh.util.concatenate([a, b])
    faces = np.asarray(both.faces)
    labels = component_labels(faces, len(both.vertices))
    assert len(np.unique(labels)) == 2
    motion = np.random.default_rng(2).uniform(1, 2, len(both.vertices))
    motion[[5, len(a.vertices) + 7]] = 0.0
    assert list(choose_pins(motion, faces)) == [5, len(a.vertices) + 7]
    assert set(choose_pins(motion, faces, anchor=1.5)) >= set(np.flatnonzero(motion < 1.5))


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    train = synth_set(NeutralDataConfig(identities=24, expressions=10), show_progress=False)
    test = synth_set(NeutralDataConfig(identities=6, expressions=10, split="test"), show_progress=False)
    path = tmp_path_factory.mktemp("classical") / "classical.safetensors"
    model = train_classical(train, path, ClassicalConfig(rbf_centres=120, normal_dims=60), show_progress=False,
                            test=test)
    return model, path, test


def test_a_small_fit_beats_doing_nothing_on_unseen_identities(fitted):
    model, _, test = fitted
    idx = test.expressive()
    out = model.neutralize(test.meshes[idx])
    assert out.shape == (len(idx), test.template.n_vertices, 3) and out.dtype == np.float32
    assert mm(out, test.targets(idx)).mean() < 0.75 * mm(test.meshes[idx], test.targets(idx)).mean()
    assert model.metrics["avd_neu_mm"] < model.metrics["input_to_neutral_mm"]


def test_neutralizing_a_neutral_face_changes_it_by_under_half_a_millimetre(fitted):
    model, _, test = fitted
    assert mm(model.neutralize(test.neutrals), test.neutrals).mean() < 0.5


def test_transfer_moves_the_expression_towards_the_target_identitys_own(fitted):
    from models.face import synthface

    model, _, test = fitted
    a = test.expressive()[:8]
    b = (test.subject[a] + 1) % test.n_subjects
    truth = synthface().vertices(test.identity[b], test.weights[a])
    moved = model.transfer(test.meshes[a], test.neutrals[b])
    assert mm(moved, truth).mean() < mm(test.neutrals[b], truth).mean()


def test_checkpoint_round_trip_and_topology_refusal(fitted, tmp_path):
    model, path, test = fitted
    back = load_neutralizer(path, test.template.topology_id)
    assert isinstance(back, Classical) and back.config == model.config and back.metrics == model.metrics
    faces = test.meshes[:3]
    np.testing.assert_allclose(back.neutralize(faces), model.neutralize(faces), atol=2e-6)   # floats stored as f32
    assert path.stat().st_size < 16 * 2 ** 20
    with pytest.raises(TopologyMismatch, match="classical.safetensors"):
        load_classical(path, "0123456789abcdef")
    again = save_classical(back, tmp_path / "again.safetensors")
    assert np.array_equal(load_classical(again).neutralize(faces), back.neutralize(faces))
