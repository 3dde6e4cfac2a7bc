"""trainers/data/playback.py: a data folder played as a frame source."""

from __future__ import annotations

import json

import numpy as np
import pytest

from runtime.frames import SourceError, open_source
from trainers.data.playback import SCALAR_NAME, DataSource


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    from trainers.data.synth import SynthConfig, generate

    out = tmp_path_factory.mktemp("play") / "data"
    generate(SynthConfig(identities=2, labels=("mouth_open", "eyebrow"), write_ply=False), out,
             show_progress=False, report=False)
    return out


def test_opens_through_the_entry_point(data_dir):
    source = open_source(str(data_dir))
    assert isinstance(source, DataSource)
    assert source.labels() == ["mouth_open", "eyebrow"]
    assert source.subjects() == ["synth_000", "synth_001"]
    assert source.fps == 60.0 and len(source.clips) == 4
    assert source.current() == {"label": "mouth_open", "subject": "synth_000"}


def test_frames_are_the_cache_with_distance_to_neutral(data_dir):
    from trainers.data.cache import FaceData

    data = FaceData.open(data_dir)
    source = DataSource(data)
    source.select(label="eyebrow", subject="synth_001")
    seq = next(q for q in data.sequences
               if data.labels[q.label] == "eyebrow" and data.subjects[q.subject] == "synth_001")
    frames = list(source.frames())
    assert len(frames) == seq.length
    k = seq.length // 2
    np.testing.assert_array_equal(frames[k].vertices, data.vertices[seq.start + k])
    expected = np.linalg.norm(data.vertices[seq.start + k] - data.neutral[1], axis=-1) * 1000.0
    np.testing.assert_allclose(frames[k].scalar, expected, rtol=1e-5, atol=1e-4)
    assert frames[k].scalar_name == SCALAR_NAME and frames[k].label == "eyebrow" and frames[k].subject == "synth_001"
    assert frames[0].scalar.max() < 0.05                        # sequences start at neutral
    lo, hi = source.scalar_range()
    assert lo == 0.0 and hi == pytest.approx(max(f.scalar.max() for f in frames), rel=1e-5)
    assert frames[1].t - frames[0].t == pytest.approx(1 / 60)
    assert frames[0].landmark_points().shape == (68, 3)
    # play time: frame k of the clip is due k / fps after the first poll
    assert source.poll(10.0).index == seq.start
    assert source.poll(10.0 + k / 60).index == seq.start + k


def test_bad_folders_are_named(data_dir, tmp_path):
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "meta.json").write_text(json.dumps({"format": "something-else", "version": 1}))
    with pytest.raises(SourceError, match=r"broken/meta.json: format 'something-else'"):
        open_source(str(broken))
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(SourceError, match="no frame source opens this"):
        open_source(str(empty))


def test_render_a_data_folder_sequence(data_dir, tmp_path, capsys):
    import imageio.v3 as iio

    from clients.cli import main

    out = tmp_path / "clip.gif"
    assert main(["render", "--sequence", str(data_dir), "--label", "mouth_open", "--subject", "synth_001",
                 "--size", "64", "--fps", "30", "--out", str(out), "--quiet"]) == 0
    assert "label mouth_open, subject synth_001" in capsys.readouterr().out
    frames = iio.imread(out, index=None)
    assert frames.shape[1:3] == (64, 64) and len(frames) > 30
