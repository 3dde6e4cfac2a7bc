"""ICT-FaceKit as a face model: the OBJ reader, the ARKit mapping, the model
built from arrays, and (with ../shared/reference/ict) the real folder layout
checked against ICT's own files, the data generator and an S2D training on it."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from models.face.base import FaceModel
from models.face.expression import ARKIT_NAMES, INDEX, N_EXPRESSION
from models.face.ict import (
    ARKIT_SOURCES, CHUNK, EXTRA_SHAPES, FACE_AREA_VERTICES, ICT_VERTICES, ICTFaceKit, ict_from_arrays,
    ict_from_reference, ict_sources, load_ict_facekit, read_obj,
)

#: ../shared/reference/ict beside the checkout (the ``ict_dir`` fixture of tests/conftest.py)
FACEX = Path(__file__).resolve().parents[3] / "shared" / "reference" / "ict" / "FaceXModel"
#: float32 precision of a coordinate of a head about 0.3 m across: a few ulps
F32_ATOL = 4 * float(np.finfo(np.float32).eps) * 0.3
#: the reference identity deltas are float16 (about 1e-3 relative, on deltas up to 1.3 cm)
F16_ATOL = 2e-5
#: the chin moves at least this far (metres) at the apex of mouth_open
CHIN_MOTION = 0.01


@pytest.fixture(scope="module")
def subset(ict_dir) -> ICTFaceKit:
    """The model read from the FaceXModel subset (its parent folder is given)."""
    return load_ict_facekit(ict_dir)


@pytest.fixture(scope="module")
def reference(ict_dir) -> ICTFaceKit:
    """The model built from the reference arrays (57 shapes, 100 identities)."""
    return ict_from_reference(ict_dir)


@pytest.fixture(scope="module")
def npz(ict_dir):
    with np.load(ict_dir / "ict_expressions.npz") as z:
        return {k: z[k] for k in z.files}


def obj_metres(path: Path) -> np.ndarray:
    """An ICT OBJ's vertices in metres (float64), the truth the model must reproduce."""
    return read_obj(path, faces=False).vertices / 100.0


def one_weight(name: str, value: float = 1.0) -> np.ndarray:
    w = np.zeros((1, N_EXPRESSION), np.float32)
    w[0, INDEX[name]] = value
    return w


# ----------------------------------------------------------------------
# no reference needed


def test_obj_reader_fan_splits_polygons(tmp_path):
    path = tmp_path / "poly.obj"
    path.write_text("# a quad and a pentagon\nv 0 0 0\nv 1 0 0\nv 1 1 0\nv 0 1 0\nv 2 0 0\nv 2 1 0\n"
                    "vt 0 0\nvn 0 0 1\nusemtl skin\n"
                    "f 1/1/1 2/1/1 3/1/1 4/1/1\nf 2//1 5//1 6//1 3//1 4//1\nf 1 2 3\n")
    mesh = read_obj(path)
    assert mesh.vertices.shape == (6, 3) and mesh.n_polygons == 3
    np.testing.assert_array_equal(mesh.triangles, [[0, 1, 2], [0, 2, 3],
                                                   [1, 4, 5], [1, 5, 2], [1, 2, 3],
                                                   [0, 1, 2]])
    assert mesh.triangles.dtype == np.int32
    assert read_obj(path, faces=False).triangles is None


@pytest.mark.parametrize("text, message", [
    ("v 0 0 0\nv 1 0\n", "expected 3 each"),
    ("v 0 0 0\nv 1 zero 0\n", "not a number"),
    ("v 0 0 0\nv 1 nan 0\n", "vertex 1 has a non-finite"),
    ("vt 0 0\n", "no vertices"),
    ("v 0 0 0\nv 1 0 0\nv 0 1 0\nf 1 2 4\n", "face indices must lie in 1..3"),
    ("v 0 0 0\nv 1 0 0\nv 0 1 0\nf 1 2\n", "3 or more"),
])
def test_obj_reader_names_the_bad_file(tmp_path, text, message):
    path = tmp_path / "bad.obj"
    path.write_text(text)
    with pytest.raises(ValueError, match=message) as err:
        read_obj(path)
    assert str(path) in str(err.value)


