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


# ------------------------------------------------------- interrupted runs
def _frames_then_interrupt(monkeypatch, module, name: str, after: int, where: str = "") -> None:
    """``module.name`` works ``after`` times (counting the calls whose first
    argument contains ``where``), then raises as a kill would stop it."""
    real, calls = getattr(module, name), []

    def flaky(*args, **kwargs):
        if where in str(args[:1]):
            if len(calls) >= after:
                raise KeyboardInterrupt
            calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(module, name, flaky)


def _refused_by_every_reader(folder, capsys, command="facecast data synth"):
    """FaceData.open, data info, data import (as tree and as output), playback: all name ``folder``."""
    from runtime.cli import main
    from runtime.frames import SourceError
    from trainers.data.playback import opener

    said = f"{folder}: incomplete data folder"
    with pytest.raises(DataError, match=f"interrupted run of `{command}` started at") as info:
        FaceData.open(folder)
    assert str(info.value).startswith(said) and "re-run" in str(info.value)
    capsys.readouterr()
    assert main(["data", "info", str(folder)]) == 2
    assert said in capsys.readouterr().err
    with pytest.raises(SourceError, match="incomplete data folder"):
        opener(str(folder))
    if command == "facecast data synth":
        elsewhere = folder.parent / "imported"
        assert main(["data", "import", str(folder), "--out", str(elsewhere), "--quiet"]) == 2
        assert f"{said} (its PLY tree is not a complete CoMA tree)" in capsys.readouterr().err
        assert not elsewhere.exists()


def test_a_killed_synth_is_refused_by_name_then_finished_by_a_rerun(synth_data, tmp_path, capsys):
    import signal
    import subprocess
    import sys
    import time

    from runtime.cli import main

    out = tmp_path / "data"
    proc = subprocess.Popen([sys.executable, "-m", "runtime.cli", "data", "synth", "--identities", "1",
                             "--out", str(out), "--quiet"], stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while len(list(out.glob("synth_000/*/*.ply"))) < 200:      # past the first sequence, mid-way
            assert proc.poll() is None and time.monotonic() < deadline, proc.stderr.read()
            time.sleep(0.02)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(20) == -signal.SIGTERM
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert (out / "incomplete.json").exists() and not (out / "meta.json").exists()
    _refused_by_every_reader(out, capsys)
    assert main(["data", "import", str(synth_data), "--out", str(out), "--quiet"]) == 2   # nor written into
    assert f"{out}: incomplete data folder:" in capsys.readouterr().err

    generate(SynthConfig(identities=1, labels=("eyebrow",)), out, show_progress=False, report=False)
    assert sorted(p.name for p in out.iterdir()) == ["cache", "meta.json", "synth_000"]
    assert [p.name for p in (out / "synth_000").iterdir()] == ["eyebrow"]   # the killed run's labels are gone
    data = FaceData.open(out)
    assert data.labels == ["eyebrow"] and len(list(out.glob("*/*/*.ply"))) == data.n_frames


def test_a_rerun_removes_the_stale_subjects_and_a_half_written_meta(tmp_path, monkeypatch, capsys):
    import trainers.data.synth as synth
    from runtime.cli import main

    out = tmp_path / "data"
    _frames_then_interrupt(monkeypatch, synth, "write_frame", after=40, where="synth_002")
    args = ["data", "synth", "--labels", "mouth_open", "--out", str(out), "--quiet"]
    assert main([*args, "--identities", "3"]) == 130
    assert f"{out} stays marked incomplete" in capsys.readouterr().err
    assert sorted(p.name for p in out.iterdir()) == ["cache", "incomplete.json", "synth_000", "synth_001",
                                                      "synth_002"]
    _refused_by_every_reader(out, capsys)
    monkeypatch.undo()

    _frames_then_interrupt(monkeypatch, synth, "mark_complete", after=0)   # killed after meta.json
    assert main([*args, "--identities", "2"]) == 130
    assert (out / "meta.json").exists() and (out / "incomplete.json").exists()
    _refused_by_every_reader(out, capsys)
    monkeypatch.undo()

    assert main([*args, "--identities", "1"]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["cache", "meta.json", "synth_000"]
    assert FaceData.open(out).subjects == ["synth_000"]


def test_synth_removes_only_its_own_files(tmp_path, monkeypatch):
    import trainers.data.synth as synth

    cfg = SynthConfig(identities=1, labels=("mouth_open",))
    out = tmp_path / "data"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    with pytest.raises(DataError, match=r"holds notes.txt, which no earlier run of `facecast data synth`"):
        generate(cfg, out, show_progress=False, report=False)
    (out / "notes.txt").unlink()

    # a leftover cache alone is facecast's own: cleaned
    (out / "cache").mkdir()
    (out / "cache" / "vertices.npy").write_bytes(b"stale")
    _frames_then_interrupt(monkeypatch, synth, "write_frame", after=50)
    with pytest.raises(KeyboardInterrupt):
        generate(cfg, out, show_progress=False, report=False)
    monkeypatch.undo()

    # a file of the user's inside a folder the interrupted run wrote: refused, named, kept
    mine = out / "synth_000" / "mouth_open" / "my_edit.ply"
    mine.write_bytes(b"mine")
    with pytest.raises(DataError, match="holds synth_000/mouth_open/my_edit.ply"):
        generate(cfg, out, show_progress=False, report=False)
    assert mine.exists() and (out / "incomplete.json").exists()
    mine.unlink()
    # a subject folder no run lists (e.g. copied in, or from before markers): refused, named
    (out / "synth_007" / "eyebrow").mkdir(parents=True)
    with pytest.raises(DataError, match="holds synth_007,"):
        generate(cfg, out, show_progress=False, report=False)
    (out / "synth_007" / "eyebrow").rmdir()
    (out / "synth_007").rmdir()
    generate(cfg, out, show_progress=False, report=False)
    assert FaceData.open(out).n_frames == len(list(out.glob("synth_000/mouth_open/*.ply")))


def test_an_interrupted_import_is_refused_then_imported_again(tmp_path, monkeypatch, capsys):
    import trainers.data.coma as coma

    tree, out = tmp_path / "tree", tmp_path / "imported"
    generate(SynthConfig(identities=1, labels=("eyebrow",), fps=30), tree, show_progress=False, report=False)
    _frames_then_interrupt(monkeypatch, coma, "read_frame", after=30)
    with pytest.raises(KeyboardInterrupt):
        import_coma(tree, out, synthface_template(), show_progress=False)
    monkeypatch.undo()
    _refused_by_every_reader(out, capsys, command="facecast data import")
    with pytest.raises(DataError, match="an interrupted run of `facecast data import` left it"):
        generate(SynthConfig(identities=1, labels=("eyebrow",)), out, show_progress=False, report=False)
    import_coma(tree, out, synthface_template(), show_progress=False)
    assert FaceData.open(out).n_frames == FaceData.open(tree).n_frames
