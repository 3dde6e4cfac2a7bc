"""runtime/frames.py: frames, playback timing and selection, and opening
sources through the ``facecast.sources`` entry points."""

from __future__ import annotations

import numpy as np
import pytest

from models.face import synthface_template
from runtime.frames import Clip, Frame, PlaybackSource, SourceError, Topology, open_source, openers


class Clips(PlaybackSource):
    """Frames whose x offset is their index, cut into labelled clips."""

    def __init__(self, clips: list[Clip], fps: float = 10.0, n: int = 12) -> None:
        t = synthface_template()
        self.topology = Topology.from_template(t)
        self.base = t.vertices
        self.n = n
        times = np.concatenate([np.arange(c.stop - c.start) / fps for c in clips])
        super().__init__("clips", clips, times, fps)

    def __len__(self) -> int:
        return self.n

    def frame(self, i: int) -> Frame:
        c = next(c for c in self.clips if c.start <= i < c.stop)
        return Frame(self.base + np.float32(i), self.topology, t=float(self.times[i]), index=i,
                     label=c.label, subject=c.subject)


@pytest.fixture
def source():
    return Clips([Clip(0, 4, "smile", "a"), Clip(4, 8, "open", "a"), Clip(8, 12, "smile", "b")])


def test_poll_plays_the_clip_in_time_and_loops(source):
    assert source.poll(5.0).index == 0                    # play time starts at the first poll
    assert source.poll(5.05) is None                      # still frame 0 (10 fps)
    assert source.poll(5.1).index == 1
    assert source.poll(5.35).index == 3
    assert source.poll(5.41).index == 0                   # 4 frames at 10 fps: a 0.4 s loop
    assert [f.index for f in source.frames()] == [0, 1, 2, 3]
    assert [f.index for f in source] == [0, 1, 2, 3]


def test_select_switches_clips_and_restarts(source):
    assert source.labels() == ["smile", "open"] and source.subjects() == ["a", "b"]
    source.poll(0.0)
    source.select(label="open")
    assert source.current() == {"label": "open", "subject": "a"}
    assert source.poll(3.0).index == 4                    # restarted at the new clip's start
    source.select(subject="b")                            # (open, b) does not exist: keep b, relax label
    assert source.current() == {"label": "smile", "subject": "b"}
    assert [f.index for f in source.frames()] == [8, 9, 10, 11]
    with pytest.raises(SourceError, match="no label 'yawn'; it has smile, open"):
        source.select(label="yawn")


def test_frame_checks_its_arrays():
    t = synthface_template()
    topo = Topology.from_template(t)
    with pytest.raises(ValueError, match=r"vertices must be \[5229, 3\]"):
        Frame(t.vertices[:10], topo)
    with pytest.raises(ValueError, match=r"scalar must be \[5229\]"):
        Frame(t.vertices, topo, scalar=np.zeros(3))
    with pytest.raises(ValueError, match="face indices outside"):
        Topology(faces=np.array([[0, 1, 9]]), n_vertices=3)
    frame = Frame(t.vertices, topo)
    np.testing.assert_allclose(frame.landmark_points(), t.landmark_points())
    assert topo.key == t.topology_id
    assert Topology(faces=t.faces, n_vertices=t.n_vertices).key.endswith(":5229")


def test_open_source_asks_the_registered_openers(tmp_path):
    names = [name for name, _ in openers()]
    assert "data" in names and "recording" in names       # trainers' data folders, clients' .npz
    seen = []

    def mine(uri):
        seen.append(uri)
        return Clips([Clip(0, 12)]) if uri == "test://clips" else None

    assert isinstance(open_source("test://clips", extra=[("test", mine)]), Clips)
    with pytest.raises(SourceError, match="no such file or folder"):
        open_source(str(tmp_path / "missing"))
    with pytest.raises(SourceError, match=r"no frame source opens this \(tried: .*data.*recording"):
        open_source(str(tmp_path))                         # a folder without meta.json
    with pytest.raises(SourceError, match="udp://127.0.0.1:8765: no frame source opens this"):
        open_source("udp://127.0.0.1:8765")                # no opener takes that scheme
