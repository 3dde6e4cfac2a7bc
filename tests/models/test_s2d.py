"""S2D-Dec: the architecture, one batched forward, checkpoints and topology checks."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from models.checkpoint import TopologyMismatch, save_checkpoint
from models.face import synthface_template
from models.layers import SpiralConv
from models.s2d import build_s2d, landmark_displacement, load_s2d, normalize_landmarks


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    torch.manual_seed(0)
    return build_s2d(synthface_template(), tmp_path_factory.mktemp("cache"))


def test_architecture_matches_the_paper(model):
    convs = [m for m in model.decoder.modules() if isinstance(m, SpiralConv)]
    channels = [(c.linear.in_features // c.spirals.shape[1], c.linear.out_features) for c in convs]
    assert channels == [(128, 64), (64, 32), (32, 32), (32, 16), (16, 3)]
    assert model.fc.in_features == 204 and len(model.decoder.ups) == 4
    assert isinstance(convs[-1].activation, torch.nn.Identity)


def test_normalised_landmarks():
    lm = torch.randn(5, 68, 3) * 0.05 + 1.0
    n = normalize_landmarks(lm)
    assert torch.allclose(n.mean(-2), torch.zeros(5, 3), atol=1e-6)
    assert torch.allclose(n.flatten(-2).norm(dim=-1), torch.ones(5))
    # the motion input does not see the face's size or place
    assert torch.allclose(landmark_displacement(lm * 2 + 3, lm), torch.zeros(5, 68, 3), atol=1e-6)


def test_one_batched_forward(model):
    t = synthface_template()
    n = torch.from_numpy(t.vertices)[None].repeat(5, 1, 1)
    lm = torch.from_numpy(t.landmark_points())[None].repeat(5, 1, 1)
    d = torch.randn(5, 68, 3) * 0.003
    out = model(n, d, lm)
    assert out.vertices.shape == (5, t.n_vertices, 3)
    assert torch.allclose(out.vertices, n + out.displacement)
    single = model(n[2:3], d[2:3], lm[2:3])
    assert torch.allclose(single.vertices, out.vertices[2:3], atol=1e-6)   # rows independent
    meshes = model.decode(n.numpy(), lm.numpy(), lm.numpy() + 0.001)
    assert meshes.shape == (5, t.n_vertices, 3) and meshes.dtype == np.float32


def test_checkpoint_round_trip_from_metadata_alone(model, tmp_path):
    path = save_checkpoint(tmp_path / "s2d.safetensors", model.state_dict(), model.checkpoint_meta())
    back, meta = load_s2d(path, synthface_template().topology_id)
    assert meta.family == "s2d" and back.config == model.config
    t = synthface_template()
    n = torch.from_numpy(t.vertices)[None]
    lm = torch.from_numpy(t.landmark_points())[None]
    d = torch.randn(1, 68, 3) * 0.003
    model.eval()
    assert torch.equal(back(n, d, lm).vertices, model(n, d, lm).vertices)


def test_other_topology_is_refused_naming_both_ids(model, tmp_path):
    path = save_checkpoint(tmp_path / "s2d.safetensors", model.state_dict(), model.checkpoint_meta())
    with pytest.raises(TopologyMismatch, match=f"{model.config.topology_id}.*ffffffffffffffff"):
        load_s2d(path, "ffffffffffffffff")


def test_dense_reference_computes_the_same(model):
    from models.layers import SpiralTopology
    from models.s2d import S2DDecoder
    from trainers.bench.s2d import _dense_state

    dense = S2DDecoder(model.config, SpiralTopology.empty(model.config.sizes, model.config.spiral_lengths),
                       dense_reference=True)
    dense.load_state_dict(_dense_state(model, dense))
    t = synthface_template()
    n = torch.from_numpy(t.vertices)[None].repeat(2, 1, 1)
    lm = torch.from_numpy(t.landmark_points())[None].repeat(2, 1, 1)
    d = torch.randn(2, 68, 3) * 0.003
    model.eval()
    assert torch.allclose(dense(n, d, lm).vertices, model(n, d, lm).vertices, atol=1e-6)


def test_flame_topology_decodes(flame_template, tmp_path):
    m = build_s2d(flame_template, tmp_path)
    n = torch.from_numpy(flame_template.vertices)[None]
    lm = torch.from_numpy(flame_template.landmark_points())[None]
    out = m(n, torch.zeros(1, 68, 3), lm)
    assert out.vertices.shape == (1, 5023, 3) and torch.isfinite(out.vertices).all()
