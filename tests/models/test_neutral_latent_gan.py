"""The latent GAN neutralizer: Chebyshev convolution against a dense reference, a short
training, checkpoints and topology refusal, and neutral faces left (nearly) alone."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import trimesh

from models.checkpoint import TopologyMismatch
from models.constants import MM_PER_M
from models.neutral import load_neutralizer
from models.neutral.latent_gan import ChebConv, LatentGan, build_latent_gan, load_latent_gan, scaled_laplacian
from trainers.neutral.data import NeutralDataConfig, synth_set
from trainers.neutral.latent_gan import LatentGanTrainConfig, train_latent_gan

#: the tiny training of the fixture (minutes of wall time)
TINY_MINUTES = 0.15


def dense_scaled_laplacian(faces: np.ndarray, n: int) -> np.ndarray:
    """``2 L / 2 - I`` with ``L = I - D^-1/2 A D^-1/2``, built densely from the faces."""
    a = np.zeros((n, n))
    for i, j in np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]]):
        a[i, j] = a[j, i] = 1.0
    d = 1.0 / np.sqrt(a.sum(1))
    lap = np.eye(n) - d[:, None] * a * d[None, :]
    return lap - np.eye(n)


def dense_cheb(x: torch.Tensor, lap: torch.Tensor, conv: ChebConv) -> torch.Tensor:
    """``sum_k T_k x W_k + b`` with ``T_k = 2 L T_{k-1} - T_{k-2}``: ``x [N, B, C]``."""
    n, b, c = x.shape
    w = conv.linear.weight.reshape(conv.linear.out_features, conv.k, c)
    terms = [x, torch.einsum("nm,mbc->nbc", lap, x)]
    while len(terms) < conv.k:
        terms.append(2 * torch.einsum("nm,mbc->nbc", lap, terms[-1]) - terms[-2])
    return sum(torch.einsum("nbc,oc->nbo", t, w[:, k]) for k, t in enumerate(terms[:conv.k])) + conv.linear.bias


@pytest.mark.parametrize("channels", [(3, 5), (6, 2)])      # basis first / transform first (Clenshaw)
def test_chebconv_matches_dense_reference(channels):
    mesh = trimesh.creation.icosphere(subdivisions=2)
    n = len(mesh.vertices)
    index, value = scaled_laplacian(mesh.faces, n)
    dense = torch.tensor(dense_scaled_laplacian(mesh.faces, n), dtype=torch.float64)
    sparse = torch.sparse_coo_tensor(torch.from_numpy(index), torch.from_numpy(value).double(), (n, n),
                                     check_invariants=True)
    assert torch.allclose(sparse.to_dense(), dense, rtol=0.0, atol=1e-7)     # float32 values
    dense = sparse.to_dense()                                                  # the recurrence on the same numbers
    torch.manual_seed(0)
    conv = ChebConv(*channels, k=6).double()
    x = torch.randn(n, 4, channels[0], dtype=torch.float64, requires_grad=True)
    y = conv(x, sparse.coalesce())
    ref = dense_cheb(x, dense, conv)
    assert torch.allclose(y, ref, atol=1e-10)
    # the gradients too (the backward of the sparse products)
    g = torch.randn_like(y)
    (grad_sparse,) = torch.autograd.grad((y * g).sum(), x)
    (grad_dense,) = torch.autograd.grad((ref * g).sum(), x)
    assert torch.allclose(grad_sparse, grad_dense, atol=1e-10)


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    """A cache folder holding SynthFace's mesh hierarchy (built once here, a few seconds)."""
    from models.face import synthface_template
    from models.geometry.sampling import cached_hierarchy

    folder = tmp_path_factory.mktemp("cache")
    t = synthface_template()
    cached_hierarchy(t.vertices, t.faces, t.topology_id, folder)
    return folder


@pytest.fixture(scope="module")
def trained(cache, tmp_path_factory):
    """A tiny model trained for a few seconds on 8 identities, and its checkpoint."""
    data = synth_set(NeutralDataConfig(identities=8, expressions=5), show_progress=False)
    path = tmp_path_factory.mktemp("latent_gan") / "latent_gan.safetensors"
    model = train_latent_gan(data, path, TINY_MINUTES, show_progress=False, cache_dir=cache,
                             train_config=LatentGanTrainConfig(batch_size=4, steps_per_epoch=5, pretrain_share=0.4))
    return model, path, data


def test_short_training_lowers_the_loss(trained):
    model, _, data = trained
    m = model.metrics
    assert m["pretrain_steps"] > 0 and m["joint_steps"] > 0
    assert m["pretrain_rec_last"] < m["pretrain_rec_first"]
    assert m["joint_loss_last"] < m["joint_loss_first"]
    direct, residual, rec = model.outputs(data.meshes[:3])
    assert direct.shape == residual.shape == rec.shape == (3, data.template.n_vertices, 3)
    assert direct.dtype == np.float32 and np.isfinite(direct).all()
    # the residual output is the input moved by the decoded latent change
    assert np.allclose(residual, data.meshes[:3] + direct - rec, atol=1e-6)


def test_checkpoint_round_trip_gives_identical_outputs(trained):
    model, path, data = trained
    back = load_latent_gan(path, data.template.topology_id)
    assert isinstance(back, LatentGan) and back.config == model.config
    assert back.meta().config == model.meta().config and back.metrics == model.metrics
    faces = data.meshes[:4]
    assert np.array_equal(back.neutralize(faces), model.neutralize(faces))
    assert np.array_equal(back.reconstruct(faces), model.reconstruct(faces))
    assert isinstance(load_neutralizer(path), LatentGan)
    assert path.stat().st_size < 6 * 2 ** 20


def test_wrong_topology_is_refused_naming_the_file(trained):
    _, path, _ = trained
    with pytest.raises(TopologyMismatch, match="latent_gan.safetensors"):
        load_latent_gan(path, "0123456789abcdef")


def test_residual_leaves_a_neutral_face_nearly_unchanged(trained):
    model, _, data = trained
    neutral = data.neutrals
    change = np.linalg.norm(model.neutralize(neutral) - neutral, axis=-1).mean(axis=-1) * MM_PER_M
    assert change.mean() < 0.5


def test_an_untrained_model_starts_as_do_nothing(cache):
    # the generator's skip connection starts at the identity: the residual output is the input
    from models.face import synthface_template

    template = synthface_template()
    model = build_latent_gan(template, cache)
    faces = template.vertices[None] + np.random.default_rng(0).normal(0, 1e-3, (2, template.n_vertices, 3))
    assert np.allclose(model.neutralize(faces), faces, atol=1e-6)
