"""The PointNet VAE neutralizer (FG 2023): an encoder of point sets, the anchored expression
decoder, a short training in both modes, checkpoints and topology refusal."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from models.checkpoint import TopologyMismatch
from models.constants import MM_PER_M
from models.face import synthface_template
from models.neutral import load_neutralizer
from models.neutral.pointnet_vae import (
    PointNetEncoder,
    PointNetVae,
    PointNetVaeConfig,
    build_pointnet_vae,
    farthest_points,
    load_pointnet_vae,
)
from trainers.neutral.data import NeutralDataConfig, synth_set
from trainers.neutral.pointnet_vae import (
    PointNetVaeTrainConfig,
    expression_groups,
    principal_components,
    train_pointnet_vae,
    uniform_laplacian,
)

#: the tiny trainings of the fixture (minutes of wall time)
TINY_MINUTES = 0.12
SMALL = PointNetVaeConfig(n_points=256, widths=(32, 64), hidden=(64,), z_id=8, z_exp=8, k_id=8, k_exp=12)


def mm(a, b) -> np.ndarray:
    return np.linalg.norm(a - b, axis=-1).mean(axis=-1) * MM_PER_M


def test_the_encoder_sees_a_set_not_a_sequence():
    torch.manual_seed(0)
    enc = PointNetEncoder(3, (16, 32), z_id=4, z_exp=5, batch_norm=True).eval()
    pts = torch.randn(3, 50, 3)
    a_id, a_exp = enc(pts)
    b_id, b_exp = enc(pts[:, torch.randperm(50)])
    assert a_id.mu.shape == (3, 4) and a_exp.logvar.shape == (3, 5)
    assert torch.allclose(a_id.mu, b_id.mu, atol=1e-6) and torch.allclose(a_exp.mu, b_exp.mu, atol=1e-6)


@pytest.mark.parametrize("pooling", ["max", "mean", "max_mean"])
def test_inference_folds_the_batch_norms_and_gives_the_module_path_s_latents(pooling):
    torch.manual_seed(1)
    enc = PointNetEncoder(3, (16, 32, 48), z_id=4, z_exp=5, batch_norm=True, pooling=pooling)
    for _ in range(3):                                  # running statistics away from their initial values
        enc(torch.randn(4, 40, 3) * 2 + 0.5)
    with torch.no_grad():                               # learned affine parts too, negative scales included
        for m in enc.modules():
            if isinstance(m, torch.nn.BatchNorm1d):
                m.weight.uniform_(-1.5, 1.5), m.bias.uniform_(-0.5, 0.5)
    enc.eval()
    pts = torch.randn(3, 40, 3)
    slow = enc(pts)                                     # grad enabled: the module path
    with torch.no_grad():
        fast = enc(pts)                                 # the folded path
    for a, b in zip(slow, fast):
        assert torch.allclose(a.mu, b.mu, atol=1e-5) and torch.allclose(a.logvar, b.logvar, atol=1e-5)


def test_farthest_points_spread_over_the_face():
    t = synthface_template()
    idx = farthest_points(t.vertices, 64)
    assert len(np.unique(idx)) == 64 and (np.diff(idx) > 0).all()
    rng = np.random.default_rng(0)
    chosen = np.asarray(t.vertices)[idx]
    random = np.asarray(t.vertices)[rng.choice(t.n_vertices, 64, replace=False)]
    gap = lambda p: np.linalg.norm(p[:, None] - p[None], axis=-1)[~np.eye(64, dtype=bool)].min()   # noqa: E731
    assert gap(chosen) > 2 * gap(random)


def test_an_untrained_model_leaves_faces_as_they_are():
    # the expression decoder is anchored (X_exp(0) = 0) and its basis starts at zero
    t = synthface_template()
    model = build_pointnet_vae(t, SMALL)
    faces = np.asarray(t.vertices, np.float32)[None] + np.random.default_rng(0).normal(0, 1e-3, (2, t.n_vertices, 3))
    assert np.array_equal(model.neutralize(faces), faces.astype(np.float32))
    with pytest.raises(ValueError, match="route"):
        model.neutralize(faces, route="sideways")


def test_the_decoder_bases_and_the_laplacian():
    x = np.random.default_rng(1).normal(size=(200, 6)) * [5, 3, 1, 0, 0, 0]
    b = principal_components(x - x.mean(0), 4)
    assert b.shape == (4, 6) and np.allclose(np.linalg.norm(b[:3], axis=1), [5, 3, 1], rtol=0.15)
    assert np.allclose(b[3], 0.0, atol=1e-4)                         # past the data's rank
    t = synthface_template()
    lap = uniform_laplacian(t.faces, t.n_vertices)
    assert np.allclose(lap @ np.ones(t.n_vertices), 0.0)             # constants are smooth


@pytest.fixture(scope="module")
def data():
    train = synth_set(NeutralDataConfig(identities=10, expressions=6), show_progress=False)
    test = synth_set(NeutralDataConfig(identities=4, expressions=6, split="test"), show_progress=False)
    return train, test


def test_expression_groups_split_labels_by_intensity(data):
    train, _ = data
    group, names = expression_groups(train, levels=3)
    assert (group[train.labels == "mix"] == -1).all()
    assert "neutral/0" in names and "neutral/1" not in names
    labelled = train.labels != "mix"
    assert (group[labelled] >= 0).all()


@pytest.fixture(scope="module", params=[False, True], ids=["no_gt", "gt"])
def trained(request, data, tmp_path_factory):
    train, test = data
    path = tmp_path_factory.mktemp("vae") / "vae.safetensors"
    model = train_pointnet_vae(train, path, TINY_MINUTES, neutral_gt=request.param,
                               config=PointNetVaeTrainConfig(model=SMALL, batch_pairs=4, steps_per_epoch=5,
                                                                  pretrain_share=0.4),
                               show_progress=False, test=test)
    return model, path, test


def test_training_runs_in_both_modes_and_records_its_figures(trained):
    model, _, test = trained
    m = model.metrics
    assert m["pretrain_steps"] > 0 and m["joint_steps"] > 0 and m["evaluated_on"] == "test"
    for key in ("avd_direct_mm", "avd_residual_mm", "e_rec_mm", "transfer_residual_mm", "ms_per_frame"):
        assert np.isfinite(m[key]), key
    assert model.name == ("pointnet_vae_gt" if model.config.neutral_gt else "pointnet_vae")
    out = model.outputs(test.meshes[:3])
    assert out["residual"].shape == (3, test.template.n_vertices, 3) and out["residual"].dtype == np.float32


def test_latent_swap_transfer_keeps_the_target_and_adds_the_source_expression(trained):
    model, _, test = trained
    a, b = test.expressive()[:3], test.neutrals[:3]
    moved = model.transfer(test.meshes[a], b)
    expression = test.meshes[a] - model.neutralize(test.meshes[a])          # x - (x - X_exp) = X_exp
    assert np.allclose(moved, b + expression, atol=1e-6)
    with pytest.raises(ValueError, match="as many faces"):
        model.transfer(test.meshes[a], b[:2])


def test_checkpoint_round_trip_and_topology_refusal(trained):
    model, path, test = trained
    back = load_neutralizer(path, test.template.topology_id)
    assert isinstance(back, PointNetVae) and back.config == model.config and back.name == model.name
    faces = test.meshes[:4]
    assert np.array_equal(back.neutralize(faces), model.neutralize(faces))
    assert np.array_equal(back.reconstruct(faces), model.reconstruct(faces))
    with pytest.raises(TopologyMismatch, match="vae.safetensors"):
        load_pointnet_vae(path, "0123456789abcdef")
