"""The 4D generator v2: takes, richer dynamics, registration and landmark
noise, the ``.N`` take folders, the CLI flags; v1 data unchanged.

Most of the v2 dynamics are tested on the v1 face model (the generator
takes any ``FaceModel`` and v1 is the quicker to build); the figures that
depend on the face itself run on SynthFace v2.
"""

from __future__ import annotations

import hashlib
import json
import shutil

import numpy as np
import pytest

from models.constants import MM_PER_M
from models.face import synthface
from models.face.labels import COMA_LABELS
from runtime.cli import main as facecast
from trainers.data.cache import META_FILE, FaceData
from trainers.data.coma import import_coma, parse_take_folder, scan, take_folder
from trainers.data.noise import NoiseField, correlation_length
from trainers.data.sequences import (
    BLINK_UNITS, MOUTH_CLOSE, DynamicsConfig, blink_curve, damped_settle, performance_weights, soft_limit,
)
from trainers.data.synth import SynthConfig, apex_frame, face_model, generate, stillness

#: the v1 output of one config, captured before v2 existed (weights are the
#: model-independent part; the vertex sums guard the v1 model path)
V1_CONFIG = dict(identities=2, labels=("mouth_open", "eyebrow", "high_smile"), fps=30.0, seed=7, write_ply=False)
V1_LENGTHS = [65, 69, 72, 69, 62, 63]
V1_WEIGHTS_SHA256 = "fc69c178ac9879f471ada1781e6ba8b7d274706c15e9c72e695938280088e940"
V1_VERTEX_SUM = 82114.42317178744
V1_VERTEX_ABS_SUM = 291052.90610771754
V1_FIRST_TIMELINE = {"n_frames": 65, "onset": 6, "apex": 20, "release": 41, "end": 56}

#: a tiny v2 set: 1 subject, 2 labels, 3 takes at 30 fps
TINY = dict(identities=1, labels=("mouth_open", "high_smile"), fps=30.0, seed=3, face_version=2)

@pytest.fixture(scope="module")
def v2_ply(tmp_path_factory):
    """The tiny v2 set with its PLY tree (v2 dynamics on the v1 face model)."""
    out = tmp_path_factory.mktemp("v2") / "data"
    generate(SynthConfig(**TINY), out, model=synthface(), show_progress=False, report=False)
    return out


@pytest.fixture(scope="module")
def v2_noisy(tmp_path_factory):
    """The same set, cache only, with 0.2 mm registration and 0.5 mm landmark noise."""
    out = tmp_path_factory.mktemp("v2noisy") / "data"
    generate(SynthConfig(**TINY, write_ply=False, registration_noise_mm=0.2, landmark_noise_mm=0.5),
             out, model=synthface(), show_progress=False, report=False)
    return out


def _performances(n: int, fps: float = 30.0, seed: int = 0):
    rng = np.random.default_rng(seed)
    return [(label, *performance_weights(label, fps, rng)) for label in COMA_LABELS for _ in range(n)]


# ---------------------------------------------------------------- v1 unchanged
def test_v1_output_is_unchanged(tmp_path):
    cfg = SynthConfig(**V1_CONFIG)
    assert cfg.face_version == 1 and cfg.performances == 1
    generate(cfg, tmp_path / "d", show_progress=False, report=False)
    data = FaceData.open(tmp_path / "d")
    assert [q.length for q in data.sequences] == V1_LENGTHS and data.n_frames == sum(V1_LENGTHS)
    assert [q.take for q in data.sequences] == [1] * 6
    assert hashlib.sha256(np.ascontiguousarray(data.weights).tobytes()).hexdigest() == V1_WEIGHTS_SHA256
    assert data.meta["timelines"][0] == V1_FIRST_TIMELINE
    v = np.asarray(data.vertices, dtype=np.float64)
    assert v.sum() == pytest.approx(V1_VERTEX_SUM, rel=1e-7)
    assert np.abs(v).sum() == pytest.approx(V1_VERTEX_ABS_SUM, rel=1e-7)
    assert not (tmp_path / "d" / "cache" / "landmarks.npy").exists()


