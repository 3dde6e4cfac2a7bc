"""Motion3DGAN's conditional WGAN-GP on the tangent space of the SRVF sphere.

Losses (Otberdout et al. 2022), with ``p`` the reference point,
``v = G(z, c)`` the generator's tangent vector and ``q`` a real SRVF of label
``c`` from the batch:

    critic     L_D = D(log_p(exp_p(v)), c) - D(log_p(q), c) + lambda GP     (lambda = 10)
    generator  L_G = -alpha1 D(log_p(exp_p(v)), c) + alpha2 L_r               (alpha1 = 1, alpha2 = 10)
    L_r = mean |log_p(exp_p(v)) - log_p(q)|                                   (L1, mean over elements)

GP is the gradient penalty of WGAN-GP at random points between real and
generated tangent vectors (Euclidean norm over all ``T x K`` entries).
``critic_steps`` critic updates per generator update (2; the official
code uses 4, which doubles the cost of an epoch on this CPU), Adam with
betas (0.5, 0.9) as the official code.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from models import srvf
from models.motion3dgan import Critic, Motion3DGAN, Motion3DGANConfig
from trainers.loop import History, seed_everything, train
from trainers.motion.data import MotionCurves

REFERENCES = ("karcher", "sample")


@dataclass(frozen=True)
class GanConfig:
    epochs: int = 200
    batch: int = 64
    lr: float = 2e-4
    critic_steps: int = 2                #: per generator step (the official code: 4; 2 fits the CPU budget)
    gp_lambda: float = 10.0
    alpha_adv: float = 1.0               #: alpha1
    alpha_rec: float = 10.0              #: alpha2
    reference: str = "karcher"           #: "karcher" (mean of the training SRVFs) or "sample"
    #: with "sample": the first training motion of this label (as the official code)
    reference_label: str = "mouth_up"
    karcher_iterations: int = 100
    eval_every: int = 10
    keep_best: str | None = "fid_train"  #: keep the generator of the monitored epoch lowest in this figure
    seed: int = 0
    time_limit_s: float | None = None


@dataclass
class Reference:
    """The reference point and how it was chosen."""

    point: torch.Tensor       #: [T, K] on the unit sphere
    kind: str
    detail: dict              #: Karcher iterations/variance, or the sample's index


def choose_reference(curves: MotionCurves, labels: list[str], cfg: GanConfig) -> Reference:
    """The Karcher mean of the training SRVFs, or one training sample (the official choice)."""
    q = curves.q.double()
    if cfg.reference == "karcher":
        km = srvf.karcher_mean(q, iterations=cfg.karcher_iterations)
        detail = {"iterations": km.iterations, "residual": km.residual, "variance": km.variance}
        point = km.mean
    elif cfg.reference == "sample":
        if cfg.reference_label not in labels:
            raise ValueError(f"reference label {cfg.reference_label!r} is not in the data's labels {labels}")
        index = int(torch.nonzero(curves.label == labels.index(cfg.reference_label))[0, 0])
        point = q[index]
        variance = float((srvf.geodesic_distance(point[None], q) ** 2).mean())
        detail = {"index": index, "label": cfg.reference_label, "variance": variance}
    else:
        raise ValueError(f"unknown reference {cfg.reference!r}; use one of {', '.join(REFERENCES)}")
    dist = srvf.geodesic_distance(point[None], q)
    detail["max_distance"] = float(dist.max())
    return Reference(point.float(), cfg.reference, detail)


def length_statistics(curves: MotionCurves, n_labels: int) -> dict[str, torch.Tensor]:
    """Per label: mean and std of log length, min and max length (``[L]`` each)."""
    out = {k: torch.zeros(n_labels) for k in ("log_length_mean", "log_length_std", "length_min", "length_max")}
    for label in range(n_labels):
        lengths = curves.length[curves.label == label].double()
        if len(lengths) == 0:
            raise ValueError(f"no training motion of label {label}: cannot learn its lengths")
        logs = torch.log(lengths)
        out["log_length_mean"][label] = logs.mean()
        out["log_length_std"][label] = logs.std() if len(lengths) > 1 else 0.0
        out["length_min"][label] = lengths.min()
        out["length_max"][label] = lengths.max()
    return out


def gradient_penalty(critic: Critic, real: torch.Tensor, fake: torch.Tensor, onehot: torch.Tensor) -> torch.Tensor:
    """``E[(|grad D(x)| - 1)^2]`` at random points ``x`` between real and fake critic inputs ``[B, ...]``."""
    alpha = torch.rand(real.shape[0], *([1] * (real.dim() - 1)), dtype=real.dtype)
    x = (real + alpha * (fake - real)).requires_grad_(True)
    grad, = torch.autograd.grad(critic(x, onehot).sum(), x, create_graph=True)
    return ((grad.flatten(1).norm(dim=1) - 1.0) ** 2).mean()


def generated_tangent(model: Motion3DGAN, z: torch.Tensor, label: torch.Tensor) -> torch.Tensor:
    """``log_p(exp_p(G(z, c)))`` ``[B, T, K]``: what the critic and ``L_r`` see."""
    return srvf.log_map(model.reference, srvf.exp_map(model.reference, model.tangent(z, label)))


def critic_loss(critic: Critic, real: torch.Tensor, fake: torch.Tensor, onehot: torch.Tensor,
                gp_lambda: float) -> tuple[torch.Tensor, dict[str, float]]:
    """WGAN-GP critic loss on tangent vectors ``[B, T, K]``; returns the loss and its parts."""
    d_real, d_fake = critic(real, onehot).mean(), critic(fake, onehot).mean()
    gp = gradient_penalty(critic, real, fake, onehot)
    loss = d_fake - d_real + gp_lambda * gp
    return loss, {"wasserstein": float((d_real - d_fake).detach()), "gp": float(gp.detach())}


def generator_loss(critic: Critic, fake: torch.Tensor, real: torch.Tensor, onehot: torch.Tensor,
                   alpha_adv: float, alpha_rec: float) -> tuple[torch.Tensor, dict[str, float]]:
    """``-alpha1 D(fake) + alpha2 L_r`` with ``L_r = mean |fake - real|`` over tangent vectors ``[B, T, K]``."""
    adv = -critic(fake, onehot).mean()
    rec = (fake - real).abs().mean()
    return alpha_adv * adv + alpha_rec * rec, {"g_adv": float(adv.detach()), "l_r": float(rec.detach())}


def train_gan(curves: MotionCurves, labels: list[str], cfg: GanConfig, model_cfg: Motion3DGANConfig | None = None,
              monitor: Callable[[Motion3DGAN], dict[str, float]] | None = None,
              show_progress: bool = True) -> tuple[Motion3DGAN, History, Reference]:
    """Train Motion3DGAN on the training motions.

    Args:
        curves: training motions (SRVFs, lengths, labels).
        labels: label names, in index order.
        cfg: the training configuration.
        model_cfg: the model's (default: ``Motion3DGANConfig(labels)``).
        monitor: called every ``cfg.eval_every`` epochs (and after the last)
            with the generator in eval mode; its figures join the history. With
            ``cfg.keep_best`` among them, the generator of the monitored epoch
            lowest in that figure is the one returned (its epoch is in the
            reference's ``detail``).

    Returns:
        The trained model (eval mode), its history and its reference point.
    """
    seed_everything(cfg.seed)
    model_cfg = model_cfg or Motion3DGANConfig(labels=tuple(labels), steps=curves.q.shape[1])
    model = Motion3DGAN(model_cfg)
    ref = choose_reference(curves, labels, cfg)
    model.reference.copy_(ref.point)
    for name, value in length_statistics(curves, model_cfg.n_labels).items():
        getattr(model, name).copy_(value)
    critic = Critic(model_cfg)
    opt_g = torch.optim.Adam(model.generator.parameters(), lr=cfg.lr, betas=(0.5, 0.9))
    opt_d = torch.optim.Adam(critic.parameters(), lr=cfg.lr, betas=(0.5, 0.9))
    with torch.no_grad():
        real_all = srvf.log_map(model.reference, curves.q)          # [N, T, K], fixed: p does not train
    n = len(curves)
    batch = min(cfg.batch, n)
    per_epoch = n // batch
    rng = np.random.default_rng(cfg.seed)

    def batches(epoch: int):
        order = torch.as_tensor(rng.permutation(n))
        for i in range(per_epoch):
            idx = order[i * batch:(i + 1) * batch]
            yield real_all[idx], curves.label[idx]

    def step(b) -> dict[str, float]:
        real, label = b
        onehot = model.onehot(label)
        for _ in range(cfg.critic_steps):
            with torch.no_grad():
                fake = generated_tangent(model, torch.randn(len(label), model_cfg.noise), label)
            loss_d, parts_d = critic_loss(critic, real, fake, onehot, cfg.gp_lambda)
            opt_d.zero_grad(set_to_none=True)
            loss_d.backward()
            opt_d.step()
        fake = generated_tangent(model, torch.randn(len(label), model_cfg.noise), label)
        loss_g, parts_g = generator_loss(critic, fake, real, onehot, cfg.alpha_adv, cfg.alpha_rec)
        opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        opt_g.step()
        return {"loss_d": float(loss_d.detach()), **parts_d, "loss_g": float(loss_g.detach()), **parts_g}

    best = {"value": float("inf"), "epoch": 0, "state": None}

    def evaluate(epoch: int) -> dict[str, float]:
        if monitor is None:
            return {}
        model.eval()
        try:
            figures = monitor(model)
        finally:
            model.train()
        value = figures.get(cfg.keep_best) if cfg.keep_best else None
        if value is not None and value < best["value"]:
            best.update(value=value, epoch=epoch + 1,
                        state={k: v.detach().clone() for k, v in model.generator.state_dict().items()})
        return figures

    history = train(step, batches, cfg.epochs, desc=f"motion3dgan ({ref.kind})", steps_per_epoch=per_epoch,
                    evaluate=evaluate if monitor else None, eval_every=cfg.eval_every,
                    time_limit_s=cfg.time_limit_s, show_progress=show_progress)
    if best["state"] is not None:
        model.generator.load_state_dict(best["state"])
        ref.detail.update(kept_epoch=best["epoch"], kept_by=cfg.keep_best, kept_value=best["value"])
    return model.eval(), history, ref
