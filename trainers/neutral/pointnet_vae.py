"""Training the PointNet VAE neutralizer (FG 2023) within a CPU time budget.

Batches are pairs: ``batch_pairs`` random faces ``a`` and, for each, another
face ``b`` of the same identity, encoded together (``x = [a; b]``). For a
batch, with ``z ~ q(z | x)`` and meshes compared as per-vertex offsets in
millimetres (mean squared per vertex)::

    rec       |mean + X_id(z_id) + X_exp(z_exp) - x|^2              both modes
    kl        KL(q(z_id | x) || N(0, I)) + KL(q(z_exp | x) || N(0, I))
    lap       |L X_id|^2 + |L X_exp|^2, L the mesh's uniform Laplacian (smooth offsets)
    latent    |mu_id(n) - mu_id(x)|_1 with n = mean + X_id(z_id): the decoded
              identity-only face re-encodes to the same identity ...
    zero      |X_exp(mu_exp(n))|^2 ... and to no expression
    disc      -log D(mu_id(x), mu_id(n)) - log D(mu_id(a), mu_id(b)): the pair
              discriminator judges the decoded neutral, and the other face of
              the same person, to be the same person as the face

    with the true neutrals (``neutral_gt=True``, "pointnet_vae_gt"):
    neutral   |mean + X_id(z_id) - x_neutral|^2 + |X_exp(z_exp) - (x - x_neutral)|^2
              (the paper's GT losses; it adds the second on BU3DFE)

    without them (``neutral_gt=False``, "pointnet_vae", the paper's main setting):
    exp       |X_exp(z_exp) - E[label, level]|^2, the training faces' mean offset
              from the mean face over every face of the same expression label and
              intensity level (the paper's "average expression" target); faces
              labelled "neutral" get the mean neutral's offset, which is zero as
              the mean face here *is* the mean of the faces labelled neutral
    same_id   |mu_id(a) - mu_id(b)|_1: identity latents of one person pulled together

What the no-GT mode uses, exactly: each face's identity index (to draw the
pairs; the paper's discriminator pairs use it too), its expression label
(``"mix"`` faces get no ``exp`` term), an intensity level per label (the
terciles of the ARKit weight norm within the label, standing in for the
paper's annotated levels; one level where weights are unknown), and which
faces are labelled ``"neutral"`` (only through their mean, the mean face, and
the ``exp`` target of that label). It never pairs a face with its own
identity's neutral, and the bases below come from the faces alone.

The identity discriminator ``D(z_a, z_b)`` (an MLP on ``[z_a * z_b, |z_a -
z_b|]``, symmetric) works on identity latents. It is pretrained for the
first ``pretrain_share`` of the budget, while the VAE trains without the
``disc`` term, on real pairs: same person (``a``, ``b``) against different
people; then jointly, also learning the (face, its decoded neutral) pairs as
"not a real pair" as the paper's mesh discriminator does.

The decoders' bases (``PointNetVaeConfig.k_id``, ``k_exp``) are principal
components: with the true neutrals, of the neutrals (identity) and of the
faces' offsets from their neutral (expression); without them, of the
identities' mean faces (identity) and of the faces' offsets from their
identity's mean face (expression). Each component is scaled to its standard
deviation so that the decoders output unit-size coefficients.

The budget (``minutes``, at most ``MAX_MINUTES``) covers everything; the
learning rate decays exponentially with the elapsed share of it; training
runs on ``threads`` torch threads (1 by default), restored afterwards.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import scipy.sparse as sp
import torch
import torch.nn.functional as F
from torch import nn

from models.checkpoint import save_checkpoint
from models.constants import MM_PER_M
from models.neutral.pointnet_vae import PointNetVae, PointNetVaeConfig, build_pointnet_vae, mlp
from trainers import loop
from trainers.loop import History, seed_everything
from trainers.neutral.data import NeutralSet
from trainers.neutral.evaluate import frame_ms, transfer_pairs, vertex_mm

#: the longest budget ``train_pointnet_vae`` accepts (minutes)
MAX_MINUTES = 30.0
#: the loop's "epochs" are a fixed number of batches; this many at most (the budget ends it first)
MAX_EPOCHS = 100_000
#: faces of the monitoring subset evaluated after each loop epoch
MONITOR_FACES = 64
#: faces per forward when computing metrics
EVAL_BATCH = 64
#: batch-1 calls timed for ``ms_per_frame``
TIMED_FRAMES = 20
#: (face, other identity) pairs for the transfer figures
TRANSFER_PAIRS = 240
#: extra components computed by the randomised PCA beyond those kept
PCA_OVERSAMPLE = 16
#: power iterations of the randomised PCA
PCA_ITERATIONS = 4
#: expression labels that get no ``exp`` target (no shared expression)
UNLABELLED = ("mix",)


@dataclass(frozen=True)
class PointNetVaeTrainConfig:
    """Optimisation settings and loss weights (the architecture is ``model``; offsets in mm)."""

    model: PointNetVaeConfig = field(default_factory=PointNetVaeConfig)
    batch_pairs: int = 16              #: same-identity pairs per batch (2 x this faces)
    lr: float = 1e-3                   #: Adam, VAE
    lr_final_share: float = 0.03       #: the VAE's lr decays to this share of ``lr`` by the budget's end
    lr_discriminator: float = 1e-3     #: Adam, discriminator
    kl: float = 1e-4
    neutral: float = 1.0               #: GT mode: neutral + expression-offset terms
    exp: float = 0.5                   #: no-GT mode: the average-expression target (paper: 0.5 x rec)
    exp_final_share: float = 0.1       #: ... decaying to this share of it by the budget's end
    exp_levels: int = 3                #: intensity levels per label for that target
    same_id: float = 1e-2
    latent: float = 1e-2
    zero: float = 1.0
    laplacian: float = 1.0
    disc: float = 1e-3
    pretrain_share: float = 0.1        #: share of the budget before the ``disc`` term joins
    disc_hidden: tuple[int, ...] = (128, 64)
    steps_per_epoch: int = 25
    seed: int = 0
    threads: int = 1

    def __post_init__(self) -> None:
        if not 0.0 <= self.pretrain_share < 1.0:
            raise ValueError("pretrain_share must lie in [0, 1)")
        if self.batch_pairs < 2 or self.steps_per_epoch < 1 or self.exp_levels < 1:
            raise ValueError("batch_pairs must be at least 2, steps_per_epoch and exp_levels at least 1")


# ---- the training-only parts -------------------------------------------------------------------

class PairDiscriminator(nn.Module):
    """``D(z_a, z_b)``: the logit that two identity latents ``[B, Z]`` are one person's (symmetric)."""

    def __init__(self, z: int, hidden: tuple[int, ...]):
        super().__init__()
        self.net = mlp([2 * z, *hidden, 1])

    def forward(self, za: torch.Tensor, zb: torch.Tensor) -> torch.Tensor:
        return self.net(torch.cat([za * zb, (za - zb).abs()], dim=1))[:, 0]


