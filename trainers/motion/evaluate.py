"""``facecast eval motion``: the paper's Table 3 on a data folder.

Rows and columns, as Otberdout et al. 2022, Table 3:

- Gen-LM: the classifier reads generated landmark motions directly.
  ``accuracy`` (percent) with the ground-truth test motions, Motion3DGAN
  samples and LSTM outputs; ``fid`` of Motion3DGAN and LSTM motions against
  the real test motions, on the classifier's 512 features.
- Det-LM: the same after a trip through S2D-Dec (``trainers.motion.det_lm``):
  each motion is applied to its subject's neutral landmarks, decoded into
  meshes on the subject's neutral mesh, and the landmarks are re-read off the
  meshes. Measured when the S2D-Dec checkpoint exists (``--quick``: two
  test motions per label); otherwise the JSON says why not.

Every test motion (the held-out first sub-sequence of each subject and
label) asks Motion3DGAN for ``samples`` motions of its label (noise from
each of ``seeds``; figures are the mean over seeds, with their standard
deviation) and the LSTM for its one motion of that label. ``diversity``
is the mean pairwise geodesic distance of ``diversity_samples`` samples of
each label, beside the same figure for real motions.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass

import numpy as np
import torch

from models import srvf
from models.constants import MM_PER_M
from models.motion3dgan import Motion, Motion3DGAN, apply_motion, count_parameters
from trainers.motion import metrics
from trainers.motion.baseline import LstmGenerator
from trainers.motion.classifier import ExpressionClassifier, predict
from trainers.motion.data import MotionData
from trainers.progress import progress

#: the paper's Table 3 on CoMA (Gen-LM), for reference
PAPER_COMA = {"accuracy": {"gt": 73.0, "motion3dgan": 65.3, "lstm": 46.5},
              "fid": {"motion3dgan": 20.45, "lstm": 21.76}}

#: the official generator's parameter count (TensorFlow code, counted from its layer sizes)
OFFICIAL_GENERATOR_PARAMETERS = "about 80 M"


@dataclass(frozen=True)
class EvalConfig:
    samples: int = 10              #: Motion3DGAN samples per test motion
    seeds: tuple[int, ...] = (0, 1, 2, 3, 4)
    diversity_samples: int = 50    #: samples per label for the diversity figure
    det_lm_samples: int = 1        #: samples per test motion through S2D-Dec
    det_lm_per_label: int | None = None   #: test motions per label through S2D-Dec (None: all)


QUICK = EvalConfig(samples=4, seeds=(0,), diversity_samples=20, det_lm_per_label=2)


def gan_motions(model: Motion3DGAN, label: torch.Tensor, seed: int) -> Motion:
    """One Motion3DGAN sample per entry of ``label [N]`` (noise from ``seed``)."""
    gen = torch.Generator().manual_seed(seed)
    z = torch.randn(len(label), model.cfg.noise, generator=gen)
    u = torch.randn(len(label), generator=gen)
    with torch.no_grad():
        return model(z, label, u)


def motion_displacement(motion: Motion) -> torch.Tensor:
    """``[B, T, K]``: a motion's frames 1..T minus its start, normalised frame (the classifier's input)."""
    start = torch.zeros(motion.q.shape[-1], dtype=motion.q.dtype)
    return srvf.curve_from_srvf(motion.q, motion.length, start)[:, 1:]


def lstm_srvf(lstm: LstmGenerator, label: torch.Tensor) -> torch.Tensor:
    """``[N, T, K]`` SRVFs of the LSTM's motions (from a zero start; the SRVF ignores the start)."""
    with torch.no_grad():
        disp = lstm(label)
    curve = torch.cat([torch.zeros_like(disp[:, :1]), disp], dim=1)
    return srvf.srvf(curve.double()).q.float()


