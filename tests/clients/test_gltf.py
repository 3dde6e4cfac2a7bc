"""clients/gltf.py: recorded takes as binary glTF, read back three ways
(our reader, trimesh, the Khronos validator)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pygltflib as gl
import pytest

from clients.gltf import SIDE_BY_SIDE, GlbReport, read_glb_frames, read_glb_weights, write_glb
from models.constants import MM_PER_M
from models.face import sample_identities, synthface
from models.face.labels import apex_weights
from runtime.protocol import BLENDSHAPE_NAMES

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "tests" / "artifacts"
VALIDATOR = ROOT / ".venv" / "node" / "node_modules" / "gltf-validator"
FPS = 60.0
T0 = 3.25                      # the take's media time does not start at 0
LABELS = ("high_smile", "mouth_open", "eyebrow")
TOL_MM = 0.01
#: float32 slack on top of a reported error (mm): positions ~0.1 m carry ~1e-5 mm of rounding
SLACK_MM = 1e-4


def _take(frames: int = 120):
    """A take of one sampled identity: neutral -> smile -> open mouth -> raised brows
    (each rises and falls, overlapping), with its known ARKit weights."""
    model = synthface()
    apex = np.stack([apex_weights(label, np.random.default_rng([5, i]))[0] for i, label in enumerate(LABELS)])
    s = np.linspace(0.0, len(LABELS), frames)
    env = np.stack([np.sin(np.pi * np.clip(s - j, 0.0, 1.0)) ** 2 for j in range(len(LABELS))], axis=1)
    weights = np.clip(env @ apex, 0.0, 1.0).astype(np.float32)
    beta = sample_identities(1, np.random.default_rng(3))
    vertices = model.vertices(np.repeat(beta, frames, axis=0), weights)
    t = T0 + np.arange(frames) / FPS
    return vertices, model.template.faces, t, weights


@pytest.fixture(scope="module")
def take():
    return _take()


@pytest.fixture(scope="module")
def written(take, tmp_path_factory):
    vertices, faces, t, weights = take
    path = tmp_path_factory.mktemp("gltf") / "take.glb"
    report = write_glb(path, vertices, faces, t, weights, tolerance_mm=TOL_MM)
    return path, report


def _errors_mm(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.linalg.norm(a.astype(np.float64) - b.astype(np.float64), axis=-1) * MM_PER_M


def test_report_and_layout(take, written):
    vertices, faces, t, weights = take
    path, report = written
    assert isinstance(report, GlbReport)
    assert (report.frames, report.vertices) == (120, 5229)
    assert 1 <= report.targets <= 64 and report.max_error_mm <= TOL_MM
    assert report.bytes == path.stat().st_size
    print(f"\n120-frame take: {report.targets} targets, {report.max_error_mm:.4f} mm, {report.bytes} bytes, "
          f"ARKit rig {report.weights_rig_error_mm:.3f} mm")
    ARTIFACTS.mkdir(exist_ok=True)
    shutil.copyfile(path, ARTIFACTS / "take.glb")

    doc = gl.GLTF2.load_binary(path)
    assert doc.asset.generator == "facecast"
    assert doc.scenes[doc.scene].extras["frames"] == 120
    assert doc.scenes[doc.scene].extras["fps"] == pytest.approx(FPS)
    face, arkit = doc.meshes
    assert (face.name, arkit.name) == ("face", "arkit")
    assert face.extras["targetNames"] == [f"pc{k:02d}" for k in range(report.targets)]
    prim = face.primitives[0]
    assert doc.accessors[prim.indices].componentType == gl.UNSIGNED_SHORT       # N < 65536
    assert prim.attributes.NORMAL is not None
    normals = read_accessor(doc, prim.attributes.NORMAL)
    np.testing.assert_allclose(np.linalg.norm(normals, axis=-1), 1.0, atol=1e-6)
    for target in prim.targets:
        acc = doc.accessors[target["POSITION"]]
        assert len(acc.min) == 3 and len(acc.max) == 3
    # the default weights are the first frame's, and the animation starts at 0
    channel, sampler = doc.animations[0].channels[0], doc.animations[0].samplers[0]
    assert channel.target.path == "weights" and doc.nodes[channel.target.node].name == "face"
    assert sampler.interpolation == "LINEAR"
    times = doc.accessors[sampler.input]
    assert times.min == [0.0] and times.max[0] == pytest.approx((t[-1] - t[0]), abs=1e-6)
    np.testing.assert_allclose(face.weights, read_accessor(doc, sampler.output)[:report.targets], atol=0)
    assert np.abs(read_accessor(doc, sampler.output)).max() <= 1.0


def read_accessor(doc, index):
    """An accessor decoded independently of clients.gltf (tightly packed float32 only)."""
    acc = doc.accessors[index]
    view = doc.bufferViews[acc.bufferView]
    width = {"SCALAR": 1, "VEC3": 3}[acc.type]
    assert acc.componentType == gl.FLOAT and not view.byteStride
    data = np.frombuffer(doc.binary_blob(), np.float32, count=acc.count * width,
                         offset=(view.byteOffset or 0) + (acc.byteOffset or 0))
    return data.reshape(acc.count, width) if width > 1 else data


def test_frames_read_back_within_tolerance(take, written):
    vertices, _, t, _ = take
    path, report = written
    back = read_glb_frames(path, t - t[0])
    assert back.shape == vertices.shape and back.dtype == np.float32
    err = _errors_mm(back, vertices)
    assert err.max() <= TOL_MM + SLACK_MM
    assert err.max() == pytest.approx(report.max_error_mm, abs=SLACK_MM)       # the report is honest
    # the take moved far more than the tolerance: the comparison means something
    assert _errors_mm(vertices, vertices[0]).max() > 3.0


def test_between_frames_is_linear(take, written):
    vertices, _, t, _ = take
    path, _ = written
    i = np.array([10, 45, 80, 118])
    t_rel = t - t[0]
    ends = read_glb_frames(path, np.concatenate([t_rel[i], t_rel[i + 1]])).reshape(2, len(i), -1, 3)
    mid = read_glb_frames(path, 0.5 * (t_rel[i] + t_rel[i + 1]))
    lo, hi = np.minimum(*ends), np.maximum(*ends)
    assert np.all(mid >= lo - 1e-7) and np.all(mid <= hi + 1e-7)
    assert _errors_mm(mid, 0.5 * (ends[0] + ends[1])).max() < 1e-4
    assert _errors_mm(mid, vertices[i]).max() > 0.01       # really between, not on a frame
    # clamped at both ends
    outside = read_glb_frames(path, [-1.0, t_rel[-1] + 5.0])
    np.testing.assert_allclose(outside, read_glb_frames(path, [0.0, t_rel[-1]]), atol=1e-9)


def test_trimesh_reads_the_base_meshes(take, written):
    import trimesh

    vertices, faces, _, weights = take
    path, _ = written
    scene = trimesh.load(path, process=False)
    face, arkit = scene.geometry["face"], scene.geometry["arkit"]
    assert face.vertices.shape == (5229, 3) and arkit.vertices.shape == (5229, 3)
    np.testing.assert_array_equal(face.faces, faces)
    np.testing.assert_array_equal(arkit.faces, faces)
    np.testing.assert_allclose(face.vertices, vertices.astype(np.float64).mean(axis=0), atol=1e-7)
    np.testing.assert_array_equal(arkit.vertices, vertices[np.argmin(weights.sum(axis=1))])
    # the rig stands beside the face, 1.2 face widths to +x
    matrix, _ = scene.graph["arkit"]
    width = np.ptp(face.vertices[:, 0])
    np.testing.assert_allclose(matrix[:3, 3], [SIDE_BY_SIDE * width, 0.0, 0.0], atol=1e-6)


def test_arkit_channel(take, written):
    vertices, _, t, weights = take
    path, report = written
    doc = gl.GLTF2.load_binary(path)
    assert doc.meshes[1].extras["targetNames"] == list(BLENDSHAPE_NAMES)
    back = read_glb_weights(path, t - t[0])
    assert back.shape == (120, 52) and back.dtype == np.float32
    np.testing.assert_allclose(back, weights, atol=1e-6)
    # the fitted rig reproduces the take within its (honestly) reported error
    rig = read_glb_frames(path, t - t[0], mesh="arkit")
    err = _errors_mm(rig, vertices).max()
    assert err <= report.weights_rig_error_mm + SLACK_MM
    assert err == pytest.approx(report.weights_rig_error_mm, abs=SLACK_MM)
    # a linear fit of a nonlinear (jaw rotation) model: close, not exact
    assert 0.0 < report.weights_rig_error_mm < 2.0


def _validate(path: Path) -> dict:
    node = shutil.which("node")
    if node is None:
        pytest.skip("Node.js is not installed: the Khronos glTF validator runs on it")
    if not (VALIDATOR / "package.json").is_file():
        pytest.skip(f"the Khronos glTF validator is not installed at {VALIDATOR} (run `make install`)")
    script = ("const v = require(process.argv[1]); const fs = require('fs');"
              "v.validateBytes(new Uint8Array(fs.readFileSync(process.argv[2])))"
              ".then(r => console.log(JSON.stringify(r)))"
              ".catch(e => { console.error(String(e)); process.exit(1); });")
    done = subprocess.run([node, "-e", script, str(VALIDATOR), str(path)], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


@pytest.mark.parametrize("kind", ["take", "one frame", "capped, no weights"])
def test_khronos_validator(kind, take, written, tmp_path):
    vertices, faces, t, weights = take
    if kind == "take":
        path = written[0]
    elif kind == "one frame":
        path = tmp_path / "one.glb"
        write_glb(path, vertices[:1], faces, t[:1], weights[:1])
    else:
        path = tmp_path / "capped.glb"
        write_glb(path, vertices[:30], faces, t[:30], max_targets=2)
    report = _validate(path)
    issues = report["issues"]
    print(f"\nglTF validator ({kind}): {issues['numErrors']} errors, {issues['numWarnings']} warnings, "
          f"{issues['numInfos']} infos")
    assert issues["numErrors"] == 0, json.dumps(issues["messages"][:10], indent=1)


def test_capped_error_is_reported_honestly(take, tmp_path):
    vertices, faces, t, _ = take
    path = tmp_path / "capped.glb"
    report = write_glb(path, vertices, faces, t, max_targets=2)
    assert report.targets == 2 and report.weights_rig_error_mm is None
    assert report.max_error_mm > TOL_MM
    err = _errors_mm(read_glb_frames(path, t - t[0]), vertices).max()
    assert err == pytest.approx(report.max_error_mm, abs=SLACK_MM)
    assert read_glb_weights(path, [0.0]) is None


def test_one_frame_and_repeated_times(take, tmp_path):
    vertices, faces, t, weights = take
    one = write_glb(tmp_path / "one.glb", vertices[:1], faces, t[:1], weights[:1])
    assert (one.frames, one.targets, one.max_error_mm) == (1, 0, 0.0)
    np.testing.assert_array_equal(read_glb_frames(tmp_path / "one.glb", [0.0, 1.0]), vertices[[0, 0]])
    assert gl.GLTF2.load_binary(tmp_path / "one.glb").scenes[0].extras == {"frames": 1}      # no fps
    # frames sharing a time: glTF times must strictly increase, so the later frame is kept
    times = t[:6].copy()
    times[3] = times[2]
    rep = write_glb(tmp_path / "dup.glb", vertices[:6], faces, times, weights[:6])
    assert rep.frames == 5
    back = read_glb_frames(tmp_path / "dup.glb", times - times[0])
    assert _errors_mm(back[[2, 3]], vertices[[3, 3]]).max() <= TOL_MM + SLACK_MM
    np.testing.assert_allclose(read_glb_weights(tmp_path / "dup.glb", [times[2] - times[0]]), weights[[3]], atol=1e-6)


def _bad(case: str, take):
    vertices, faces, t, weights = take
    v, f, tt, w = vertices[:4].copy(), faces.copy(), t[:4].copy(), weights[:4].copy()
    kwargs = {}
    if case == "vertices not 3-D":
        v = v[0]
    elif case == "vertices not xyz":
        v = v[..., :2]
    elif case == "no frames":
        v, tt, w = v[:0], tt[:0], w[:0]
    elif case == "vertices NaN":
        v[1, 7, 2] = np.nan
    elif case == "faces out of range":
        f[5, 1] = v.shape[1]
    elif case == "faces negative":
        f[5, 1] = -1
    elif case == "faces not triangles":
        f = np.zeros((4, 4), np.int32)
    elif case == "faces not integers":
        f = f.astype(np.float32)
    elif case == "t wrong length":
        tt = tt[:3]
    elif case == "t decreasing":
        tt[2] = tt[0] - 1.0
    elif case == "t infinite":
        tt[1] = np.inf
    elif case == "weights wrong shape":
        w = w[:, :51]
    elif case == "weights NaN":
        w[0, 0] = np.nan
    elif case == "tolerance not positive":
        kwargs["tolerance_mm"] = 0.0
    elif case == "max_targets negative":
        kwargs["max_targets"] = -1
    return v, f, tt, w, kwargs


BAD = {
    "vertices not 3-D": r"vertices must be \[T, N, 3\]",
    "vertices not xyz": r"vertices must be \[T, N, 3\]",
    "no frames": "at least one frame",
    "vertices NaN": "vertices contains NaN",
    "faces out of range": "out of range for 5229 vertices",
    "faces negative": "out of range",
    "faces not triangles": r"faces must be \[F, 3\]",
    "faces not integers": "faces must be integers",
    "t wrong length": r"t must be \[4\] seconds",
    "t decreasing": r"t must be non-decreasing, but t\[2\]",
    "t infinite": "t contains NaN or infinity",
    "weights wrong shape": r"weights must be real \[4, 52\]",
    "weights NaN": "weights contains NaN",
    "tolerance not positive": "tolerance_mm must be a positive",
    "max_targets negative": "max_targets must be an integer",
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_input_is_named(case, take, tmp_path):
    v, f, tt, w, kwargs = _bad(case, take)
    with pytest.raises(ValueError, match=BAD[case]):
        write_glb(tmp_path / "bad.glb", v, f, tt, w, **kwargs)
    assert not (tmp_path / "bad.glb").exists()


def test_unwritable_path_is_named(take, tmp_path):
    vertices, faces, t, _ = take
    missing = tmp_path / "no such folder" / "take.glb"
    with pytest.raises(OSError, match="no such folder") as info:
        write_glb(missing, vertices[:2], faces, t[:2])
    assert info.value.filename == str(missing)
    folder = tmp_path / "a folder.glb"
    folder.mkdir()
    with pytest.raises(OSError, match="a folder.glb"):
        write_glb(folder, vertices[:2], faces, t[:2])
    assert [p.name for p in tmp_path.iterdir()] == ["a folder.glb"]     # no half-written file left
    with pytest.raises(ValueError, match="not a binary glTF"):
        read_glb_frames(__file__, [0.0])


def test_accessor_reader_honours_offsets_and_stride():
    """Interleaved data (a VEC3 float and a 4-byte pad per 16-byte row), a bufferView
    offset and an accessor offset: the reader still gets the right numbers."""
    from clients.gltf import _accessor

    xyz = np.arange(15, dtype=np.float32).reshape(5, 3)
    rows = np.zeros((5, 4), np.float32)
    rows[:, 1:] = xyz                                 # the VEC3 sits 4 bytes into each row
    blob = b"\0" * 8 + rows.tobytes()
    doc = gl.GLTF2(bufferViews=[gl.BufferView(buffer=0, byteOffset=8, byteLength=80, byteStride=16)],
                   accessors=[gl.Accessor(bufferView=0, byteOffset=4, componentType=gl.FLOAT, count=5,
                                          type=gl.VEC3)])
    np.testing.assert_array_equal(_accessor(doc, blob, 0), xyz)
    doc.accessors[0].count = 6                        # one row past the view's end
    with pytest.raises(ValueError, match="runs past the end"):
        _accessor(doc, blob, 0)
