"""clients/recording.py: the .npz recording format, its checks and its playback."""

from __future__ import annotations

import numpy as np
import pytest

from clients.recording import (
    FORMAT, RecordingError, RecordingSource, load_recording, recording_from_frames, save_recording,
)
from runtime.frames import open_source
from runtime.render.gallery import label_frames


@pytest.fixture(scope="module")
def frames():
    out = []
    for k, f in enumerate(label_frames(("mouth_open", "high_smile"))):
        for j in range(3):            # 3 frames per label, 0.1 s apart
            out.append(type(f)(vertices=f.vertices * (1 + 0.01 * j), topology=f.topology, t=0.1 * (3 * k + j),
                               index=3 * k + j, landmarks=f.landmark_points(), scalar=f.scalar,
                               scalar_name=f.scalar_name, label=f.label, subject="mean face"))
    return out


def test_round_trip(tmp_path, frames):
    rec = recording_from_frames(frames, fps=10.0, weights=np.zeros((6, 52), np.float32))
    path = save_recording(tmp_path / "take.npz", rec)
    with np.load(path, allow_pickle=False) as z:                     # plain arrays, no pickles
        assert str(z["format"]) == FORMAT and z["vertices"].dtype == np.float32 and z["faces"].dtype == np.int32
    back = load_recording(path)
    np.testing.assert_array_equal(back.vertices, rec.vertices)
    np.testing.assert_array_equal(back.topology.faces, frames[0].topology.faces)
    np.testing.assert_allclose(back.t, [0.0, 0.1, 0.2, 0.3, 0.4, 0.5])
    np.testing.assert_array_equal(back.landmarks, rec.landmarks)
    np.testing.assert_array_equal(back.scalar, rec.scalar)
    assert list(back.labels) == ["mouth_open"] * 3 + ["high_smile"] * 3
    assert back.scalar_name == "distance to neutral (mm)" and back.fps == 10.0
    assert back.topology.name == "synthface" and back.topology.id == frames[0].topology.id
    np.testing.assert_array_equal(back.topology.landmarks.bary, frames[0].topology.landmarks.bary)
    assert back.weights.shape == (6, 52)


def test_playback_cuts_clips_by_label(tmp_path, frames):
    path = save_recording(tmp_path / "take.npz", recording_from_frames(frames, fps=10.0))
    source = open_source(str(path))                                   # through the entry point
    assert isinstance(source, RecordingSource)
    assert source.labels() == ["mouth_open", "high_smile"] and source.subjects() == ["mean face"]
    assert [f.index for f in source.frames()] == [0, 1, 2]
    source.select(label="high_smile")
    shown = [f for f in source.frames()]
    assert [f.index for f in shown] == [3, 4, 5] and shown[0].label == "high_smile"
    np.testing.assert_array_equal(shown[1].vertices, frames[4].vertices)
    lo, hi = source.scalar_range()
    assert lo == 0.0 and hi == pytest.approx(float(frames[3].scalar.max()))
    assert source.poll(0.0).index == 3 and source.poll(0.25).index == 5


def test_minimal_recording_has_one_clip(tmp_path, frames):
    f = frames[0]
    bare = [type(f)(vertices=g.vertices, topology=f.topology, t=g.t) for g in frames[:4]]
    path = save_recording(tmp_path / "bare.npz", recording_from_frames(bare))
    source = open_source(str(path))
    assert source.labels() == [] and len(source.clips) == 1 and source.scalar_range() is None
    assert source.frame(2).landmark_points().shape == (68, 3)         # from the stored embedding


def test_bad_files_are_named(tmp_path, frames):
    with pytest.raises(RecordingError, match=r"missing.npz: no such recording file"):
        open_source(str(tmp_path / "missing.npz"))
    corrupt = tmp_path / "corrupt.npz"
    corrupt.write_bytes(b"PK\x03\x04 this is not a zip archive")
    with pytest.raises(RecordingError, match=r"corrupt.npz: not a readable .npz recording"):
        load_recording(corrupt)
    foreign = tmp_path / "foreign.npz"
    np.savez(foreign, x=np.zeros(3))
    with pytest.raises(RecordingError, match=r"foreign.npz: not a facecast recording"):
        load_recording(foreign)
    good = recording_from_frames(frames)
    broken = tmp_path / "broken.npz"
    with np.load(save_recording(tmp_path / "good.npz", good)) as z:
        arrays = dict(z)
    arrays["t"] = arrays["t"][::-1].copy()
    np.savez(broken, **arrays)
    with pytest.raises(RecordingError, match=r"broken.npz: t must be \[6\] seconds, non-decreasing"):
        load_recording(broken)
    arrays = dict(np.load(tmp_path / "good.npz"))
    arrays["scalar"] = arrays["scalar"][:, :10]
    np.savez(broken, **arrays)
    with pytest.raises(RecordingError, match=r"scalar must be \[6, 5229\], got \[6, 10\]"):
        load_recording(broken)
    with pytest.raises(ValueError, match="ends in .npz"):
        save_recording(tmp_path / "take.json", good)