def gen_lm(data: MotionData, gan: Motion3DGAN, lstm: LstmGenerator, clf: ExpressionClassifier,
           cfg: EvalConfig) -> dict:
    """The Gen-LM row: accuracy and FID of real, Motion3DGAN and LSTM motions."""
    test = data.test
    pred_gt, feat_gt = predict(clf, test.displacement)
    _, feat_train = predict(clf, data.train.displacement)
    label = test.label.repeat_interleave(cfg.samples)
    with torch.no_grad():
        lstm_disp = lstm(label)
    pred_lstm, feat_lstm = predict(clf, lstm_disp)
    accs, fids = [], []
    for seed in progress(cfg.seeds, desc="motion3dgan samples", unit="seed"):
        pred, feat = predict(clf, motion_displacement(gan_motions(gan, label, seed)))
        accs.append(metrics.accuracy(pred, label))
        fids.append(metrics.fid(feat, feat_gt))
    return {
        "accuracy": {"gt": metrics.accuracy(pred_gt, test.label), "motion3dgan": float(np.mean(accs)),
                     "lstm": metrics.accuracy(pred_lstm, label)},
        "fid": {"motion3dgan": float(np.mean(fids)), "lstm": metrics.fid(feat_lstm, feat_gt),
                "real_train": metrics.fid(feat_train, feat_gt)},
        "spread": {"seeds": len(cfg.seeds), "motion3dgan_accuracy_std": float(np.std(accs)),
                   "motion3dgan_fid_std": float(np.std(fids))},
        "counts": {"test_motions": len(test), "generated_per_method": len(label)},
    }


def diversity(data: MotionData, gan: Motion3DGAN, lstm: LstmGenerator, cfg: EvalConfig, seed: int = 0) -> dict:
    """Mean pairwise geodesic distance within each label: generated and real."""
    n = len(data.labels)
    label = torch.arange(n).repeat_interleave(cfg.diversity_samples)
    return {
        "unit": "radians (mean pairwise geodesic distance on the SRVF sphere, within a label)",
        "motion3dgan": metrics.diversity(gan_motions(gan, label, seed).q, label, data.labels),
        "lstm": metrics.diversity(lstm_srvf(lstm, label), label, data.labels),
        "real_test": metrics.diversity(data.test.q, data.test.label, data.labels),
        "real_train": metrics.diversity(data.train.q, data.train.label, data.labels),
    }


def apply_error(data: MotionData) -> dict:
    """How well ``apply_motion`` puts a real motion back in metres (mm, test motions).

    Each test motion, encoded, is applied to its own first frame; its apex
    (the last frame, an exact sample of the curve) is compared with the real
    apex: with the anchored mapping ``apply_motion`` uses, and with the naive
    one that undoes every frame with the neutral's own centre and scale.
    """
    test = data.test
    motion = Motion(q=test.q.double(), length=test.length.double(), label=test.label)
    anchored, naive = [], []
    for i in range(len(test)):
        one = Motion(q=motion.q[i:i + 1], length=motion.length[i:i + 1], label=motion.label[i:i + 1])
        neutral = test.neutral[i].double()
        apex = test.apex[i].double()
        anchored.append(apply_motion(one, neutral)[0, -1])
        norm = srvf.normalise_landmarks(neutral)
        frames = srvf.curve_from_srvf(one.q, one.length, norm.points.reshape(-1))[0, -1].reshape(-1, 3)
        naive.append(frames * norm.scale + norm.centre)
    apex = test.apex.double()
    err = lambda pred: torch.linalg.vector_norm(torch.stack(pred) - apex, dim=-1) * MM_PER_M
    motion_mm = torch.linalg.vector_norm(apex - test.neutral.double(), dim=-1) * MM_PER_M
    return {"unit": "mm, mean over the 68 landmarks of every test motion's apex",
            "anchored_mean_mm": float(err(anchored).mean()), "anchored_max_mm": float(err(anchored).max()),
            "naive_mean_mm": float(err(naive).mean()), "naive_max_mm": float(err(naive).max()),
            "apex_motion_mean_mm": float(motion_mm.mean())}


