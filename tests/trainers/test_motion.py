"""trainers/motion: SRVF data of a data folder, the losses, the three trainers,
the metrics, the Det-LM plumbing and the train/eval/bench commands."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
import torch

from models import srvf
from models.motion3dgan import Critic, Motion3DGANConfig, load_motion3dgan
from runtime.cli import main
from trainers.motion import metrics
from trainers.motion.baseline import LstmConfig, load_lstm, save_lstm, train_lstm
from trainers.motion.classifier import (
    ClassifierConfig,
    load_classifier,
    predict,
    save_classifier,
    train_classifier,
)
from trainers.motion.data import load_motion_data
from trainers.motion.gan import (
    GanConfig,
    choose_reference,
    gradient_penalty,
    length_statistics,
    train_gan,
)


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Run these small models on one thread, as the commands do (``--threads``), restored afterwards."""
    from trainers.motion.cli import THREADS, threads

    with threads(THREADS):
        yield


@pytest.fixture(scope="module")
def motion_data(synth_data):
    return load_motion_data(synth_data)


def test_motions_of_a_data_folder(motion_data, synth_data):
    from trainers.data.cache import FaceData

    data = FaceData.open(synth_data)
    train, test = motion_data.train, motion_data.test
    assert len(test) == len(data.subjects) * len(data.labels)          # one held-out motion per subject and label
    assert len(train) == 7 * len(test)
    assert train.q.shape[1:] == (30, 204) and train.curve.shape[1:] == (31, 204)
    assert torch.allclose(srvf.inner(train.q, train.q), torch.ones(len(train)), atol=1e-5)
    back = srvf.curve_from_srvf(train.q.double(), train.length.double(), train.curve[:, 0].double())
    assert torch.allclose(back.float(), train.curve, atol=1e-6)
    assert bool((train.length > 0).all())
    # the metric neutral is the sub-sequence's first frame, read with the template's embedding
    assert float(train.neutral.abs().max()) < 0.5                       # metres: a face is well under a metre
    assert motion_data.description["landmarks"] == "ibug68"
    assert motion_data.description["split"]["test"] == len(test)


def test_reference_points(motion_data):
    km = choose_reference(motion_data.train, motion_data.labels, GanConfig(reference="karcher"))
    one = choose_reference(motion_data.train, motion_data.labels, GanConfig(reference="sample",
                                                                           reference_label="eyebrow"))
    assert float(srvf.inner(km.point, km.point)) == pytest.approx(1.0, abs=1e-5)
    assert km.detail["variance"] < one.detail["variance"]               # the Karcher mean is the better centre
    assert km.detail["max_distance"] < np.pi
    assert motion_data.labels[int(motion_data.train.label[one.detail["index"]])] == "eyebrow"
    with pytest.raises(ValueError, match="reference label 'yawn'"):
        choose_reference(motion_data.train, motion_data.labels, GanConfig(reference="sample", reference_label="yawn"))
    with pytest.raises(ValueError, match="unknown reference 'median'"):
        choose_reference(motion_data.train, motion_data.labels, GanConfig(reference="median"))


def test_length_statistics(motion_data):
    stats = length_statistics(motion_data.train, len(motion_data.labels))
    for index in range(len(motion_data.labels)):
        lengths = motion_data.train.length[motion_data.train.label == index].double()
        assert float(stats["log_length_mean"][index]) == pytest.approx(float(torch.log(lengths).mean()), rel=1e-5)
        assert float(stats["length_min"][index]) == pytest.approx(float(lengths.min()), rel=1e-6)


def test_gradient_penalty_of_a_linear_critic():
    """D(v) = <w, v> has gradient w everywhere: the penalty is (|w| - 1)^2."""
    cfg = Motion3DGANConfig(labels=("a", "b"), steps=8, landmarks=2)
    critic = Critic(cfg)
    w = torch.randn(8, 6, generator=torch.Generator().manual_seed(0))

    class Linear(torch.nn.Module):
        def forward(self, v, onehot):
            return (v * w).sum(dim=(1, 2))

    real, fake = torch.randn(5, 8, 6), torch.randn(5, 8, 6)
    onehot = torch.eye(2)[[0, 1, 0, 1, 0]]
    gp = gradient_penalty(Linear(), real, fake, onehot)
    assert float(gp) == pytest.approx(float((w.norm() - 1) ** 2), rel=1e-5)
    assert critic(real, onehot).shape == (5,)


def test_frechet_distance_against_closed_forms():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(4000, 3))
    assert metrics.fid(torch.as_tensor(x), torch.as_tensor(x)) == pytest.approx(0.0, abs=1e-8)
    mu = np.array([1.0, 2.0, 0.0])
    assert metrics.frechet_distance(mu, np.eye(3), np.zeros(3), np.eye(3)) == pytest.approx(5.0)
    # diagonal covariances: sum (sigma1 - sigma2)^2 over the axes
    c1, c2 = np.diag([4.0, 1.0, 9.0]), np.diag([1.0, 1.0, 1.0])
    assert metrics.frechet_distance(np.zeros(3), c1, np.zeros(3), c2) == pytest.approx(1.0 + 0.0 + 4.0)
    with pytest.raises(ValueError, match="N >= 2"):
        metrics.gaussian(np.zeros((1, 3)))


