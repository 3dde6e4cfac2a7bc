"""The 68 landmarks: distinct vertices, iBUG order, plausible places."""

from __future__ import annotations

import numpy as np
import pytest

from models.face import synthface_template
from models.face.landmarks import GROUPS, MIRROR, LandmarkEmbedding


@pytest.fixture(scope="module")
def tpl():
    return synthface_template()


@pytest.fixture(scope="module")
def L(tpl):
    return tpl.landmark_points().astype(np.float64)


def test_68_distinct_vertices(tpl):
    ids = tpl.landmarks.vertex_ids(tpl.faces)
    assert ids is not None and len(ids) == 68 and len(set(ids.tolist())) == 68


def test_groups_cover_68_in_order():
    covered = sorted(i for r in GROUPS.values() for i in r)
    assert covered == list(range(68))


def test_mirror_pairs_mirror_across_midplane(L):
    assert sorted(MIRROR.tolist()) == list(range(68))
    assert np.array_equal(MIRROR[MIRROR], np.arange(68))
    twin = L[MIRROR] * np.array([-1.0, 1.0, 1.0])
    assert np.abs(twin - L).max() < 1e-6
    midline = [i for i in range(68) if MIRROR[i] == i]
    assert np.abs(L[midline, 0]).max() < 1e-6


def test_ibug_order_runs_right_to_left(L):
    # jaw from the subject's right (-x) to the left, lowest at 8
    assert np.all(np.diff(L[0:9, 0]) > 0) and np.all(np.diff(L[8:17, 0]) > 0)
    assert np.argmin(L[0:17, 1]) == 8
    # brows above the eyes, eyes above the nose tip, nose tip above the mouth, mouth above the chin
    assert L[17:27, 1].min() > L[36:48, 1].max()
    assert L[36:48, 1].min() > L[30, 1] > L[48:68, 1].max() > L[8, 1]
    # nose bridge top to tip, tip the most forward point of the face
    assert np.all(np.diff(L[27:31, 1]) < 0)
    assert L[30, 2] == L[:, 2].max()
    # right eye at -x, left at +x; upper lids above lower lids
    assert L[36:42, 0].max() < 0 < L[42:48, 0].min()
    assert L[37, 1] > L[41, 1] and L[38, 1] > L[40, 1] and L[43, 1] > L[47, 1] and L[44, 1] > L[46, 1]


def test_mouth_corners_wider_than_nose_wings(L):
    assert abs(L[54, 0] - L[48, 0]) > abs(L[35, 0] - L[31, 0])
    assert abs(L[64, 0] - L[60, 0]) > abs(L[35, 0] - L[31, 0])


def test_inner_lips_on_the_slit(tpl):
    """Upper inner-lip landmarks on the upper lip row, lower ones on the lower
    row: they are different vertices at (nearly) the same place."""
    from models.face.template import build_template

    mesh = build_template()
    upper, lower = mesh.slits["mouth"]
    ids = tpl.landmarks.vertex_ids(tpl.faces)
    assert all(ids[i] in upper for i in (60, 61, 62, 63, 64))
    assert all(ids[i] in lower for i in (65, 66, 67))
    gap = tpl.vertices[ids[62]] - tpl.vertices[ids[66]]
    assert 0 < gap[1] < 0.003


def test_embedding_evaluates_barycentric_points():
    v = np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0]], np.float32)
    f = np.array([[0, 1, 2]], np.int32)
    emb = LandmarkEmbedding(face_idx=np.zeros(68, np.int32),
                            bary=np.tile(np.array([[0.2, 0.3, 0.5]], np.float32), (68, 1)))
    p = emb.evaluate(v, f)
    assert p.shape == (68, 3) and np.allclose(p[0], [0.3, 0.5, 0.0])
    w = emb.vertex_weights(3, f)
    assert np.allclose(w @ v, p)
    assert emb.vertex_ids(f) is None
    with pytest.raises(ValueError, match="68"):
        LandmarkEmbedding(face_idx=np.zeros(5, np.int32), bary=np.zeros((5, 3), np.float32))