def det_lm(data: MotionData, face, gan: Motion3DGAN, lstm: LstmGenerator, clf: ExpressionClassifier,
           decode, cfg: EvalConfig) -> dict:
    """The Det-LM row: the Gen-LM motions after S2D-Dec and re-reading the landmarks.

    ``face`` is the ``FaceData`` the motions came from (neutral meshes, the
    template's landmark embedding); ``decode`` is S2D-Dec (``det_lm.Decoder``).
    """
    from models.motion3dgan import to_metric
    from trainers.motion.det_lm import reread_displacements

    test = data.test
    if cfg.det_lm_per_label is not None:
        keep = torch.cat([torch.nonzero(test.label == k)[:cfg.det_lm_per_label, 0] for k in range(len(data.labels))])
        test = test.subset(keep)
    steps = data.steps
    label = test.label.repeat_interleave(cfg.det_lm_samples)
    subject = test.subject.repeat_interleave(cfg.det_lm_samples)
    gan_traj = []
    for i, motion in enumerate(_split(gan_motions(gan, label, cfg.seeds[0]))):
        neutral_lm = torch.as_tensor(face.template.landmark_points(np.asarray(face.neutral[int(subject[i])])))
        gan_traj.append(apply_motion(motion, neutral_lm)[0])
    with torch.no_grad():
        lstm_disp = lstm(label)
    out = {}
    columns = {"gt": (test.curve, test.subject, test.label), "lstm": (None, subject, label),
               "motion3dgan": (None, subject, label)}
    for name, (curves, subj, lab) in columns.items():
        feats, preds = [], []
        for i in progress(range(len(lab)), desc=f"det-lm {name}", unit="motion"):
            mesh = np.asarray(face.neutral[int(subj[i])], dtype=np.float32)
            neutral_lm = torch.as_tensor(face.template.landmark_points(mesh))
            if name == "gt":
                frames = curves[i].reshape(steps + 1, -1, 3)
                traj = to_metric(frames, neutral_lm)
            elif name == "lstm":
                start = srvf.normalise_landmarks(neutral_lm).points.reshape(-1)
                frames = torch.cat([start[None], start[None] + lstm_disp[i]]).reshape(steps + 1, -1, 3)
                traj = to_metric(frames, neutral_lm)
            else:
                traj = gan_traj[i]
            disp = reread_displacements(decode, face.template.landmark_points, mesh, traj.numpy(), steps)
            p, f = predict(clf, disp[None])
            preds.append(p)
            feats.append(f)
        out[name] = (torch.cat(preds), torch.cat(feats), lab)
    _, feat_gt, _ = out["gt"]
    return {
        "measured": True,
        "accuracy": {k: metrics.accuracy(p, lab) for k, (p, _, lab) in out.items()},
        "fid": {k: metrics.fid(f, feat_gt) for k, (_, f, _) in out.items() if k != "gt"},
        "note": "every column (ground truth included) goes through S2D-Dec and is re-read off the meshes",
        "counts": {"test_motions": len(test), "generated_per_method": len(label)},
    }


def _split(motion: Motion) -> list[Motion]:
    return [Motion(q=motion.q[i:i + 1], length=motion.length[i:i + 1], label=motion.label[i:i + 1])
            for i in range(len(motion))]


def evaluate(data: MotionData, gan: Motion3DGAN, lstm: LstmGenerator, clf: ExpressionClassifier,
             cfg: EvalConfig = EvalConfig(), face=None, decoder=None, decoder_note: str = "") -> dict:
    """Table 3 as a dict (see the module's docstring); ``face`` and ``decoder`` for the Det-LM row."""
    start = time.perf_counter()
    result = gen_lm(data, gan, lstm, clf, cfg)
    result["diversity"] = diversity(data, gan, lstm, cfg)
    result["apply_motion"] = apply_error(data)
    if decoder is None or face is None:
        result["det_lm"] = {"measured": False, "reason": decoder_note or "no S2D-Dec decoder was given"}
    else:
        result["det_lm"] = det_lm(data, face, gan, lstm, clf, decoder, cfg)
        result["det_lm"]["decoder"] = decoder_note
    result["parameters"] = {"motion3dgan_generator": count_parameters(gan.generator),
                            "official_generator": OFFICIAL_GENERATOR_PARAMETERS,
                            "lstm_baseline": count_parameters(lstm), "classifier": count_parameters(clf)}
    result["reference_paper_coma"] = PAPER_COMA
    result["config"] = {**asdict(cfg), "seeds": list(cfg.seeds)}
    result["seconds"] = time.perf_counter() - start
    return result