def test_arkit_names_map_onto_ict_shapes():
    assert ict_sources("eyeBlinkLeft") == ("eyeBlink_L",)
    assert ict_sources("eyeLookUpRight") == ("eyeLookUp_R",)
    assert ict_sources("mouthLeft") == ("mouthLeft",) and ict_sources("jawRight") == ("jawRight",)
    assert ict_sources("browInnerUp") == ("browInnerUp_L", "browInnerUp_R")
    assert ict_sources("cheekPuff") == ("cheekPuff_L", "cheekPuff_R")
    assert ict_sources("tongueOut") == ()
    # ICT's 53 ARKit-style shapes, each driven by exactly one ARKit weight
    assert len(ARKIT_SOURCES) == len(set(ARKIT_SOURCES)) == 53
    assert not set(EXTRA_SHAPES) & set(ARKIT_SOURCES)
    with pytest.raises(ValueError, match="not an ARKit"):
        ict_sources("cheekRaiser_L")


def toy_arrays(n_side: int = 10, n_identity: int = 3):
    """A flat grid head in centimetres with random shapes for every ARKit source
    but ``mouthClose`` and one extra shape."""
    rng = np.random.default_rng(0)
    g = np.arange(n_side, dtype=np.float64)
    x, y = np.meshgrid(g, g)
    neutral = np.stack([x.ravel(), y.ravel(), np.zeros(x.size)], 1)
    i = np.arange(n_side - 1)
    a = (i[None] + n_side * i[:, None]).ravel()
    tri = np.concatenate([np.stack([a, a + 1, a + n_side + 1], 1), np.stack([a, a + n_side + 1, a + n_side], 1)])
    names = [s for s in ARKIT_SOURCES if s != "mouthClose"] + ["PupilDilate_L"]
    deltas = rng.normal(size=(len(names), len(neutral), 3)).astype(np.float32)
    ids = rng.normal(size=(n_identity, len(neutral), 3)).astype(np.float16)
    return neutral, tri, np.arange(68), names, deltas, ids


def test_model_from_arrays_is_the_linear_ict_model():
    neutral, tri, lm, names, deltas, ids = toy_arrays()
    model = ict_from_arrays(neutral, tri, lm, names, deltas, ids)
    assert isinstance(model, FaceModel) and model.name == "ict-facekit"
    assert model.template.vertices.dtype == np.float32 and model.template.faces.dtype == np.int32
    assert model.identity_names == ("identity000", "identity001", "identity002") and model.n_identity == 3
    assert model.missing_expressions == ("mouthClose", "cheekRaiser_L", "cheekRaiser_R", "PupilDilate_R")
    assert set(model.zero_shapes) == {"mouthClose", "tongueOut"}
    assert model.face_mask.all()                        # not the ICT head: its skin component (the whole grid)

    rng = np.random.default_rng(1)
    beta = model.sample_identities(2 * CHUNK + 5, rng)                 # several chunks, many identities
    w = rng.uniform(0, 1, (len(beta), N_EXPRESSION)).astype(np.float32)
    got = model.vertices(beta, w)
    arkit = np.zeros((N_EXPRESSION, len(neutral), 3))
    for j, name in enumerate(ARKIT_NAMES):
        for s in ict_sources(name):
            if s in names:
                arkit[j] += deltas[names.index(s)]
    want = (neutral[None] + np.einsum("bk,knc->bnc", beta, ids.astype(np.float64))
            + np.einsum("bj,jnc->bnc", w, arkit)) / 100.0
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-5 * np.abs(want).max())
    assert got.dtype == np.float32
    # zero weights give exactly the neutral; one identity shared by all rows too
    same = np.repeat(beta[:1], 3, axis=0)
    np.testing.assert_array_equal(model.vertices(same, np.zeros((3, N_EXPRESSION))), model.neutral(same))
    assert np.abs(model.shape_delta("cheekRaiser_L")).max() == 0.0
    np.testing.assert_allclose(model.shape_delta("PupilDilate_L"), deltas[-1] / 100.0, rtol=1e-6)
    np.testing.assert_allclose(model.landmarks(got[:1])[0], got[0, :68], rtol=0, atol=1e-7)


