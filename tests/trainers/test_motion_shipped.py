"""The shipped motion checkpoints (Motion3DGAN, LSTM baseline, classifier) reach
the figures recorded when they were trained, on the default SynthFace data."""

from __future__ import annotations

from pathlib import Path

import pytest

from models.checkpoint import read_meta
from models.motion3dgan import DEFAULT_CHECKPOINT, count_parameters, load_motion3dgan
from models.paths import data_dir

SHIPPED = DEFAULT_CHECKPOINT.parent
FILES = {"gan": "motion3dgan_synthface.safetensors", "lstm": "motion_lstm_synthface.safetensors",
         "classifier": "motion_classifier_synthface.safetensors"}
#: accuracy band (percentage points) around the recorded figures; the evaluation is seeded,
#: so this only absorbs floating-point differences between machines and BLAS builds
BAND = 5.0
#: FID may move this share around its recorded value for the same reason
FID_SHARE = 0.25
MAX_BYTES = 4 * 1024 * 1024


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Run these small models on one thread, as the commands do (``--threads``), restored afterwards."""
    from trainers.motion.cli import THREADS, threads

    with threads(THREADS):
        yield


@pytest.fixture(scope="module")
def recorded():
    return read_meta(SHIPPED / FILES["gan"])


@pytest.fixture(scope="module")
def default_data(recorded, tmp_path_factory) -> Path:
    """``data/synth`` when it is the data the checkpoints were trained on; else the same set, made afresh."""
    from trainers.data.cache import DataError, FaceData

    path = data_dir() / "synth"
    try:
        face = FaceData.open(path)
        if face.n_frames == recorded.data["frames"] and face.template.topology_id == recorded.data["topology_id"]:
            return path
    except DataError:
        pass
    from trainers.data.synth import SynthConfig, generate

    out = tmp_path_factory.mktemp("default") / "synth"                  # `facecast data synth` defaults, cache only
    generate(SynthConfig(write_ply=False), out, show_progress=False, report=False)
    return out


def test_shipped_files_are_small_and_describe_themselves(recorded):
    for kind, name in FILES.items():
        path = SHIPPED / name
        assert path.is_file(), f"{path} is missing: train it with 'facecast train motion --out {SHIPPED}'"
        assert path.stat().st_size < MAX_BYTES
        meta = read_meta(path)
        assert meta.topology_id is None and meta.data["landmark_scheme"] == "ibug68"
        assert meta.data["split"]["name"] == "motion3dgan" and meta.data["frames"] == recorded.data["frames"]
    assert recorded.metrics["reference_kept"] in ("karcher", "sample")
    assert set(recorded.metrics["references"]) == {"karcher", "sample"}
    gan = load_motion3dgan(SHIPPED / FILES["gan"])
    assert count_parameters(gan.generator) == recorded.metrics["parameters"]["generator"] < 1_000_000


@pytest.mark.slow
def test_shipped_checkpoints_reach_their_recorded_band(recorded, default_data):
    from trainers.motion.cli import load_all
    from trainers.motion.data import load_motion_data
    from trainers.motion.evaluate import QUICK, EvalConfig, gen_lm

    gan, lstm, clf = load_all(SHIPPED)
    data = load_motion_data(default_data)
    cfg = EvalConfig(**{**recorded.metrics["eval_config"], "seeds": tuple(recorded.metrics["eval_config"]["seeds"])})
    assert (cfg.samples, cfg.seeds) == (QUICK.samples, QUICK.seeds)     # what --quick measures
    row = gen_lm(data, gan, lstm, clf, cfg)
    for column in ("gt", "motion3dgan", "lstm"):
        assert row["accuracy"][column] == pytest.approx(recorded.metrics["accuracy"][column], abs=BAND)
    for column in ("motion3dgan", "lstm"):
        assert row["fid"][column] == pytest.approx(recorded.metrics["fid"][column], rel=FID_SHARE)
    # the acceptance on FID holds: Motion3DGAN's samples are closer to the real motions than the
    # LSTM's. On accuracy it does not: the classifier saturates on SynthFace (GT and LSTM 100 %,
    # Motion3DGAN about 99 %); docs/results.md says what was measured and why.
    assert row["fid"]["motion3dgan"] < row["fid"]["lstm"]