def uniform_laplacian(faces: np.ndarray, n_vertices: int) -> sp.csr_matrix:
    """``L = I - D^-1 A`` of the mesh graph (each vertex minus its neighbours' mean), ``[N, N]``."""
    f = np.asarray(faces, np.int64)
    i = np.concatenate([f[:, 0], f[:, 1], f[:, 2], f[:, 1], f[:, 2], f[:, 0]])
    j = np.concatenate([f[:, 1], f[:, 2], f[:, 0], f[:, 0], f[:, 1], f[:, 2]])
    a = sp.coo_matrix((np.ones(len(i)), (i, j)), shape=(n_vertices, n_vertices)).tocsr()
    a.data[:] = 1.0                                   # each edge once, whatever its face count
    degree = np.asarray(a.sum(axis=1)).ravel()
    inv = sp.diags(np.where(degree > 0, 1.0 / np.maximum(degree, 1.0), 0.0))
    return (sp.identity(n_vertices) - inv @ a).tocsr()


def sparse_tensor(m: sp.spmatrix) -> torch.Tensor:
    """A scipy sparse matrix as a float32 torch COO tensor (checked once when built)."""
    m = m.tocoo()
    index = torch.from_numpy(np.stack([m.row, m.col]).astype(np.int64))
    return torch.sparse_coo_tensor(index, torch.from_numpy(m.data.astype(np.float32)), m.shape,
                                   check_invariants=True).coalesce()