def test_identity_prior_and_population():
    model = ict_from_arrays(*toy_arrays(n_identity=4))
    big = model.sample_identities(5000, np.random.default_rng(0))
    assert big.dtype == np.float32 and big.shape == (5000, 4)
    assert np.abs(big).max() <= 3.0 and 0.9 < big.std() < 1.1
    np.testing.assert_array_equal(model.population_identity(7, seed=3), model.population_identity(7, seed=3))
    assert not np.array_equal(model.population_identity(7), model.population_identity(8))
    with pytest.raises(ValueError, match="index"):
        model.population_identity(-1)
    # no identity modes: the model is the generic neutral
    bare = ict_from_arrays(*toy_arrays()[:5])
    assert bare.n_identity == 0 and bare.population_identity(0).shape == (0,)
    np.testing.assert_array_equal(bare.neutral(np.zeros((1, 0)))[0], bare.template.vertices)
    np.testing.assert_array_equal(bare.vertices(np.zeros((2, 0)), np.zeros((2, N_EXPRESSION)))[1],
                                  bare.template.vertices)


def test_model_refuses_bad_arrays_and_batches():
    neutral, tri, lm, names, deltas, ids = toy_arrays()
    with pytest.raises(ValueError, match="landmark vertex ids must lie in 0..99"):
        ict_from_arrays(neutral, tri, np.arange(68) + 50, names, deltas, ids)
    with pytest.raises(ValueError, match="expr_deltas_cm must be"):
        ict_from_arrays(neutral, tri, lm, names[:-1], deltas, ids)
    with pytest.raises(ValueError, match="triangles"):
        ict_from_arrays(neutral, tri + 1, lm, names, deltas, ids)
    bad = deltas.copy()
    bad[0, 0, 0] = np.inf
    with pytest.raises(ValueError, match="NaN or infinity"):
        ict_from_arrays(neutral, tri, lm, names, bad, ids)
    model = ict_from_arrays(neutral, tri, lm, names, deltas, ids)
    with pytest.raises(ValueError, match=r"identity must be \[B, 3\]"):
        model.vertices(np.zeros((1, 2)), np.zeros((1, N_EXPRESSION)))
    with pytest.raises(ValueError, match=r"weights must be \[B, 52\]"):
        model.vertices(np.zeros((1, 3)), np.zeros((1, 51)))
    with pytest.raises(ValueError, match="rows"):
        model.vertices(np.zeros((2, 3)), np.zeros((1, N_EXPRESSION)))
    with pytest.raises(KeyError, match="no shape"):
        model.shape_delta("eyeBlinkLeft")


# ----------------------------------------------------------------------
# the real files (../shared/reference/ict)


def test_subset_folder_loads(subset, npz):
    t = subset.template
    assert t.name == "ict-facekit" and t.n_vertices == ICT_VERTICES == 26719
    np.testing.assert_array_equal(t.faces, npz["triangles"])           # quads split as ICT's own arrays
    np.testing.assert_array_equal(t.landmarks.vertex_ids(t.faces), npz["landmark68_vertex_ids"])
    assert subset.identity_names == ("identity000", "identity001") and subset.n_identity == 2
    assert subset.expression_names_found == ("eyeBlink_L", "jawOpen", "mouthSmile_L")
    assert subset.face_mask.sum() == FACE_AREA_VERTICES and subset.face_mask[:FACE_AREA_VERTICES].all()
    np.testing.assert_allclose(t.vertices, npz["neutral"] / 100.0, rtol=0, atol=F32_ATOL)
    # the parent folder and FaceXModel/ itself read the same
    again = load_ict_facekit(FACEX)
    assert again.template.topology_id == t.topology_id


def test_identity_shape_reproduces_its_obj(subset):
    for k in range(2):
        beta = np.eye(2, dtype=np.float32)[k:k + 1]
        want = obj_metres(FACEX / f"identity{k:03d}.obj")
        np.testing.assert_allclose(subset.neutral(beta)[0], want, rtol=0, atol=F32_ATOL)


@pytest.mark.parametrize("arkit, obj", [("jawOpen", "jawOpen"), ("mouthSmileLeft", "mouthSmile_L"),
                                        ("eyeBlinkLeft", "eyeBlink_L")])
def test_expression_reproduces_its_obj(subset, arkit, obj):
    got = subset.vertices(np.zeros((1, 2)), one_weight(arkit))[0]
    np.testing.assert_allclose(got, obj_metres(FACEX / f"{obj}.obj"), rtol=0, atol=F32_ATOL)