def test_v1_extra_takes_leave_take_one_as_it_was(tmp_path):
    labels = ("mouth_open",)
    generate(SynthConfig(identities=1, labels=labels, fps=30.0, seed=7, write_ply=False), tmp_path / "one",
             show_progress=False, report=False)
    generate(SynthConfig(identities=1, labels=labels, fps=30.0, seed=7, write_ply=False, performances=2),
             tmp_path / "two", show_progress=False, report=False)
    one, two = FaceData.open(tmp_path / "one"), FaceData.open(tmp_path / "two")
    assert [q.take for q in two.sequences] == [1, 2]
    np.testing.assert_array_equal(one.weights[one.sequences[0].frames], two.weights[two.sequences[0].frames])


def test_config_defaults_and_errors():
    assert SynthConfig().face_version == 1 and SynthConfig().performances == 1
    assert SynthConfig(face_version=2).performances == 3
    assert SynthConfig(face_version=2, performances=5).performances == 5
    with pytest.raises(ValueError, match="face_version"):
        SynthConfig(face_version=3)
    with pytest.raises(ValueError, match="performances"):
        SynthConfig(performances=0)
    with pytest.raises(ValueError, match="registration_noise_mm"):
        SynthConfig(registration_noise_mm=-0.1)
    with pytest.raises(ValueError, match="noise_correlation_mm must be at least 5"):
        SynthConfig(noise_correlation_mm=2.0)
    with pytest.raises(ValueError, match="damping"):
        DynamicsConfig(damping=(0.5, 1.2))


def test_face_model_by_version():
    assert face_model(1) is synthface()
    assert face_model(2).name == "synthface-2"
    with pytest.raises(ValueError, match="unknown SynthFace version"):
        face_model(3)


# ---------------------------------------------------------------- v2 dynamics
def test_weights_in_range_and_first_frame_rests_not_neutral():
    for label, w, perf in _performances(8):
        assert w.dtype == np.float32 and w.shape == (perf.n_frames, 52)
        assert w.min() >= 0.0 and w.max() <= 1.0, label
        assert np.all(w[0] > 0.0) and w[0].max() < 0.1                  # resting tone, no expression
        assert np.all(w[-1] > 0.0) and np.all(np.ptp(w, axis=0) > 0)      # no unit ever holds still


def test_soft_limit_saturates_smoothly_inside_0_1():
    w = np.linspace(-0.5, 1.5, 20001)
    out = soft_limit(w, 0.005, 0.1)
    assert np.all((out > 0) & (out < 1)) and np.all(np.diff(out) > 0)
    middle = (w >= 0.005) & (w <= 0.9)
    np.testing.assert_array_equal(out[middle], w[middle])
    slope = np.diff(out) / np.diff(w)
    assert np.max(np.abs(np.diff(slope))) < 0.05                        # no kink at the knees (a kink: ~1)


def test_timings_are_in_seconds():
    a = performance_weights("mouth_open", 30.0, np.random.default_rng(5))[1]
    b = performance_weights("mouth_open", 60.0, np.random.default_rng(5))[1]
    assert a.onset_s == b.onset_s and a.blinks_s == b.blinks_s
    assert b.n_frames - 1 == pytest.approx(2 * (a.n_frames - 1), abs=1)
    lengths = [perf.n_frames for _, _, perf in _performances(10, fps=60.0)]
    assert 130 < np.mean(lengths) < 190                                  # CoMA-like, ~2.3-3 s


def test_per_unit_onsets_spread_50_to_300_ms():
    fps = 60.0
    measured = []
    for label, w, perf in _performances(6, fps=fps):
        spread = max(perf.onset_s) - min(perf.onset_s)
        assert 0.05 - 1e-9 <= spread <= 0.30 + 1e-9, label
        assert 0.05 - 1e-9 <= max(perf.release_s) - min(perf.release_s) <= 0.30 + 1e-9
        # measured: when each strong unit first gets 30 % of the way from rest to its held apex
        held = np.median(w[perf.settled:perf.release], axis=0)
        times, recorded = [], []
        for unit, start in zip(perf.units, perf.onset_s):
            if held[unit] - w[0, unit] < 0.2 or held[unit] > 0.85:
                continue
            cross = np.flatnonzero(w[:, unit] - w[0, unit] > 0.3 * (held[unit] - w[0, unit]))[0]
            times.append(cross / fps)
            recorded.append(start)
        if len(times) >= 2:
            lag = np.asarray(times) - np.asarray(recorded)                # the same rise for every unit
            assert lag.max() - lag.min() <= 2.5 / fps, label
            measured.append(max(times) - min(times))
    assert len(measured) > 30 and max(measured) > 0.1                   # the units do not start together