def test_accuracy_and_diversity():
    assert metrics.accuracy(torch.tensor([1, 2, 3, 3]), torch.tensor([1, 2, 3, 0])) == 75.0
    q = srvf.normalise(torch.randn(6, 5, 4, dtype=torch.float64))
    label = torch.tensor([0, 0, 0, 1, 1, 1])
    same = q[:1].expand(6, -1, -1)
    assert metrics.diversity(same, label, ["a", "b"])["mean"] == pytest.approx(0.0, abs=1e-6)
    div = metrics.diversity(q, label, ["a", "b"])
    d = srvf.pairwise_distances(q[:3])
    assert div["per_label"]["a"] == pytest.approx(float(d.sum() / 6))
    with pytest.raises(ValueError, match="two motions"):
        metrics.diversity(q[:1], label[:1], ["a", "b"])


@pytest.mark.slow
def test_trainers_learn_and_checkpoints_round_trip(motion_data, tmp_path):
    train, test = motion_data.train, motion_data.test
    labels = motion_data.labels
    clf, hist = train_classifier(train.displacement, train.label, labels,
                                 ClassifierConfig(epochs=6, hidden=64), show_progress=False)
    assert hist.series("loss")[-1] < hist.series("loss")[0]
    pred, feat = predict(clf, test.displacement)
    assert feat.shape == (len(test), 64)
    assert metrics.accuracy(pred, test.label) > 100.0 / len(labels)      # better than chance on held-out motions
    lstm, lhist = train_lstm(train.displacement, train.label, labels, LstmConfig(epochs=40, hidden=32, batch=16),
                             show_progress=False)
    assert lhist.series("mse")[-1] < lhist.series("mse")[0]
    with torch.no_grad():
        out = lstm(torch.tensor([0, 0, 1]))
    assert out.shape == (3, 30, 204) and torch.equal(out[0], out[1])   # deterministic per label
    calls = []
    gan, ghist, ref = train_gan(train, labels, GanConfig(epochs=3, batch=16, eval_every=1),
                                model_cfg=Motion3DGANConfig(labels=tuple(labels), channels=16, critic_channels=16),
                                monitor=lambda m: calls.append(m.training) or {"probe": 1.0}, show_progress=False)
    assert len(ghist.epochs) == 3 and calls == [False, False, False]   # monitored in eval mode
    assert all(np.isfinite(ghist.series(k)).all() for k in ("loss_d", "loss_g", "l_r", "gp"))
    assert ref.kind == "karcher"
    save_classifier(tmp_path / "c.safetensors", clf, motion_data.description, {"x": 1})
    again = load_classifier(tmp_path / "c.safetensors")
    pred2, feat2 = predict(again, test.displacement)
    assert torch.allclose(feat2, feat, atol=5e-2)                       # stored as float16
    save_lstm(tmp_path / "l.safetensors", lstm, motion_data.description, {})
    with torch.no_grad():
        assert torch.equal(load_lstm(tmp_path / "l.safetensors")(torch.tensor([0, 0, 1])), out)
    with pytest.raises(Exception, match="'motion-lstm' checkpoint, expected 'motion-classifier'"):
        load_classifier(tmp_path / "l.safetensors")


def _nearest_landmark_decoder():
    """A stand-in sparse-to-dense decoder for the Det-LM plumbing (the real one is S2D-Dec):
    every vertex moves with an inverse-distance blend of its 4 nearest landmarks' displacements."""

    def decode(neutral: np.ndarray, neutral_lm: np.ndarray, target: np.ndarray) -> np.ndarray:
        d = np.linalg.norm(neutral[:, None, :] - neutral_lm[None], axis=-1)   # [V, 68]
        near = np.argsort(d, axis=1)[:, :4]
        w = 1.0 / (np.take_along_axis(d, near, axis=1) + 1e-4)
        w /= w.sum(axis=1, keepdims=True)
        return neutral[None] + np.einsum("vk,fvkc->fvc", w, (target - neutral_lm[None])[:, near])

    return decode


