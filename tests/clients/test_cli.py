"""clients/cli.py: ``facecast render`` pictures and videos, bad input, no GL."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from clients.cli import main
from clients.recording import recording_from_frames, save_recording
from models.face import synthface_template
from runtime.frames import Frame
from runtime.render.gallery import label_frames

ROOT = Path(__file__).resolve().parents[2]


def _rgb(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB")).astype(int)


def _skin(img: np.ndarray) -> np.ndarray:
    return (img[..., 0] > img[..., 1] + 15) & (img[..., 1] > img[..., 2]) & (img[..., 0] > 120)


@pytest.fixture(scope="module")
def recording(tmp_path_factory):
    neutral = synthface_template().vertices
    frames = []
    for f in label_frames(("mouth_open", "eyebrow")):
        for j in range(6):                                             # neutral to apex
            frames.append(Frame(vertices=neutral + (f.vertices - neutral) * j / 5, topology=f.topology,
                                t=len(frames) / 30.0,
                                scalar=f.scalar * j / 5, scalar_name=f.scalar_name, label=f.label))
    return save_recording(tmp_path_factory.mktemp("rec") / "take.npz", recording_from_frames(frames, fps=30.0))


def test_render_default_is_the_template_with_landmarks(tmp_path, capsys):
    out = tmp_path / "template.png"
    assert main(["render", "--out", str(out)]) == 0
    assert capsys.readouterr().out.startswith(f"wrote {out}: the template, 512x512 px")
    img = _rgb(out)
    assert img.shape == (512, 512, 3)
    assert 0.25 < _skin(img).mean() < 0.6
    green = (img[..., 1] > 150) & (img[..., 0] < 120) & (img[..., 2] < 150)   # the landmark dots
    assert green.sum() > 68 * 5
    no_lm = tmp_path / "bare.png"
    assert main(["render", "--out", str(no_lm), "--no-landmarks", "--view", "profile",
                 "--projection", "orthographic"]) == 0
    bare = _rgb(no_lm)
    assert not ((bare[..., 1] > 150) & (bare[..., 0] < 120) & (bare[..., 2] < 150)).any()


def test_render_grids(tmp_path):
    labels = tmp_path / "labels.png"
    assert main(["render", "--grid", "labels", "--size", "96x120", "--out", str(labels), "--quiet"]) == 0
    img = _rgb(labels)
    cell = 120 + round(12 * 1.7)                                      # tile + caption band (12 px font)
    assert img.shape == (3 * cell, 4 * 96, 3)                         # 12 tiles, 4 columns
    tiles = img.reshape(3, cell, 4, 96, 3).transpose(0, 2, 1, 3, 4).reshape(12, cell, 96, 3)[:, :120]
    bands = img.reshape(3, cell, 4, 96, 3)[:, 120:]
    assert (bands.sum(axis=-1) < 300).any() and not _skin(bands.reshape(-1, 96, 3)).any()   # text, no face
    assert all(_skin(t).mean() > 0.1 for t in tiles)                  # a face in every tile
    ids = tmp_path / "ids.png"
    assert main(["render", "--grid", "identities", "--count", "4", "--columns", "2", "--size", "80",
                 "--out", str(ids), "--quiet", "--no-captions"]) == 0
    img = _rgb(ids)
    assert img.shape == (160, 160, 3)
    tiles = [img[:80, :80], img[:80, 80:], img[80:, :80], img[80:, 80:]]
    masks = [_skin(t) for t in tiles]
    assert all(m.mean() > 0.1 for m in masks)
    assert len({m.tobytes() for m in masks}) == 4                     # four different faces
    views = tmp_path / "views.png"
    assert main(["render", "--grid", "views", "--size", "80", "--out", str(views), "--quiet", "--no-captions"]) == 0
    assert _rgb(views).shape == (80, 240, 3)


def test_render_v1_and_v2_side_by_side(tmp_path, capsys):
    """``--face-version 1,2``: each picture for v1 then v2, under one camera; a
    v2 picture differs from v1's only where v2's expressions do."""
    from runtime.render.gallery import KEY_SHAPES

    shapes = tmp_path / "shapes.png"
    assert main(["render", "--grid", "shapes", "--face-version", "1,2", "--columns", "2", "--size", "64x80",
                 "--out", str(shapes), "--quiet", "--no-captions"]) == 0
    assert "12 key ARKit shapes at 1, SynthFace v1 and v2 side by side" in capsys.readouterr().out
    img = _rgb(shapes)
    assert img.shape == (len(KEY_SHAPES) // 2 * 80, 4 * 64, 3)     # 2 shapes a row, each for v1 then v2
    tiles = img.reshape(6, 80, 4, 64, 3).transpose(0, 2, 1, 3, 4)
    assert all(_skin(t).mean() > 0.1 for t in tiles.reshape(24, 80, 64, 3))
    jaw_v1, jaw_v2 = tiles[0, 0], tiles[0, 1]                      # jawOpen: v2 opens wider
    assert not np.array_equal(jaw_v1, jaw_v2)
    one, two = tmp_path / "v1.png", tmp_path / "v2.png"
    for version, out in (("1", one), ("2", two)):
        assert main(["render", "--face-version", version, "--size", "64", "--out", str(out)]) == 0
    assert np.array_equal(_rgb(one), _rgb(two))                    # the same template
    pair = tmp_path / "pair.png"
    assert main(["render", "--heatmap", "high_smile", "--face-version", "1,2", "--size", "64", "--no-captions",
                 "--out", str(pair)]) == 0
    assert _rgb(pair).shape[1] > 2 * 64                            # two faces, then one colour bar


def test_render_heatmap_has_a_colour_bar(tmp_path, capsys):
    out = tmp_path / "heat.png"
    assert main(["render", "--heatmap", "mouth_extreme", "--view", "three_quarter", "--out", str(out)]) == 0
    assert "mouth_extreme apex, distance to neutral" in capsys.readouterr().out
    img = _rgb(out)
    assert img.shape[0] == 512 and img.shape[1] > 512 + 40           # the face, then a colour bar column
    bar = img[:, 512:]
    # viridis runs from purple (blue > green) at the bottom to yellow (green > blue) at the top
    column = bar[:, np.argmax(np.ptp(bar[..., 1] - bar[..., 2], axis=0))]
    rows = np.arange(len(column))
    yellow, purple = rows[column[:, 1] > column[:, 2] + 80], rows[column[:, 2] > column[:, 1] + 20]
    assert len(yellow) and len(purple) and yellow.mean() < purple.mean()
    grid = tmp_path / "heatgrid.png"
    assert main(["render", "--grid", "labels", "--heatmap", "--size", "64x80", "--out", str(grid), "--quiet"]) == 0
    assert _rgb(grid).shape[1] > 4 * 64                               # a colour bar column on the right


def test_render_sequence_to_gif_mp4_and_png(tmp_path, recording, capsys):
    import imageio.v2 as iio2
    import imageio.v3 as iio

    gif = tmp_path / "clip.gif"
    assert main(["render", "--sequence", str(recording), "--label", "eyebrow", "--size", "96", "--out", str(gif),
                 "--quiet"]) == 0
    printed = capsys.readouterr().out
    assert "6 frame(s)" in printed and "label eyebrow" in printed
    frames = iio.imread(gif, index=None)
    assert frames.shape[:3] == (6, 96, 96)
    assert _skin(frames[3].astype(int)[..., :3]).mean() > 0.15
    mp4 = tmp_path / "clip.mp4"
    assert main(["render", "--sequence", str(recording), "--heatmap", "--size", "96", "--out", str(mp4),
                 "--quiet"]) == 0
    reader = iio2.get_reader(mp4, format="FFMPEG")
    assert reader.count_frames() == 6 and reader.get_meta_data()["size"] == (96, 96)
    still = tmp_path / "still.png"
    assert main(["render", "--sequence", str(recording), "--frame", "5", "--size", "64", "--out", str(still)]) == 0
    assert _rgb(still).shape == (64, 64, 3)


def test_bad_input_is_reported(tmp_path, capsys, recording):
    cases = [
        (["render", "--out", str(tmp_path / "x.txt")], "write .png, .gif or .mp4"),
        (["render", "--out", str(tmp_path / "x.gif")], "a video needs --sequence"),
        (["render", "--heatmap", "yawn", "--out", str(tmp_path / "x.png")], "takes a CoMA label"),
        (["render", "--sequence", str(tmp_path / "nowhere"), "--out", str(tmp_path / "x.gif")],
         "nowhere: no such file or folder"),
        (["render", "--sequence", str(recording), "--label", "yawn", "--out", str(tmp_path / "x.gif")],
         "no label 'yawn'"),
        (["render", "--sequence", str(recording), "--frame", "99", "--out", str(tmp_path / "x.png")],
         "--frame 99"),
        (["render", "--template", str(tmp_path / "none.obj"), "--template-landmarks", str(tmp_path / "l.json"),
          "--out", str(tmp_path / "x.png")], "template file not found"),
        (["view", str(tmp_path / "missing.npz")], "missing.npz: no such recording file"),
        (["render", "--sequence", str(recording), "--face-version", "2", "--out", str(tmp_path / "x.gif")],
         "--face-version picks the SynthFace of a picture"),
    ]
    for argv, message in cases:
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert message in err and err.startswith(f"facecast {argv[0]}: "), (argv, err)
        assert not (tmp_path / "x.png").exists() and not (tmp_path / "x.gif").exists()
    for bad in ("3", "1,1", "v2"):
        with pytest.raises(SystemExit):
            main(["render", "--face-version", bad, "--out", str(tmp_path / "x.png")])
        assert "--face-version takes 1, 2" in capsys.readouterr().err


def test_no_gl_names_the_packages_and_the_fix(tmp_path):
    """With EGL pointed at a vendor file that does not exist, rendering fails
    with the Debian packages to install and the make target that does it."""
    env = dict(os.environ, __EGL_VENDOR_LIBRARY_FILENAMES=str(tmp_path / "nonexistent.json"))
    proc = subprocess.run([sys.executable, "-m", "clients.cli", "render", "--out", str(tmp_path / "t.png")],
                          env=env, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.startswith("facecast render: no OpenGL context over EGL")
    for needle in ("libegl1", "libgl1-mesa-dri", "make system-deps"):
        assert needle in proc.stderr
    assert not (tmp_path / "t.png").exists()


def test_render_a_user_template(tmp_path, reference_dir):
    out = tmp_path / "flame.png"
    assert main(["render", "--template", str(reference_dir / "coma_template.obj"), "--template-landmarks",
                 str(reference_dir / "flame68_landmark_embedding.json"), "--view", "three_quarter",
                 "--size", "128", "--out", str(out)]) == 0
    assert 0.2 < _skin(_rgb(out)).mean() < 0.7
