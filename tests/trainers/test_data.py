"""4D data: generator -> CoMA layout -> reader round trip, bad files, splits."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from models.face import synthface_template
from trainers.data.cache import DataError, FaceData
from trainers.data.coma import import_coma, scan
from trainers.data.sequences import sequence_weights
from trainers.data.splits import (
    apex_phases, expression_kfold, identity_kfold, interpolation, motion3dgan,
)
from trainers.data.synth import SynthConfig, generate


def test_layout_and_meta(synth_data):
    data = FaceData.open(synth_data)
    assert data.subjects == ["synth_000", "synth_001", "synth_002"]
    assert len(data.sequences) == 3 * 4
    for q in data.sequences:
        folder = synth_data / data.subjects[q.subject] / data.labels[q.label]
        files = sorted(folder.glob("*.ply"))
        assert len(files) == q.length
        assert files[0].name == f"{data.labels[q.label]}.000000.ply"
    assert data.vertices.dtype == np.float32 and data.vertices.shape[1:] == (synthface_template().n_vertices, 3)
    assert data.template.topology_id == synthface_template().topology_id


def test_sequences_go_neutral_apex_neutral(synth_data):
    data = FaceData.open(synth_data)
    for q in data.sequences:
        w = np.asarray(data.weights[q.frames])
        assert w[0].max() == 0.0 and w[-1].max() == 0.0
        assert w.max() > 0.3
        v = np.asarray(data.vertices[q.frames])
        assert np.array_equal(v[0], data.neutral[q.subject])          # starts at the true neutral
        assert 110 <= q.length <= 175                                  # about 140 at 60 fps


def test_sequence_length_scales_with_fps():
    rng = np.random.default_rng(0)
    lengths = [len(sequence_weights("mouth_open", 60, rng)[0]) for _ in range(50)]
    assert 125 < np.mean(lengths) < 155
    lengths30 = [len(sequence_weights("mouth_open", 30, rng)[0]) for _ in range(50)]
    assert np.mean(lengths30) == pytest.approx(np.mean(lengths) / 2, rel=0.15)


def test_generator_to_coma_layout_to_reader_round_trips_exactly(synth_data, tmp_path):
    meta, problems = import_coma(synth_data, tmp_path / "read", synthface_template(), show_progress=False)
    assert problems == []
    a, b = FaceData.open(synth_data), FaceData.open(tmp_path / "read")
    assert a.n_frames == b.n_frames and a.subjects == b.subjects and sorted(a.labels) == b.labels
    for qa in a.sequences:
        key = (a.subjects[qa.subject], a.labels[qa.label])
        qb = next(q for q in b.sequences if (b.subjects[q.subject], b.labels[q.label]) == key)
        assert qa.length == qb.length
        assert np.array_equal(a.vertices[qa.frames], b.vertices[qb.frames])
        assert np.array_equal(a.frame[qa.frames], b.frame[qb.frames])
    for s in range(len(a.subjects)):
        assert np.array_equal(a.neutral[s], b.neutral[s])
    assert np.isnan(b.weights).all() and np.isnan(b.identity).all()    # unknown for read data


def test_reader_reports_and_skips_bad_files(synth_data, tmp_path, capsys):
    tree = tmp_path / "tree"
    shutil.copytree(synth_data, tree, ignore=shutil.ignore_patterns("cache", "meta.json"))
    seq = sorted((tree / "synth_000" / "mouth_open").glob("*.ply"))
    seq[5].write_bytes(b"ply\nformat binary_little_endian 1.0\nelement vertex 99\nend_header\n\x00\x01")
    seq[6].write_bytes(b"")
    import trimesh

    small = trimesh.Trimesh(vertices=[[0, 0, 0], [1, 0, 0], [0, 1, 0]], faces=[[0, 1, 2]])
    seq[7].write_bytes(trimesh.exchange.ply.export_ply(small))
    (tree / "synth_001" / "empty_label").mkdir()
    (tree / "synth_nobody").mkdir()
    meta, problems = import_coma(tree, tmp_path / "out", synthface_template(), show_progress=False)
    text = "\n".join(problems)
    assert str(seq[5]) in text and str(seq[6]) in text
    assert f"{seq[7]}: 3 vertices, expected {synthface_template().n_vertices}" in text
    assert "empty_label" in text and "synth_nobody" in text
    data = FaceData.open(tmp_path / "out")
    original = FaceData.open(synth_data)
    assert data.n_frames == original.n_frames - 3
    assert "warning:" in capsys.readouterr().err


def test_reader_errors_name_the_folder(tmp_path):
    with pytest.raises(DataError, match="no such folder"):
        scan(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no subject folders"):
        scan(tmp_path / "empty")
    with pytest.raises(DataError, match="not a facecast data folder"):
        FaceData.open(tmp_path / "empty")


def test_generator_refuses_to_overwrite(synth_data):
    with pytest.raises(DataError, match="already holds"):
        generate(SynthConfig(identities=1, labels=("eyebrow",)), synth_data, show_progress=False, report=False)
    with pytest.raises(ValueError, match="unknown label"):
        SynthConfig(labels=("yawn",))


def test_identity_split_never_leaks_a_subject(synth_data):
    data = FaceData.open(synth_data)
    seen_test = set()
    for fold in range(3):
        s = identity_kfold(data, k=3, fold=fold)
        train_subj, test_subj = set(data.subject[s.train]), set(data.subject[s.test])
        assert train_subj.isdisjoint(test_subj) and len(test_subj) == 1
        assert len(s.train) + len(s.test) == data.n_frames
        seen_test |= test_subj
    assert seen_test == {0, 1, 2}
    with pytest.raises(ValueError, match="k-fold"):
        identity_kfold(data, k=4)


def test_expression_split_never_leaks_a_label(synth_data):
    data = FaceData.open(synth_data)
    for fold in range(4):
        s = expression_kfold(data, k=4, fold=fold)
        assert set(data.label[s.train]).isdisjoint(set(data.label[s.test]))
        assert len(set(data.label[s.test])) == 1


def test_interpolation_split(synth_data):
    data = FaceData.open(synth_data)
    s = interpolation(data)
    assert len(s.test) / data.n_frames == pytest.approx(0.1, abs=0.01)
    assert np.intersect1d(s.train, s.test).size == 0


def test_motion3dgan_split(synth_data):
    data = FaceData.open(synth_data)
    split = motion3dgan(data, per_direction=3)
    pairs = {(q.subject, q.label) for q in data.sequences}
    assert {(t.subject, t.label) for t in split.test} == pairs and len(split.test) == len(pairs)
    assert len(split.train) == len(data.sequences) * 6 - len(pairs)
    for sub in split.train + split.test:
        lm = data.landmarks(sub.frames)
        motion = np.linalg.norm(lm - lm[0], axis=-1).mean(-1)
        assert motion[-1] > 0.5 * motion.max()            # ends at (near) the apex
        assert len(sub.frames) >= 15
    assert any(s.backwards for s in split.train) and any(not s.backwards for s in split.train)


def test_apex_phases():
    motion = np.concatenate([np.zeros(10), np.linspace(0, 1, 20), np.ones(15), np.linspace(1, 0, 20), np.zeros(5)])
    lead, first, last, tail = apex_phases(motion)
    assert lead == 11 and motion[first] >= 0.9 and motion[last] >= 0.9 and motion[tail] <= 0.1