def laplacian_energy(lap: torch.Tensor, offsets: torch.Tensor) -> torch.Tensor:
    """Mean ``|L o|^2`` per vertex of offsets ``[B, N, 3]`` (their units squared)."""
    b, n, _ = offsets.shape
    lo = lap @ offsets.permute(1, 0, 2).reshape(n, 3 * b)
    return lo.pow(2).sum() / (b * n)


def principal_components(x: np.ndarray, k: int, seed: int = 0) -> np.ndarray:
    """The ``k`` leading principal directions of rows ``x [M, D]`` (not centred here), each scaled
    to the data's RMS along it: ``float32 [k, D]`` (zero rows past the data's rank ``min(M, D)``)."""
    t = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
    out = np.zeros((k, t.shape[1]), np.float32)
    r = min(k, *t.shape)
    torch.manual_seed(seed)
    _, s, v = torch.svd_lowrank(t, q=min(r + PCA_OVERSAMPLE, *t.shape), niter=PCA_ITERATIONS)
    out[:r] = (v[:, :r].T * (s[:r, None] / np.sqrt(len(t)))).numpy()
    return out


def subject_means(meshes: np.ndarray, subject: np.ndarray, n_subjects: int) -> np.ndarray:
    """Each identity's mean face ``[S, N, 3]`` (float64 sums)."""
    sums = np.zeros((n_subjects, *meshes.shape[1:]))
    np.add.at(sums, subject, meshes)
    counts = np.bincount(subject, minlength=n_subjects).astype(np.float64)
    return (sums / np.maximum(counts, 1.0)[:, None, None]).astype(np.float32)


def mean_face(data: NeutralSet, neutral_gt: bool) -> np.ndarray:
    """The model's mean face ``[N, 3]``: the mean true neutral, or (no GT) the mean of the faces
    labelled neutral (of every face if none is)."""
    if neutral_gt:
        return data.mean_neutral()
    still = data.labels == "neutral"
    return data.meshes[still if still.any() else slice(None)].mean(axis=0).astype(np.float32)


def decoder_bases(data: NeutralSet, mean: np.ndarray, cfg: PointNetVaeConfig, seed: int = 0
                  ) -> tuple[np.ndarray, np.ndarray]:
    """The identity and expression bases ``([k_id, 3N], [k_exp, 3N])`` (see the module docstring)."""
    m = len(data)
    if cfg.neutral_gt:
        ids = data.neutrals - mean
        exps = data.meshes - data.targets(slice(None))
    else:
        means = subject_means(data.meshes, data.subject, data.n_subjects)
        ids = means - means.mean(axis=0)
        exps = data.meshes - means[data.subject]
    b_id = principal_components(ids.reshape(len(ids), -1), cfg.k_id, seed) if cfg.k_id else np.zeros(0)
    b_exp = principal_components(exps.reshape(m, -1), cfg.k_exp, seed) if cfg.k_exp else np.zeros(0)
    return b_id.astype(np.float32), b_exp.astype(np.float32)


def expression_groups(data: NeutralSet, levels: int) -> tuple[np.ndarray, list[str]]:
    """Each face's (label, intensity level) group ``int64 [M]`` (-1: no target) and the groups' names.

    The level is the tercile (for ``levels = 3``) of the face's ARKit weight
    norm among the faces of its label; one level where weights are unknown."""
    group = np.full(len(data), -1, np.int64)
    names: list[str] = []
    norm = np.linalg.norm(np.nan_to_num(data.weights, nan=0.0), axis=1)
    known = np.isfinite(data.weights).all(axis=1)
    for label in sorted(set(data.labels.tolist()) - set(UNLABELLED)):
        idx = np.flatnonzero(data.labels == label)
        n_levels = levels if label != "neutral" and known[idx].all() and len(idx) >= levels else 1
        rank = np.argsort(np.argsort(norm[idx], kind="stable"), kind="stable")
        level = rank * n_levels // len(idx)
        for lv in range(n_levels):
            group[idx[level == lv]] = len(names)
            names.append(f"{label}/{lv}")
    return group, names


def expression_targets(data: NeutralSet, mean: np.ndarray, group: np.ndarray, n_groups: int) -> np.ndarray:
    """Each group's mean offset from the mean face ``float32 [G, N, 3]`` (metres)."""
    out = np.zeros((n_groups, *mean.shape), np.float32)
    for g in range(n_groups):
        out[g] = data.meshes[group == g].mean(axis=0) - mean
    return out