def test_left_shapes_move_the_subjects_left(subset):
    moved = np.linalg.norm(subset.shape_delta("mouthSmile_L"), axis=-1) > 1e-3
    assert subset.template.vertices[moved, 0].mean() > 0.0               # +x: the subject's left


def test_absent_shape_is_reported_and_zero(subset):
    assert "browDown_L" in subset.missing_expressions and "cheekRaiser_L" in subset.missing_expressions
    assert "browDownLeft" in subset.zero_shapes and "jawOpen" not in subset.zero_shapes
    assert np.abs(subset.shape_delta("browDown_L")).max() == 0.0
    beta = np.zeros((1, 2), np.float32)
    np.testing.assert_array_equal(subset.vertices(beta, one_weight("browDownLeft")), subset.neutral(beta))


def test_subset_agrees_with_the_reference_arrays(subset, reference):
    assert reference.n_identity == 100 and reference.missing_expressions == ()
    assert reference.zero_shapes == ("tongueOut",)
    assert reference.template.topology_id == subset.template.topology_id
    for name in subset.expression_names_found:
        np.testing.assert_allclose(subset.shape_delta(name), reference.shape_delta(name), rtol=0, atol=F32_ATOL)
    np.testing.assert_allclose(subset.identity_basis, reference.identity_basis[:2], rtol=0, atol=F16_ATOL)
    # the ARKit pair shapes are the sums of ICT's halves
    both = reference.shape_delta("browInnerUp_L") + reference.shape_delta("browInnerUp_R")
    np.testing.assert_array_equal(reference.expression_basis[INDEX["browInnerUp"]].reshape(-1, 3), both)
    assert np.abs(reference.shape_delta("cheekRaiser_L")).max() > 0.001


def test_reference_identity_count(ict_dir):
    assert ict_from_reference(ict_dir, n_identities=5).n_identity == 5
    assert ict_from_reference(ict_dir, n_identities=0).n_identity == 0


@pytest.fixture
def folder_copy(ict_dir, tmp_path) -> Path:
    """A writable FaceXModel folder: the neutral, vertex_indices.json and jawOpen."""
    out = tmp_path / "FaceXModel"
    out.mkdir()
    for name in ("generic_neutral_mesh.obj", "vertex_indices.json", "jawOpen.obj"):
        shutil.copy(FACEX / name, out / name)
    return out


def _cut(path: Path, keep: float, at_line: bool = False) -> None:
    """Truncate ``path`` to a share ``keep`` of its bytes (at a line end with ``at_line``)."""
    data = path.read_bytes()
    end = int(len(data) * keep)
    path.write_bytes(data[:data.index(b"\n", end) + 1 if at_line else end])


@pytest.mark.parametrize("damage, error, message", [
    # cut inside a vertex line, between vertex lines, after them (inside the texture coordinates)
    (lambda d: _cut(d / "jawOpen.obj", 0.2), ValueError, "jawOpen.obj: .* expected 3 each .*truncated"),
    (lambda d: _cut(d / "jawOpen.obj", 0.2, at_line=True), ValueError,
     "jawOpen.obj: 1[0-9]{4} vertices, but generic_neutral_mesh.obj has 26719"),
    (lambda d: _cut(d / "jawOpen.obj", 0.5), ValueError, "jawOpen.obj: .* faces, but .* truncated"),
    (lambda d: _cut(d / "generic_neutral_mesh.obj", 0.2), ValueError, "generic_neutral_mesh.obj"),
    (lambda d: (d / "jawOpen.obj").write_text("v 0 0 0\nv 1 0 0\nv 0 1 0\nf 1 2 3\n"),
     ValueError, "jawOpen.obj: 3 vertices, but generic_neutral_mesh.obj has 26719"),
    (lambda d: (d / "vertex_indices.json").unlink(), FileNotFoundError, "vertex_indices.json"),
    (lambda d: (d / "vertex_indices.json").write_text("{not json"), ValueError, "vertex_indices.json: not valid"),
    (lambda d: (d / "generic_neutral_mesh.obj").unlink(), FileNotFoundError, "generic_neutral_mesh.obj"),
])
def test_bad_folder_names_the_file(folder_copy, damage, error, message):
    damage(folder_copy)
    with pytest.raises(error, match=message):
        load_ict_facekit(folder_copy)


