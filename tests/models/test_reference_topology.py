"""The face model is topology-agnostic: it runs on the real CoMA/FLAME head
with its barycentric landmarks, as a user with CoMA data would run it."""

from __future__ import annotations

import numpy as np

from models.face import N_EXPRESSION, REGIONS, SynthFace, sample_identities
from models.face.expression import INDEX, SHAPE_REGIONS
from models.constants import EPS_DISPLACEMENT


def test_flame_template_loads(flame_template):
    t = flame_template
    assert t.n_vertices == 5023 and len(t.faces) == 9976
    assert t.landmarks.vertex_ids(t.faces) is None           # barycentric, not vertices
    assert len(np.unique(t.components)) == 3                  # head and two eyeballs
    assert t.skin.sum() == 3931


def test_synthface_animates_the_flame_head(flame_template):
    model = SynthFace(flame_template)
    beta = sample_identities(2, np.random.default_rng(0))
    w = np.zeros((2, N_EXPRESSION), np.float32)
    w[:, INDEX["jawOpen"]] = 1.0
    w[:, INDEX["mouthSmileLeft"]] = 0.7
    out = model.evaluate(beta, w)
    assert out.vertices.shape == (2, 5023, 3) and np.all(np.isfinite(out.vertices))
    L, L0 = out.landmarks, model.landmarks(model.neutral(beta))
    assert np.all(np.linalg.norm(L[:, 62] - L[:, 66], axis=-1) > 0.01)   # the mouth opened
    assert np.all(np.linalg.norm(L0[:, 62] - L0[:, 66], axis=-1) < 0.004)
    # the eyeballs never move with expressions
    eyes = ~flame_template.skin
    assert np.abs(out.vertices[:, eyes] - model.neutral(beta)[:, eyes]).max() == 0.0


def test_flame_blendshapes_move_only_their_regions(flame_template):
    model = SynthFace(flame_template)
    beta = np.zeros((1, model.identity_basis.shape[0]), np.float32)
    for name, allowed_names in SHAPE_REGIONS.items():
        if name == "jawOpen":
            continue
        w = np.zeros((1, N_EXPRESSION), np.float32)
        w[0, INDEX[name]] = 1.0
        d = np.linalg.norm(model.vertices(beta, w)[0] - model.neutral(beta)[0], axis=-1)
        allowed = np.isin(model.regions, [REGIONS.index(r) for r in allowed_names])
        assert d[~allowed].max(initial=0.0) < EPS_DISPLACEMENT, name


def test_synthetic_data_on_flame_topology(flame_template, tmp_path):
    from trainers.data.cache import FaceData
    from trainers.data.synth import SynthConfig, generate

    generate(SynthConfig(identities=1, labels=("mouth_open",), write_ply=False), tmp_path / "flame",
             model=SynthFace(flame_template), show_progress=False, report=False)
    data = FaceData.open(tmp_path / "flame")
    assert data.template.topology_id == flame_template.topology_id
    assert data.vertices.shape[1:] == (5023, 3)
    motion = np.linalg.norm(data.landmarks(slice(None)) - data.landmarks(slice(0, 1)), axis=-1).max()
    assert motion > 0.01