def mse_mm(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Mean squared per-vertex distance of meshes or offsets ``[B, N, 3]`` in metres, in mm^2."""
    return ((a - b) * MM_PER_M).pow(2).sum(dim=-1).mean()


# ---- evaluation --------------------------------------------------------------------------------

def evaluate_pointnet_vae(model: PointNetVae, data: NeutralSet, timed_frames: int = TIMED_FRAMES,
                          transfer: int = TRANSFER_PAIRS, seed: int = 0) -> dict[str, float]:
    """Figures on ``data``'s expressive faces (mm): both routes' AVDneu (mean, median), E_rec, the
    do-nothing distance, the change of the neutral faces, both transfer routes (A's expression on
    B's neutral against B's true mesh for A's weights; SynthFace sets only) and ms per face at batch 1."""
    idx = data.expressive()
    parts = [model.outputs(data.meshes[idx[i:i + EVAL_BATCH]]) for i in range(0, len(idx), EVAL_BATCH)]
    out = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    target = data.targets(idx)
    d_err, r_err = vertex_mm(out["direct"], target), vertex_mm(out["residual"], target)
    still = data.meshes[data.labels == "neutral"]
    figures = {
        "faces": int(len(idx)), "identities": int(data.n_subjects),
        "avd_direct_mm": float(d_err.mean()), "avd_direct_median_mm": float(np.median(d_err)),
        "avd_residual_mm": float(r_err.mean()), "avd_residual_median_mm": float(np.median(r_err)),
        "e_rec_mm": float(vertex_mm(out["reconstruction"], data.meshes[idx]).mean()),
        "input_to_neutral_mm": float(vertex_mm(data.meshes[idx], target).mean()),
        "neutral_change_mm": (float(vertex_mm(model.neutralize(still), still).mean()) if len(still)
                              else float("nan")),
    }
    if transfer and data.source.get("kind") == "synthface" and data.n_subjects > 1:
        from models.face import synthface

        a, b = transfer_pairs(data, transfer, seed)
        truth = synthface().vertices(data.identity[b], data.weights[a]).astype(np.float32)
        for route in ("residual", "direct"):
            moved = np.concatenate([model.transfer(data.meshes[a[i:i + EVAL_BATCH]], data.neutrals[b[i:i + EVAL_BATCH]],
                                                   route=route) for i in range(0, len(a), EVAL_BATCH)])
            figures[f"transfer_{route}_mm"] = float(vertex_mm(moved, truth).mean())
        figures["transfer_true_displacement_mm"] = float(
            vertex_mm(data.neutrals[b] + data.meshes[a] - data.targets(a), truth).mean())
    if timed_frames:
        figures["ms_per_frame"] = frame_ms(model, data.meshes[idx[:timed_frames]])
    return figures


# ---- training ----------------------------------------------------------------------------------

def train_pointnet_vae(train: NeutralSet, out: str | Path | None = None, minutes: float = 8.0,
                       neutral_gt: bool = False, config: PointNetVaeTrainConfig | None = None,
                       show_progress: bool = True, *, test: NeutralSet | None = None) -> PointNetVae:
    """Train on ``train`` for ``minutes`` of wall time; write the checkpoint to ``out`` if given.

    ``neutral_gt`` picks the mode (it overrides ``config.model.neutral_gt``).
    The checkpoint's metrics are ``evaluate_pointnet_vae`` on ``test`` when
    given (else on the training faces), with the training time and steps."""
    if not 0.0 < minutes <= MAX_MINUTES:
        raise ValueError(f"minutes must lie in (0, {MAX_MINUTES:g}], got {minutes}")
    tc = config or PointNetVaeTrainConfig()
    tc = replace(tc, model=replace(tc.model, neutral_gt=bool(neutral_gt)))
    threads = torch.get_num_threads()
    torch.set_num_threads(tc.threads)
    try:
        model, history, seconds, steps = _fit(train, minutes * 60.0, tc, show_progress)
        figures = evaluate_pointnet_vae(model, test if test is not None else train, seed=tc.seed)
    finally:
        torch.set_num_threads(threads)
    final = history.epochs[-1] if history.epochs else {}
    model.metrics = {**figures, "evaluated_on": "test" if test is not None else "train",
                     "train_seconds": round(seconds, 1), "budget_minutes": minutes, **steps,
                     **{f"final_{k}": v for k, v in final.items() if k not in ("epoch", "seconds")}}
    train_config = asdict(tc)
    train_config.pop("model")
    model.data = {"train": train.source, "test": test.source if test is not None else None,
                  "train_identities": int(train.n_subjects), "train_faces": len(train),
                  "train_config": train_config}
    if out is not None:
        save_checkpoint(out, model.state_dict(), model.meta())
    return model


def _prepare(model: PointNetVae, data: NeutralSet, tc: PointNetVaeTrainConfig) -> np.ndarray:
    """Set the fixed tensors from the training faces; the mean face ``[N, 3]``."""
    cfg = model.config
    net = model.net
    mean = mean_face(data, cfg.neutral_gt)
    b_id, b_exp = decoder_bases(data, mean, cfg, tc.seed)
    offsets = data.meshes - mean
    rms = float(np.sqrt((offsets.astype(np.float64) ** 2).sum(axis=-1).mean()))
    with torch.no_grad():
        net.mean.copy_(torch.from_numpy(mean))
        net.center.copy_(torch.from_numpy(mean.mean(axis=0)))
        net.scale.fill_(float(np.sqrt(((mean - mean.mean(axis=0)) ** 2).sum(axis=1).mean())))
        net.offset_scale.fill_(max(rms, 1e-6))
        for dec, basis in ((net.id_decoder, b_id), (net.exp_decoder, b_exp)):
            if basis.size:
                dec.basis.copy_(torch.from_numpy(basis))
            else:
                dec.scale.fill_(max(rms, 1e-6))
    return mean


def _fit(data: NeutralSet, budget_s: float, tc: PointNetVaeTrainConfig, show_progress: bool
         ) -> tuple[PointNetVae, History, float, dict[str, int]]:
    """Pretraining and joint phases; the model, the joint history, the seconds taken, the steps."""
    start = time.perf_counter()
    steps = {"pretrain_steps": 0, "joint_steps": 0}
    seed_everything(tc.seed)
    model = build_pointnet_vae(data.template, tc.model)
    cfg = model.config
    _prepare(model, data, tc)
    net = model.net.train()
    disc = PairDiscriminator(cfg.z_id, tc.disc_hidden)
    opt = torch.optim.Adam(net.parameters(), lr=tc.lr)
    opt_d = torch.optim.Adam(disc.parameters(), lr=tc.lr_discriminator)
    lap = sparse_tensor(uniform_laplacian(data.template.faces, cfg.n_vertices))

    meshes = torch.from_numpy(data.meshes)
    neutrals = torch.from_numpy(data.neutrals)
    subject = data.subject.astype(np.int64)
    if not cfg.neutral_gt:
        group, names = expression_groups(data, tc.exp_levels)
        targets = torch.from_numpy(expression_targets(data, net.mean.numpy(), group, len(names)))
        group_t = torch.from_numpy(group)
    members = [np.flatnonzero(subject == s) for s in range(data.n_subjects)]
    rng = np.random.default_rng(tc.seed)
    monitor = torch.from_numpy(rng.choice(data.expressive(), min(MONITOR_FACES, len(data.expressive())),
                                          replace=False))

    def draw_pairs() -> np.ndarray:
        """``2 x batch_pairs`` face indices: ``a`` then, for each, another face ``b`` of its identity."""
        a = rng.choice(len(data), tc.batch_pairs, replace=len(data) < tc.batch_pairs)
        b = np.array([rng.choice(members[subject[i]]) for i in a])
        return np.concatenate([a, b])

    def batches_until(deadline: float):
        def batches(epoch: int):
            for _ in range(tc.steps_per_epoch):
                if time.perf_counter() >= deadline:
                    return
                yield torch.from_numpy(draw_pairs())
        return batches

    def share() -> float:
        return min((time.perf_counter() - start) / budget_s, 1.0)

    def step(idx: torch.Tensor, joint: bool) -> dict[str, float]:
        t = share()
        for g in opt.param_groups:
            g["lr"] = tc.lr * tc.lr_final_share ** t
        p = tc.batch_pairs
        x = meshes[idx]
        g_id, g_exp = net.encode(x)
        x_id = net.id_decoder(g_id.sample())
        x_exp = net.exp_decoder(g_exp.sample())
        neutral = net.mean + x_id
        terms = {"rec": mse_mm(neutral + x_exp, x),
                 "kl": (g_id.kl() + g_exp.kl()).mean(),
                 "lap": laplacian_energy(lap, x_id * MM_PER_M) + laplacian_energy(lap, x_exp * MM_PER_M)}
        weights = {"rec": 1.0, "kl": tc.kl, "lap": tc.laplacian}
        if cfg.neutral_gt:
            truth = neutrals[subject[idx.numpy()]]
            terms["neutral"] = mse_mm(neutral, truth) + mse_mm(x_exp, x - truth)
            weights["neutral"] = tc.neutral
        else:
            g = group_t[idx]
            has = g >= 0
            if bool(has.any()):
                terms["exp"] = mse_mm(x_exp[has], targets[g[has]])
                weights["exp"] = tc.exp * tc.exp_final_share ** t
            terms["same_id"] = (g_id.mu[:p] - g_id.mu[p:]).abs().mean()
            weights["same_id"] = tc.same_id
        r_id, r_exp = net.encode(neutral[:p])                # the first face of each pair re-encoded
        terms["latent"] = (r_id.mu - g_id.mu[:p]).abs().mean()
        terms["zero"] = mse_mm(net.exp_decoder(r_exp.mu), torch.zeros_like(x_exp[:p]))
        weights["latent"], weights["zero"] = tc.latent, tc.zero
        if joint:
            judged = torch.cat([disc(g_id.mu[:p], r_id.mu), disc(g_id.mu[:p], g_id.mu[p:])])
            terms["disc"] = F.binary_cross_entropy_with_logits(judged, torch.ones_like(judged))
            weights["disc"] = tc.disc
        loss = sum(weights[k] * v for k, v in terms.items())
        opt.zero_grad()
        loss.backward()
        opt.step()
        # the discriminator: same person (a, b) real; different people and (face, decoded neutral) not
        za, zb, zr = g_id.mu[:p].detach(), g_id.mu[p:].detach(), r_id.mu.detach()
        other = torch.roll(zb, 1, dims=0)
        differ = torch.from_numpy(subject[idx[:p].numpy()] != np.roll(subject[idx[p:].numpy()], 1))
        logits = [disc(za, zb), disc(za[differ], other[differ])]
        labels = [torch.ones(p), torch.zeros(int(differ.sum()))]
        if joint:
            logits.append(disc(za, zr))
            labels.append(torch.zeros(len(zr)))
        d_loss = F.binary_cross_entropy_with_logits(torch.cat(logits), torch.cat(labels))
        opt_d.zero_grad()
        d_loss.backward()
        opt_d.step()
        steps["joint_steps" if joint else "pretrain_steps"] += 1
        return {"loss": float(loss.detach()), **{k: float(v.detach()) for k, v in terms.items()},
                "d_loss": float(d_loss.detach())}

    @torch.no_grad()
    def evaluate(epoch: int) -> dict[str, float]:
        net.eval()
        res = net(meshes[monitor])
        net.train()
        target = data.targets(monitor.numpy())
        return {"direct_mm": float(vertex_mm(res.direct.numpy(), target).mean()),
                "residual_mm": float(vertex_mm(res.residual.numpy(), target).mean())}

    pretrain_s = tc.pretrain_share * budget_s - (time.perf_counter() - start)
    if pretrain_s > 0:
        loop.train(lambda idx: step(idx, False), batches_until(time.perf_counter() + pretrain_s), MAX_EPOCHS,
                   desc=f"{cfg.name} pretrain", time_limit_s=pretrain_s, show_progress=show_progress)
    joint_s = max(budget_s - (time.perf_counter() - start), 1.0)
    history = loop.train(lambda idx: step(idx, True), batches_until(time.perf_counter() + joint_s), MAX_EPOCHS,
                         desc=f"{cfg.name} joint", evaluate=evaluate, time_limit_s=joint_s,
                         show_progress=show_progress)
    net.eval()
    return model, history, time.perf_counter() - start, steps