@pytest.mark.slow
def test_train_and_eval_commands(synth_data, tmp_path, capsys):
    out = tmp_path / "ckpt"
    assert main(["train", "motion", "--data", str(synth_data), "--out", str(out), "--quick", "--quiet",
                 "--reference-label", "eyebrow",
                 "--plots", str(tmp_path / "plots"), "--json", str(tmp_path / "train.json")]) == 0
    assert "motion: trained in" in capsys.readouterr().out
    record = json.loads((tmp_path / "train.json").read_text())
    assert set(record["gan"]["references"]) == {"karcher", "sample"}
    assert record["gan"]["reference_kept"] in ("karcher", "sample")
    assert (tmp_path / "plots" / "motion_training.png").stat().st_size > 10_000
    model = load_motion3dgan(out / "motion3dgan_synthface.safetensors")
    assert list(model.cfg.labels) == load_motion_data(synth_data).labels

    js = tmp_path / "eval.json"
    assert main(["eval", "motion", "--data", str(synth_data), "--checkpoints", str(out), "--quick",
                 "--s2d", str(tmp_path / "none.safetensors"), "--json", str(js), "--plots", str(tmp_path)]) == 0
    res = json.loads(js.read_text())
    assert set(res["accuracy"]) >= {"gt", "motion3dgan", "lstm"} and set(res["fid"]) >= {"motion3dgan", "lstm"}
    assert all(0 <= v <= 100 for v in res["accuracy"].values())
    assert res["diversity"]["lstm"]["mean"] == pytest.approx(0.0, abs=1e-3)   # deterministic baseline
    assert res["diversity"]["motion3dgan"]["mean"] > 0
    assert res["det_lm"] == {"measured": False, "reason": res["det_lm"]["reason"]}
    assert "S2D-Dec checkpoint not found" in res["det_lm"]["reason"] and "none.safetensors" in res["det_lm"]["reason"]
    assert (tmp_path / "motion_trajectories.png").stat().st_size > 10_000
    capsys.readouterr()

    # bad input: a wrong data folder, a corrupt checkpoint
    assert main(["eval", "motion", "--data", str(tmp_path / "nowhere"), "--checkpoints", str(out), "--quick"]) == 2
    assert "not a facecast data folder" in capsys.readouterr().err
    broken = tmp_path / "broken.safetensors"
    broken.write_bytes(b"garbage")
    assert main(["eval", "motion", "--data", str(synth_data), "--checkpoints", str(out), "--gan", str(broken),
                 "--quick"]) == 2
    assert "broken.safetensors" in capsys.readouterr().err
    assert main(["train", "motion", "--data", str(tmp_path / "nowhere"), "--out", str(out), "--quick",
                 "--quiet"]) == 2
    assert "not a facecast data folder" in capsys.readouterr().err

    assert main(["bench", "motion", "--checkpoint", str(out / "motion3dgan_synthface.safetensors"),
                 "--json", str(tmp_path / "bench.json")]) == 0
    bench = json.loads((tmp_path / "bench.json").read_text())
    assert bench["sample_ms"]["1"] > 0 and bench["clip_frames"] == 151


@pytest.mark.slow
def test_det_lm_row_with_a_decoder(synth_data, motion_data):
    """The Det-LM plumbing end to end: motions -> metric landmarks -> meshes -> re-read landmarks -> classifier."""
    from trainers.data.cache import FaceData
    from trainers.motion.evaluate import QUICK, det_lm

    face = FaceData.open(synth_data)
    train, test = motion_data.train, motion_data.test
    clf, _ = train_classifier(train.displacement, train.label, motion_data.labels,
                              ClassifierConfig(epochs=8, hidden=64), show_progress=False)
    lstm, _ = train_lstm(train.displacement, train.label, motion_data.labels, LstmConfig(epochs=5, hidden=32),
                         show_progress=False)
    gan, _, _ = train_gan(train, motion_data.labels, GanConfig(epochs=1, batch=16),
                          model_cfg=Motion3DGANConfig(labels=tuple(motion_data.labels), channels=16,
                                                      critic_channels=16), show_progress=False)
    decode = _nearest_landmark_decoder()
    row = det_lm(motion_data, face, gan, lstm, clf, decode, replace(QUICK, det_lm_samples=1))
    assert row["measured"] and set(row["accuracy"]) == {"gt", "motion3dgan", "lstm"}
    pred, _ = predict(clf, test.displacement)
    # the ground truth survives the trip through a decoder that follows the landmarks
    assert row["accuracy"]["gt"] >= metrics.accuracy(pred, test.label) - 100.0 / len(test) * 2
    assert np.isfinite(list(row["fid"].values())).all()


def test_train_and_eval_are_shared_dispatchers(capsys):
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    assert "motion" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main(["eval", "--help"])
    assert "motion" in capsys.readouterr().out


def test_a_broken_model_family_is_reported_not_fatal(broken_plugin, capsys):
    """``facecast train`` lists the families that load and names the one that does not."""
    import trainers.cli as tcli

    broken_plugin(tcli, tcli.TRAIN, "broken", "trainers.no_such_module:register_train")
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    out = capsys.readouterr()
    assert "model 'broken' (trainers.no_such_module:register_train) is unavailable" in out.err
    assert "motion" in out.out and "s2d" in out.out