def test_bad_values_name_the_file(folder_copy):
    path = folder_copy / "jawOpen.obj"
    text = path.read_text()
    first = text.index("\nv ") + 1
    line = text[first:text.index("\n", first)]
    path.write_text(text.replace(line, "v 0 inf 0", 1))
    with pytest.raises(ValueError, match="jawOpen.obj: vertex 0 has a non-finite"):
        load_ict_facekit(folder_copy)
    path.write_text(text.replace(line, "v 0 x 0", 1))
    with pytest.raises(ValueError, match="jawOpen.obj: a vertex coordinate is not a number"):
        load_ict_facekit(folder_copy)
    path.write_text(text)
    spec_path = folder_copy / "vertex_indices.json"
    spec = json.loads(spec_path.read_text())
    spec["idx_to_landmark_verts"][5] = 99999
    spec_path.write_text(json.dumps(spec))
    with pytest.raises(ValueError, match="vertex_indices.json: landmark vertex ids must lie in 0..26718"):
        load_ict_facekit(folder_copy)
    del spec["idx_to_landmark_verts"]
    spec_path.write_text(json.dumps(spec))
    with pytest.raises(ValueError, match="vertex_indices.json: needs the keys"):
        load_ict_facekit(folder_copy)


def test_missing_folder_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere"):
        load_ict_facekit(tmp_path / "nowhere")
    with pytest.raises(FileNotFoundError, match="generic_neutral_mesh.obj not found"):
        load_ict_facekit(tmp_path)
    with pytest.raises(FileNotFoundError, match="ict_expressions.npz"):
        ict_from_reference(tmp_path)


def test_data_generator_runs_on_ict(subset, tmp_path):
    from trainers.data.cache import FaceData
    from trainers.data.synth import SynthConfig, generate

    generate(SynthConfig(identities=1, labels=("mouth_open",), fps=30, write_ply=False), tmp_path / "d",
             model=subset, show_progress=False, report=False)
    data = FaceData.open(tmp_path / "d")
    assert data.n_frames == len(data.weights) > 10 and len(data.sequences) == 1
    assert data.vertices.shape[1:] == (ICT_VERTICES, 3)
    assert data.identity.shape == (1, subset.n_identity)
    assert data.template.topology_id == subset.template.topology_id
    np.testing.assert_array_equal(data.neutral[0], subset.neutral(data.identity[:1])[0])
    apex = int(np.argmax(np.asarray(data.weights)[:, INDEX["jawOpen"]]))
    lm = data.landmarks(np.array([0, apex]))
    assert np.linalg.norm(lm[1, 8] - lm[0, 8]) > CHIN_MOTION                # the chin moved down


@pytest.mark.slow
def test_s2d_trains_on_ict_data(reference, tmp_path, monkeypatch):
    """The smallest S2D training the trainer allows on ICT data: the identity
    split needs 2 subjects (a 1-subject, 1-label folder has no held-out fold),
    one epoch on every 8th frame. About 15 s here, most of it building the
    mesh pyramid of ICT's 56-component head."""
    from models.s2d import load_s2d
    from trainers.data.cache import FaceData
    from trainers.data.synth import SynthConfig, generate
    from trainers.s2d.train import S2DTrainConfig, train_s2d

    monkeypatch.setenv("FACECAST_DATA", str(tmp_path / "facecast"))     # the pyramid cache
    generate(SynthConfig(identities=2, labels=("mouth_open",), fps=30, write_ply=False), tmp_path / "d",
             model=reference, show_progress=False, report=False)
    data = FaceData.open(tmp_path / "d")
    cfg = S2DTrainConfig(folds=2, fold=1, epochs=1, frame_step=8, time_limit_s=20, threads=1)
    _, history, metrics = train_s2d(data, cfg, out=tmp_path / "s2d.safetensors", show_progress=False)
    assert metrics["epochs"] == 1 and metrics["train_pairs"] > 0 and metrics["test_pairs"] > 0
    assert np.isfinite(metrics["test_mean_mm"])
    decoder, _ = load_s2d(tmp_path / "s2d.safetensors", topology_id=reference.template.topology_id)
    assert decoder.config.topology_id == reference.template.topology_id