def test_overshoot_then_settle():
    tau = np.linspace(0.0, 2.0, 2001)
    for overshoot, damping, settle in [(0.05, 0.45, 0.3), (0.15, 0.7, 0.15), (0.1, 0.6, 0.25)]:
        a = damped_settle(tau, overshoot, damping, settle, 0.02)
        assert a[0] == pytest.approx(1 + overshoot) and a.max() == pytest.approx(1 + overshoot)
        assert a.min() < 1.0                                               # it swings back under
        assert np.all(np.abs(a[tau >= settle] - 1.0) <= 0.02)
        assert abs(a[1] - a[0]) / (tau[1] - tau[0]) < 0.1                  # a smooth (zero-slope) peak, 1/s
    # in the weights: the strong, unclipped units peak 5-15 % above their held apex, then hold
    ratios, wobble = [], []
    for label, w, perf in _performances(4, fps=60.0):
        held = np.median(w[perf.settled:perf.release], axis=0)
        for unit in perf.units:
            if not 0.3 < held[unit] < 0.8:
                continue
            ratios.append(w[perf.onset:perf.settled + 1, unit].max() / held[unit] - 1.0)
            wobble.append(np.abs(w[perf.settled:perf.release, unit] / held[unit] - 1.0).mean())
    ratios = np.asarray(ratios)
    assert len(ratios) > 50
    assert 0.05 < np.median(ratios) < 0.15 and np.mean(ratios > 0.03) > 0.9
    assert np.median(wobble) < 0.03                                       # settled: micro-motion only


def test_micro_motion_moves_every_unit():
    for label, w, perf in _performances(2):
        hold = w[perf.settled:perf.release]
        assert np.all(np.ptp(hold, axis=0) > 0), label                    # nothing holds perfectly still
        active = [u for u in perf.units if u != MOUTH_CLOSE]               # mouthClose follows jawOpen
        rel = np.std(hold[:, active], axis=0) / np.mean(hold[:, active], axis=0)
        assert np.all(rel < 0.1)                                           # and it stays small


def test_blinks_at_a_plausible_rate():
    fps = 60.0
    performances = _performances(25, fps=fps, seed=11)
    seconds = sum(perf.n_frames / fps for _, _, perf in performances)
    events, lengths = 0, []
    for label, w, perf in performances:
        left, right = w[:, BLINK_UNITS[0]], w[:, BLINK_UNITS[1]]
        closed = left > 0.5
        starts = np.flatnonzero(closed[1:] & ~closed[:-1]) + 1
        events += len(starts) + int(closed[0])
        assert len(perf.blinks_s) >= len(starts)
        for start, length in perf.blinks_s:
            k = int(round((start + 0.5 * length) * fps))
            if k < len(w):
                assert left[k] > 0.8 and left[k] == right[k]          # both lids, near shut
            lengths.append(length)
    rate = events / (seconds / 60.0)
    assert 10.0 <= rate <= 20.0, rate
    assert 0.1 <= min(lengths) and max(lengths) <= 0.25
    curve = blink_curve(np.arange(0, 0.3, 1 / 1000), ((0.0, 0.2),), 1.0, DynamicsConfig())
    shut = np.flatnonzero(curve > 0.5) / 1000
    assert 0.08 < shut[-1] - shut[0] < 0.2                             # ~0.1 s more than half shut


# ---------------------------------------------------------------- takes and layout
def test_three_takes_per_subject_and_label_with_their_own_timing(v2_ply):
    data = FaceData.open(v2_ply)
    assert len(data.sequences) == 2 * 3
    timelines = data.meta["timelines"]
    for li, label in enumerate(data.labels):
        seqs = [(q, t) for q, t in zip(data.sequences, timelines) if q.label == li]
        assert [q.take for q, _ in seqs] == [1, 2, 3]
        assert [q.source for q, _ in seqs] == [f"synth_000/{take_folder(label, k)}" for k in (1, 2, 3)]
        assert len({(t["n_frames"], t["onset"], t["release"]) for _, t in seqs}) == 3
        assert len({tuple(t["onset_s"]) for _, t in seqs}) == 3
        for q, _ in seqs:
            folder = v2_ply / q.source
            files = sorted(folder.glob("*.ply"))
            assert len(files) == q.length and files[0].name == f"{label}.000000.ply"
            assert not np.array_equal(data.vertices[q.start], data.neutral[q.subject])   # rests, not neutral
    gen = data.meta["generator"]
    assert gen["face_version"] == 2 and gen["performances"] == 3 and gen["dynamics"]["blink_rate_per_min"]


