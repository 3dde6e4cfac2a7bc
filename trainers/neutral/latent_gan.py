"""Training the latent GAN neutralizer (Kacem et al., 2021) within a CPU time budget.

Two phases through the shared loop (``trainers.loop.train``):

1. autoencoder pretraining (``pretrain_share`` of the budget): L1
   reconstruction of the normalised faces;
2. joint training, every part at once. For a batch of faces ``x`` with
   true neutrals ``x_n``, ``z = E(x)``, ``z_n = E(x_n)``, ``g = G(z)``::

       L = lambda_rec |D(z) - x| + lambda_L1 |D(g) - x_n| + lambda_l2l ||g - z_n||^2
           + lambda_GAN BCE(Disc(g | z), real) + lambda_id CE(C(g), identity)

   (meshes compared as normalised per-vertex offsets, as CoMA does; the
   latent target ``z_n`` is not differentiated through), then one
   discriminator step on (``z_n | z``) real against (``g | z``) fake.

The budget (``minutes``, at most ``MAX_MINUTES``) covers both phases; a loop
"epoch" is ``steps_per_epoch`` random batches, and the batches stop when the
budget ends, so the run ends on time. Training runs on ``threads`` torch
threads (1 by default), restored afterwards.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from models.checkpoint import save_checkpoint
from models.neutral.latent_gan import LatentGan, LatentGanConfig, build_latent_gan
from models.paths import data_dir
from trainers import loop
from trainers.loop import History, seed_everything
from trainers.neutral.data import NeutralSet
from trainers.neutral.evaluate import frame_ms, rank1, vertex_mm

#: the longest budget ``train_latent_gan`` accepts (minutes)
MAX_MINUTES = 30.0
#: "epochs" of the loop are a fixed number of batches; this many at most (the budget ends it first)
MAX_EPOCHS = 100_000
#: faces of the monitoring subset evaluated after each loop epoch
MONITOR_FACES = 32
#: faces per forward when computing the final metrics
EVAL_BATCH = 32
#: batch-1 calls timed for ``ms_per_frame``
TIMED_FRAMES = 20


@dataclass(frozen=True)
class LatentGanTrainConfig:
    """Optimisation settings (the method's own settings and loss weights are ``LatentGanConfig``)."""

    batch_size: int = 16
    lr: float = 1e-3                 #: Adam, autoencoder + generator + classifier
    lr_discriminator: float = 2e-4   #: Adam, discriminator
    betas: tuple[float, float] = (0.5, 0.999)
    pretrain_share: float = 0.25     #: share of the budget spent pretraining the autoencoder
    steps_per_epoch: int = 50
    seed: int = 0
    threads: int = 1

    def __post_init__(self) -> None:
        if not 0.0 <= self.pretrain_share < 1.0:
            raise ValueError("pretrain_share must lie in [0, 1)")
        if self.batch_size < 2 or self.steps_per_epoch < 1:
            raise ValueError("batch_size must be at least 2 and steps_per_epoch at least 1")


def evaluate_latent_gan(model: LatentGan, data: NeutralSet, timed_frames: int = TIMED_FRAMES) -> dict[str, float]:
    """Figures on ``data``'s expressive faces (mm): both outputs' AVDneu (mean, median), the
    autoencoder's E_rec, the do-nothing distance, rank-1 identification of the neutralised
    faces against ``data``'s true neutrals, the change of the neutral faces, and the
    milliseconds per face at batch 1."""
    idx = data.expressive()
    direct, residual, rec = (np.concatenate(parts) for parts in zip(
        *(model.outputs(data.meshes[idx[i:i + EVAL_BATCH]]) for i in range(0, len(idx), EVAL_BATCH))))
    target = data.targets(idx)
    d_err, r_err = vertex_mm(direct, target), vertex_mm(residual, target)
    still = data.meshes[data.labels == "neutral"]
    _, still_res, _ = model.outputs(still)
    return {
        "faces": int(len(idx)), "identities": int(data.n_subjects),
        "avd_direct_mm": float(d_err.mean()), "avd_direct_median_mm": float(np.median(d_err)),
        "avd_residual_mm": float(r_err.mean()), "avd_residual_median_mm": float(np.median(r_err)),
        "e_rec_mm": float(vertex_mm(rec, data.meshes[idx]).mean()),
        "input_to_neutral_mm": float(vertex_mm(data.meshes[idx], target).mean()),
        "rank1_direct": rank1(direct, data.subject[idx], data.neutrals),
        "rank1_residual": rank1(residual, data.subject[idx], data.neutrals),
        "neutral_change_mm": float(vertex_mm(still_res, still).mean()) if len(still) else float("nan"),
        "ms_per_frame": frame_ms(model, data.meshes[idx[:timed_frames]]),
    }


def train_latent_gan(train: NeutralSet, out: str | Path | None = None, minutes: float = 8.0,
                     config: LatentGanConfig = LatentGanConfig(), show_progress: bool = True, *,
                     train_config: LatentGanTrainConfig = LatentGanTrainConfig(),
                     test: NeutralSet | None = None, cache_dir: str | Path | None = None) -> LatentGan:
    """Train on ``train`` for ``minutes`` of wall time; write the checkpoint to ``out`` if given.

    Its metrics are ``evaluate_latent_gan`` on ``test`` when given (else on
    the training faces), with the training time and the loss history's end.
    ``train_config``: the optimisation settings; ``cache_dir``: where the mesh
    hierarchy is cached (default ``data_dir() / "cache"``).
    """
    if not 0.0 < minutes <= MAX_MINUTES:
        raise ValueError(f"minutes must lie in (0, {MAX_MINUTES:g}], got {minutes}")
    threads = torch.get_num_threads()
    torch.set_num_threads(train_config.threads)
    try:
        model, histories, seconds, steps = _fit(train, minutes * 60.0, config, train_config, cache_dir,
                                                show_progress)
        figures = evaluate_latent_gan(model, test if test is not None else train)
    finally:
        torch.set_num_threads(threads)
    model.metrics = {**figures, "evaluated_on": "test" if test is not None else "train",
                     "train_seconds": round(seconds, 1), "budget_minutes": minutes,
                     "pretrain_steps": steps["pretrain"], "joint_steps": steps["joint"],
                     **_ends(histories["pretrain"], "rec", "pretrain_rec"),
                     **_ends(histories["joint"], "loss", "joint_loss"),
                     **_ends(histories["joint"], "res", "joint_residual")}
    model.data = {"train": train.source, "test": test.source if test is not None else None,
                  "train_identities": int(train.n_subjects), "train_faces": len(train),
                  "train_config": asdict(train_config)}
    if out is not None:
        save_checkpoint(out, model.state_dict(), model.meta())
    return model


def _ends(history: History | None, key: str, name: str) -> dict[str, float]:
    """``{name_first, name_last}``: the first and last epoch means of ``key`` (nothing if never logged)."""
    values = history.series(key) if history is not None else []
    return {f"{name}_first": values[0], f"{name}_last": values[-1]} if values else {}


def _fit(data: NeutralSet, budget_s: float, config: LatentGanConfig, tc: LatentGanTrainConfig,
         cache_dir: str | Path | None,
         show_progress: bool) -> tuple[LatentGan, dict[str, History | None], float, dict[str, int]]:
    """The two phases; the model, each phase's history, the seconds taken and the steps of each phase."""
    start = time.perf_counter()
    steps = {"pretrain": 0, "joint": 0}
    seed_everything(tc.seed)
    model = build_latent_gan(data.template, cache_dir or data_dir() / "cache", config, n_identities=data.n_subjects)
    net = model.net.train()
    meshes = torch.from_numpy(data.meshes)
    neutrals = torch.from_numpy(data.neutrals)
    subject = torch.from_numpy(data.subject.astype(np.int64))
    net.set_normalisation(meshes)
    rng = np.random.default_rng(tc.seed)
    monitor = torch.from_numpy(rng.choice(data.expressive(), min(MONITOR_FACES, len(data.expressive())),
                                          replace=False))
    main = [p for name, p in net.named_parameters() if not name.startswith("discriminator.")]
    opt = torch.optim.Adam(main, lr=tc.lr, betas=tc.betas)
    opt_d = torch.optim.Adam(net.discriminator.parameters(), lr=tc.lr_discriminator, betas=tc.betas)

    def batches_until(deadline: float):
        def batches(epoch: int):
            for _ in range(tc.steps_per_epoch):
                if time.perf_counter() >= deadline:
                    return
                yield torch.from_numpy(rng.choice(len(data), tc.batch_size, replace=False))
        return batches

    def pretrain_step(idx: torch.Tensor) -> dict[str, float]:
        x = net.normalise(meshes[idx])
        rec = net.decode_normalised(net.encoder(x.transpose(0, 1), net.pyramid))
        loss = (rec - x).abs().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        steps["pretrain"] += 1
        return {"rec": float(loss.detach())}

    def joint_step(idx: torch.Tensor) -> dict[str, float]:
        b = len(idx)
        x, xn = net.normalise(meshes[idx]), net.normalise(neutrals[subject[idx]])
        z_all = net.encoder(torch.cat([x, xn]).transpose(0, 1), net.pyramid)
        z, zn = z_all[:b], z_all[b:].detach()
        g = net.generator(z)
        decoded = net.decode_normalised(torch.cat([z, g]))
        rec = (decoded[:b] - x).abs().mean()
        l1 = (decoded[b:] - xn).abs().mean()
        res = (x + decoded[b:] - decoded[:b] - xn).abs().mean()
        l2l = F.mse_loss(g, zn)
        fake = net.judge(g, z)
        gan = F.binary_cross_entropy_with_logits(fake, torch.ones_like(fake))
        ident = F.cross_entropy(net.classifier(g), subject[idx])
        loss = (config.lambda_rec * rec + config.lambda_l1 * l1 + config.lambda_l2l * l2l
                + config.lambda_gan * gan + config.lambda_id * ident + config.lambda_residual * res)
        opt.zero_grad()
        loss.backward()
        opt.step()
        real_logit = net.judge(zn, z.detach())
        fake_logit = net.judge(g.detach(), z.detach())
        d_loss = (F.binary_cross_entropy_with_logits(real_logit, torch.ones_like(real_logit))
                  + F.binary_cross_entropy_with_logits(fake_logit, torch.zeros_like(fake_logit)))
        opt_d.zero_grad()
        d_loss.backward()
        opt_d.step()
        steps["joint"] += 1
        parts = {"loss": loss, "rec": rec, "l1": l1, "res": res, "l2l": l2l, "gan": gan, "id": ident, "disc": d_loss}
        return {k: float(v.detach()) for k, v in parts.items()}

    @torch.no_grad()
    def evaluate(epoch: int) -> dict[str, float]:
        net.eval()
        res = net(meshes[monitor])
        net.train()
        target = data.neutrals[data.subject[monitor.numpy()]]
        return {"direct_mm": float(vertex_mm(res.direct.numpy(), target).mean()),
                "residual_mm": float(vertex_mm(res.residual.numpy(), target).mean())}

    histories: dict[str, History | None] = {"pretrain": None, "joint": None}
    pretrain_s = tc.pretrain_share * budget_s - (time.perf_counter() - start)
    if pretrain_s > 0:
        histories["pretrain"] = loop.train(pretrain_step, batches_until(time.perf_counter() + pretrain_s), MAX_EPOCHS,
              desc="latent_gan autoencoder", time_limit_s=pretrain_s, show_progress=show_progress)
    joint_s = max(budget_s - (time.perf_counter() - start), 1.0)
    histories["joint"] = loop.train(joint_step, batches_until(time.perf_counter() + joint_s), MAX_EPOCHS,
                                    desc="latent_gan joint", evaluate=evaluate, time_limit_s=joint_s,
                                    show_progress=show_progress)
    net.eval()
    return model, histories, time.perf_counter() - start, steps
