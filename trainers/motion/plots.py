"""PNGs of the motion models: training curves and real vs generated trajectories."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from trainers.loop import History


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def training_curves(gans: dict[str, History], classifier: History, lstm: History, path: str | Path) -> Path:
    """Critic's Wasserstein estimate, ``L_r``, and the monitor's accuracy and FID per reference,
    with the classifier's and the baseline's losses."""
    plt = _pyplot()
    fig, axes = plt.subplots(1, 4, figsize=(17, 3.6))
    for name, hist in gans.items():
        epochs = hist.series("epoch")
        axes[0].plot(epochs, hist.series("wasserstein"), label=f"{name}: W estimate")
        axes[0].plot(epochs, hist.series("l_r"), "--", label=f"{name}: L_r")
        ev = [row for row in hist.epochs if "fid_train" in row]
        axes[1].plot([r["epoch"] for r in ev], [r["fid_train"] for r in ev], "o-", label=name)
        axes[2].plot([r["epoch"] for r in ev], [r["accuracy"] for r in ev], "o-", label=name)
    axes[0].set(title="Motion3DGAN losses", xlabel="epoch")
    axes[1].set(title="FID of samples vs real training motions", xlabel="epoch", yscale="log")
    axes[2].set(title="classifier accuracy of samples (%)", xlabel="epoch")
    axes[3].plot(classifier.series("epoch"), classifier.series("loss"), label="classifier cross-entropy")
    axes[3].plot(lstm.series("epoch"), lstm.series("mse"), label="LSTM baseline MSE (scaled)")
    axes[3].set(title="classifier and baseline", xlabel="epoch", yscale="log")
    for ax in axes:
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def trajectories(real: torch.Tensor, real_label: torch.Tensor, gan: torch.Tensor, gan_label: torch.Tensor,
                 lstm: torch.Tensor, lstm_label: torch.Tensor, labels: list[str], path: str | Path) -> Path:
    """Per label, the coordinate that moves most: real test motions, Motion3DGAN samples, the LSTM's motion.

    All inputs are displacements ``[N, T, K]`` from the start in the normalised
    landmark frame, with their labels ``[N]``.
    """
    plt = _pyplot()
    cols = 4
    rows = int(np.ceil(len(labels) / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(4 * cols, 2.7 * rows), squeeze=False)
    axis_names = "xyz"
    for index, name in enumerate(labels):
        ax = axes[index // cols][index % cols]
        r = real[real_label == index]
        if len(r) == 0:
            ax.set_visible(False)
            continue
        k = int(r[:, -1].abs().mean(dim=0).argmax())
        t = np.arange(1, r.shape[1] + 1)
        for row in gan[gan_label == index][:12]:
            ax.plot(t, row[:, k], color="tab:orange", alpha=0.5, lw=1)
        for row in r:
            ax.plot(t, row[:, k], color="tab:blue", alpha=0.6, lw=1)
        for row in lstm[lstm_label == index][:1]:
            ax.plot(t, row[:, k], color="black", ls="--", lw=1.5)
        ax.set_title(f"{name}: landmark {k // 3} {axis_names[k % 3]}", fontsize=9)
        ax.grid(alpha=0.3)
    handles = [plt.Line2D([], [], color="tab:blue", label="real (test)"),
               plt.Line2D([], [], color="tab:orange", label="Motion3DGAN samples"),
               plt.Line2D([], [], color="black", ls="--", label="LSTM baseline")]
    fig.legend(handles=handles, loc="lower center", ncol=3)
    fig.suptitle("displacement from the neutral start (normalised landmark units) over the 30 arc-length steps")
    fig.tight_layout(rect=(0, 0.04, 1, 0.97))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