def test_take_folders_import_back_into_the_same_sequences(v2_ply, tmp_path):
    found = scan(v2_ply)
    assert sorted(found.sequences)[:3] == [("synth_000", "high_smile", 1), ("synth_000", "high_smile", 2),
                                           ("synth_000", "high_smile", 3)]
    meta, problems = import_coma(v2_ply, tmp_path / "read", synthface().template, fps=30.0, show_progress=False)
    assert problems == []
    a, b = FaceData.open(v2_ply), FaceData.open(tmp_path / "read")
    assert len(a.sequences) == len(b.sequences) == 6 and a.n_frames == b.n_frames
    for qa in a.sequences:
        key = (a.subjects[qa.subject], a.labels[qa.label], qa.take)
        qb = next(q for q in b.sequences if (b.subjects[q.subject], b.labels[q.label], q.take) == key)
        assert qa.source == qb.source
        np.testing.assert_array_equal(a.vertices[qa.frames], b.vertices[qb.frames])


def test_plain_coma_tree_and_odd_folder_names(v2_ply, tmp_path):
    tree = tmp_path / "tree"
    (tree / "FaceTalk_1").mkdir(parents=True)
    for name in ("mouth_open", "foo.x", "foo.1", "bar.02"):
        shutil.copytree(v2_ply / "synth_000" / "mouth_open", tree / "FaceTalk_1" / name)
    found = scan(tree)
    assert list(found.sequences) == [("FaceTalk_1", "bar.02", 1), ("FaceTalk_1", "foo.1", 1),
                                     ("FaceTalk_1", "foo.x", 1), ("FaceTalk_1", "mouth_open", 1)]
    assert parse_take_folder("mouth_open.12") == ("mouth_open", 12)
    assert parse_take_folder("mouth_open.1") == ("mouth_open.1", 1)
    with pytest.raises(ValueError, match="take"):
        take_folder("x", 0)


def test_old_meta_without_take_loads(v2_noisy, tmp_path):
    copy = tmp_path / "old"
    shutil.copytree(v2_noisy, copy)
    meta = json.loads((copy / META_FILE).read_text())
    for s in meta["sequences"]:
        del s["take"]
    (copy / META_FILE).write_text(json.dumps(meta))
    assert [q.take for q in FaceData.open(copy).sequences] == [1] * 6


# ---------------------------------------------------------------- noise
def test_registration_noise_field_rms_and_correlation_length():
    vertices = synthface().template.vertices
    rng = np.random.default_rng(0)
    for length_mm in (5.0, 10.0):
        field = NoiseField.build(vertices, length_mm).sample(120, 0.25, rng)
        assert field.shape == (120, len(vertices), 3) and field.dtype == np.float32
        rms = np.sqrt(np.mean(np.sum(field.astype(np.float64) ** 2, axis=-1), axis=-1)) * MM_PER_M
        np.testing.assert_allclose(rms, 0.25, rtol=1e-5)
        assert abs(field.mean()) * MM_PER_M < 0.01
        measured = correlation_length(field, vertices, rng, pairs=2000) * MM_PER_M
        assert measured == pytest.approx(length_mm, rel=0.15)
    with pytest.raises(ValueError, match="at least 5"):
        NoiseField.build(vertices, 3.0)


def test_generated_noise_is_seeded_and_sized(v2_ply, v2_noisy, tmp_path):
    clean, noisy = FaceData.open(v2_ply), FaceData.open(v2_noisy)
    np.testing.assert_array_equal(clean.weights, noisy.weights)          # the same performances
    diff = np.asarray(noisy.vertices, dtype=np.float64) - np.asarray(clean.vertices)
    rms = np.sqrt(np.mean(np.sum(diff ** 2, axis=-1), axis=-1)) * MM_PER_M
    np.testing.assert_allclose(rms, 0.2, rtol=1e-3)
    np.testing.assert_array_equal(noisy.neutral, clean.neutral)           # ground truth stays clean
    # landmarks: cache/landmarks.npy, the clean landmarks plus 0.5 mm detector noise
    assert (v2_noisy / "cache" / "landmarks.npy").is_file()
    assert noisy.observed_landmarks.shape == (noisy.n_frames, 68, 3)
    q = noisy.sequences[2]
    observed = noisy.landmarks(q.frames)
    np.testing.assert_array_equal(observed, noisy.observed_landmarks[q.frames])
    truth = clean.landmarks(slice(0, clean.n_frames))
    err = np.linalg.norm(noisy.landmarks(slice(0, noisy.n_frames)) - truth, axis=-1) * MM_PER_M
    assert np.sqrt(np.mean(err ** 2)) == pytest.approx(0.5, rel=0.05)
    assert clean.observed_landmarks is None and not (v2_ply / "cache" / "landmarks.npy").exists()
    again = tmp_path / "again"
    generate(SynthConfig(**TINY, write_ply=False, registration_noise_mm=0.2, landmark_noise_mm=0.5),
             again, model=synthface(), show_progress=False, report=False)
    redo = FaceData.open(again)
    np.testing.assert_array_equal(redo.vertices, noisy.vertices)
    np.testing.assert_array_equal(redo.observed_landmarks, noisy.observed_landmarks)


# ---------------------------------------------------------------- CLI
def test_cli_flags_end_to_end(tmp_path, capsys):
    out = tmp_path / "cli"
    rc = facecast(["data", "synth", "--face-version", "2", "--identities", "1", "--labels",
                   "mouth_open,eyebrow", "--fps", "30", "--no-ply", "--quiet", "--performances", "2",
                   "--registration-noise-mm", "0.15", "--noise-correlation-mm", "8",
                   "--landmark-noise-mm", "0.3", "--seed", "4", "--out", str(out)])
    assert rc == 0
    data = FaceData.open(out)
    assert [q.take for q in data.sequences] == [1, 2, 1, 2]
    gen = data.meta["generator"]
    assert (gen["face_version"], gen["performances"], gen["registration_noise_mm"],
            gen["noise_correlation_mm"], gen["landmark_noise_mm"], gen["seed"]) == (2, 2, 0.15, 8.0, 0.3, 4)
    assert data.observed_landmarks is not None
    capsys.readouterr()
    assert facecast(["data", "info", str(out)]) == 0
    text = capsys.readouterr().out
    assert "takes      up to 2 per subject and label (take 1: 2, take 2: 2 sequences)" in text
    assert "SynthFace v2, registration noise 0.15 mm, landmark noise 0.3 mm" in text
    assert facecast(["data", "info", "--json", str(out)]) == 0
    assert json.loads(capsys.readouterr().out)["takes"]["max"] == 2
    # the v1 default stays v1, one take
    assert facecast(["data", "synth", "--identities", "1", "--labels", "eyebrow", "--fps", "30",
                     "--no-ply", "--quiet", "--out", str(tmp_path / "v1")]) == 0
    v1 = FaceData.open(tmp_path / "v1")
    assert v1.meta["generator"]["face_version"] == 1 and len(v1.sequences) == 1
    # bad flags: a clear message, exit 2
    assert facecast(["data", "synth", "--noise-correlation-mm", "2", "--out", str(tmp_path / "bad")]) == 2
    assert "noise_correlation_mm must be at least 5" in capsys.readouterr().err
    assert facecast(["data", "synth", "--face-version", "2", "--template", "x.obj", "--landmarks", "x.json",
                     "--out", str(tmp_path / "bad2")]) == 2
    assert "template file not found: x.obj" in capsys.readouterr().err


# ---------------------------------------------------------------- on SynthFace v2
def test_v2_defaults_leave_no_vertex_static(tmp_path):
    model = face_model(2)
    cfg = SynthConfig(identities=1, fps=30.0, face_version=2, performances=1, write_ply=False)
    generate(cfg, tmp_path / "d", show_progress=False, report=False)
    data = FaceData.open(tmp_path / "d")
    for q, timeline in zip(data.sequences, data.meta["timelines"]):
        s = stillness(data.vertices[q.frames], data.neutral[q.subject], apex_frame(timeline), model.face_mask)
        assert s.static == 0.0, data.labels[q.label]
        assert s.still_at_apex <= 0.30, (data.labels[q.label], s.still_at_apex)
