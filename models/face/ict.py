"""ICT-FaceKit (the USC ICT Face Model, MIT licence) as a facecast face model.

A user who has downloaded ICT-FaceKit runs facecast's data generator, realism
figures and trainers on that real, scan-derived head with ``load_ict_facekit``.
Nothing of ICT-FaceKit ships with facecast: the model is read from the
user's own ``FaceXModel/`` folder::

    FaceXModel/generic_neutral_mesh.obj        the generic neutral (26,719 vertices)
    FaceXModel/identity000.obj ... 099.obj     neutral + 1 sigma of identity PCA mode k
    FaceXModel/<expression>.obj                neutral + 1 of each expression shape
    FaceXModel/vertex_indices.json             "expressions" (names), "idx_to_landmark_verts"
                                               (the 68 iBUG landmark vertices), ...

A mesh from identity ``beta [B, K]`` and ARKit weights ``w [B, 52]`` (the
model is linear, as ICT's own ``deform_mesh``)::

    V = T + sum_k beta_k I_k + sum_j w_j E_j

``T`` the generic neutral, ``I_k`` = identity file k minus ``T``, ``E_j`` the
ARKit shape j built from ICT's shapes (``ict_sources``): ``X_L`` is ARKit's
``XLeft`` and ``X_R`` its ``XRight`` (ICT's ``_L`` moves +x, the subject's
left, as ARKit's ``Left``); ARKit's single ``browInnerUp`` and ``cheekPuff``
are the sums of ICT's ``_L`` and ``_R`` shapes; ``tongueOut`` has no ICT
shape and is zero; the ``eyeLook*`` shapes rotate the eyeballs (the lids
follow). ICT's extra shapes (``cheekRaiser_L/R``, ``PupilDilate_L/R``) stay
out of the 52 and are read with ``ICTFaceKit.shape_delta(name)``. A shape
whose OBJ is absent is zero, and ``missing_expressions`` names it.

ICT's ``mouthClose`` follows ARKit: it closes the lips of an opened jaw
(the lower lip rises 3.8 cm at weight 1), so on its own, without
``jawOpen``, it pushes the lower lip through the upper one.

Identity units: ICT's identity shapes are principal components of its
light-stage scans, each scaled by its standard deviation (the modes are
mutually orthogonal with decreasing norms: RMS over the face area 3.9 mm for
mode 0, 0.09 mm for mode 99), and ICT-FaceKit's own sampler
(``FaceModel.randomize_identity``) draws the weights from a standard normal.
So one unit of ``beta_k`` is one standard deviation of the scanned population
along mode k, the same convention as SynthFace's identity parameters, and
``sample_identities`` draws them as SynthFace does (standard normal, clipped
to +-3).

Units and axes: ICT files are in centimetres; every array here is metres.
ICT's axes are facecast's (+x the subject's left, +y up, +z forward).

Measured on the 2-core development CPU (numpy, float32, the full model:
100 identities, 57 shapes): ``vertices`` for 64 frames of one identity
20 ms (64 frames of 64 identities 39 ms, one frame 12 ms);
``load_ict_facekit`` about 25 ms per 2.5 MB OBJ (the 7-file reference
subset 0.23 s; a full-size 159-file folder, made of linked copies of those
files, 4.4 s); ``ict_from_reference`` with all 100 identities 0.19 s. The
model holds about 70 MB (identity basis 32 MB, ICT shapes 18 MB, ARKit
basis 17 MB).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from models.face.base import check_batch
from models.face.expression import ARKIT_NAMES, N_EXPRESSION
from models.face.landmarks import LandmarkEmbedding
from models.face.topology import FaceTemplate

#: the model's id (``FaceModel.name``) and its template's name
ICT_NAME = "ict-facekit"
#: metres per ICT unit (ICT files are in centimetres)
METRES_PER_ICT_UNIT = 0.01
#: vertices of the full ICT head
ICT_VERTICES = 26719
#: ICT's "full face area" is vertices 0 .. FACE_AREA_VERTICES - 1 of the full head
FACE_AREA_VERTICES = 9409
#: identity coefficients are drawn standard normal and clipped to +- this (sigma)
IDENTITY_CLIP = 3.0
#: frames evaluated per chunk by ``vertices`` (bounds the temporaries to
#: CHUNK x N x 3 float32: 20 MB on the ICT head)
CHUNK = 64

#: the folder a user downloads, and its files
MODEL_FOLDER = "FaceXModel"
NEUTRAL_FILE = "generic_neutral_mesh.obj"
INDEX_FILE = "vertex_indices.json"
IDENTITY_FILE = re.compile(r"identity(\d{3})\.obj")
#: what a shape name (and so its file name) may be
SHAPE_NAME = re.compile(r"[A-Za-z0-9_]+")
#: keys of ``vertex_indices.json`` this reader uses
EXPRESSIONS_KEY = "expressions"
LANDMARKS_KEY = "idx_to_landmark_verts"

#: the reference arrays beside the project (for developers, CI and the benchmark)
REFERENCE_EXPRESSIONS = "ict_expressions.npz"
REFERENCE_IDENTITIES = "ict_identities_f16.npz"
REFERENCE_KEYS = ("neutral", "triangles", "landmark68_vertex_ids", "expr_names", "expr_deltas")

#: ICT shapes outside ARKit's 52 (not in ``vertex_indices.json``'s list): read
#: when their OBJ is present, reachable by name, never driven by ARKit weights
EXTRA_SHAPES: tuple[str, ...] = ("cheekRaiser_L", "cheekRaiser_R", "PupilDilate_L", "PupilDilate_R")
#: ARKit names with a side word that is a direction: one ICT shape of the same name
DIRECTIONAL: tuple[str, ...] = ("jawLeft", "jawRight", "mouthLeft", "mouthRight")
#: ARKit shapes that ICT splits into ``_L`` and ``_R`` halves
SPLIT: tuple[str, ...] = ("browInnerUp", "cheekPuff")
#: ARKit shapes ICT has no shape for
NO_ICT_SHAPE: tuple[str, ...] = ("tongueOut",)
#: ARKit side word -> ICT suffix
SIDES: tuple[tuple[str, str], ...] = (("Left", "_L"), ("Right", "_R"))


def ict_sources(arkit: str) -> tuple[str, ...]:
    """The ICT shapes whose sum is the ARKit shape ``arkit`` (empty for ``tongueOut``)."""
    if arkit not in ARKIT_NAMES:
        raise ValueError(f"{arkit!r} is not an ARKit blendshape name")
    if arkit in NO_ICT_SHAPE:
        return ()
    if arkit in SPLIT:
        return tuple(arkit + suffix for _, suffix in SIDES)
    if arkit not in DIRECTIONAL:
        for word, suffix in SIDES:
            if arkit.endswith(word):
                return (arkit[:-len(word)] + suffix,)
    return (arkit,)


#: every ICT shape an ARKit weight drives, in ARKit order
ARKIT_SOURCES: tuple[str, ...] = tuple(s for a in ARKIT_NAMES for s in ict_sources(a))


# ----------------------------------------------------------------------
# OBJ text


@dataclass(frozen=True)
class ObjMesh:
    """An OBJ file's ``vertices`` float64 [N, 3] (file units), its ``triangles``
    int32 [F, 3] (0-based, polygons fan-split) when read, and its polygon count."""

    vertices: np.ndarray
    triangles: np.ndarray | None
    n_polygons: int


def read_obj(path: str | Path, faces: bool = True) -> ObjMesh:
    """Vertices (``v`` lines) and, with ``faces``, triangles of the OBJ ``path``.

    ``f`` tokens are ``v``, ``v/vt``, ``v//vn`` or ``v/vt/vn`` (1-based);
    a polygon ``(p0, p1, ..., pk)`` becomes the fan ``(p0, p1, p2), (p0, p2, p3), ...``
    (ICT's quads ``a b c d``: ``(a, b, c), (a, c, d)``). Parsed with numpy over
    the text: 20-40 ms for a 2.5 MB ICT file without faces, 60-90 ms with.
    A malformed file is a ``ValueError`` naming it.
    """
    path = Path(path)
    try:
        lines = path.read_bytes().splitlines()
    except OSError as exc:
        raise FileNotFoundError(f"cannot read {path}: {exc}") from exc
    v_lines = [line[2:] for line in lines if line.startswith((b"v ", b"v\t"))]
    f_lines = [line[2:] for line in lines if line.startswith((b"f ", b"f\t"))]
    if not v_lines:
        raise ValueError(f"{path}: no vertices ('v' lines); not an OBJ mesh")
    tokens = b" ".join(v_lines).split()
    if len(tokens) != 3 * len(v_lines):
        raise ValueError(f"{path}: {len(v_lines)} 'v' lines hold {len(tokens)} numbers, expected 3 each "
                         "(a truncated or malformed file)")
    try:
        vertices = np.array(tokens).astype(np.float64).reshape(-1, 3)
    except ValueError as exc:
        raise ValueError(f"{path}: a vertex coordinate is not a number ({exc})") from exc
    if not np.all(np.isfinite(vertices)):
        bad = int(np.flatnonzero(~np.all(np.isfinite(vertices), axis=1))[0])
        raise ValueError(f"{path}: vertex {bad} has a non-finite coordinate")
    triangles = _fan_triangles(path, f_lines, len(vertices)) if faces else None
    return ObjMesh(vertices=vertices, triangles=triangles, n_polygons=len(f_lines))


def _fan_triangles(path: Path, f_lines: list[bytes], n_vertices: int) -> np.ndarray:
    """int32 [F, 3] fan triangles of the ``f`` lines (their text after ``f``)."""
    if not f_lines:
        raise ValueError(f"{path}: no faces ('f' lines)")
    sizes = np.fromiter((len(line.split()) for line in f_lines), dtype=np.int64, count=len(f_lines))
    if sizes.min() < 3:
        bad = int(np.argmax(sizes < 3))
        raise ValueError(f"{path}: polygon {bad} has {sizes[bad]} corners, a face needs 3 or more")
    # keep the vertex index of each v/vt/vn token
    text = re.sub(rb"/\S*", b"", b" ".join(f_lines))
    try:
        corners = np.array(text.split()).astype(np.int64)
    except ValueError as exc:
        raise ValueError(f"{path}: a face index is not an integer ({exc})") from exc
    if corners.min() < 1 or corners.max() > n_vertices:
        raise ValueError(f"{path}: face indices must lie in 1..{n_vertices} (relative, negative "
                         f"indices are not supported), found {corners.min()}..{corners.max()}")
    corners -= 1
    start = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    n_tri = sizes - 2
    first = np.repeat(start, n_tri)                               # each triangle's polygon start
    step = np.arange(n_tri.sum()) - np.repeat(np.cumsum(n_tri) - n_tri, n_tri) + 1
    return np.stack([corners[first], corners[first + step], corners[first + step + 1]], 1).astype(np.int32)


# ----------------------------------------------------------------------
# the model


class ICTFaceKit:
    """The ICT Face Model on its own head: a ``models.face.base.FaceModel``.

    Built by ``load_ict_facekit`` (a user's ``FaceXModel/`` folder),
    ``ict_from_arrays`` or ``ict_from_reference``; stateless after
    construction. Arrays are metres:

    - ``identity_basis`` float32 [K, N * 3]: identity k's displacement per sigma
    - ``shape_names`` (ICT names) and ``shape_deltas`` float32 [S, N, 3]: every
      ICT shape, zero where its OBJ was absent
    - ``expression_basis`` float32 [52, N * 3]: the ARKit shapes, ``ARKIT_NAMES`` order
    """

    name = ICT_NAME

    def __init__(self, template: FaceTemplate, identity_names: tuple[str, ...], identity_basis: np.ndarray,
                 shape_names: tuple[str, ...], shape_deltas: np.ndarray, found: tuple[str, ...]) -> None:
        n = template.n_vertices
        if identity_basis.shape != (len(identity_names), n * 3):
            raise ValueError(f"identity_basis must be [{len(identity_names)}, {n * 3}], "
                             f"got {identity_basis.shape}")
        if shape_deltas.shape != (len(shape_names), n, 3):
            raise ValueError(f"shape_deltas must be [{len(shape_names)}, {n}, 3], got {shape_deltas.shape}")
        unknown = sorted(set(found) - set(shape_names))
        if unknown:
            raise ValueError(f"found shapes {unknown} are not among the shape names")
        self.template = template
        self.identity_names = tuple(identity_names)
        self.identity_basis = identity_basis.astype(np.float32, copy=False)
        self.shape_names = tuple(shape_names)
        self.shape_deltas = shape_deltas.astype(np.float32, copy=False)
        #: ICT shapes read from a file or array, in ``shape_names`` order
        self.expression_names_found = tuple(s for s in self.shape_names if s in set(found))
        #: ICT shapes whose OBJ (or array) was absent: zero displacement
        self.missing_expressions = tuple(s for s in self.shape_names if s not in set(found))
        #: ARKit names that move nothing here (``tongueOut``, and those whose ICT shapes are missing)
        self.zero_shapes = tuple(a for a in ARKIT_NAMES
                                 if not any(s in self.expression_names_found for s in ict_sources(a)))
        index = {s: i for i, s in enumerate(self.shape_names)}
        basis = np.zeros((N_EXPRESSION, n, 3), dtype=np.float32)
        for j, arkit in enumerate(ARKIT_NAMES):
            for source in ict_sources(arkit):
                if source in index:
                    basis[j] += self.shape_deltas[index[source]]
        self.expression_basis = basis.reshape(N_EXPRESSION, n * 3)
        self.face_mask = (np.arange(n) < FACE_AREA_VERTICES) if n == ICT_VERTICES else template.skin

    @property
    def n_identity(self) -> int:
        return len(self.identity_names)

    def shape_delta(self, name: str) -> np.ndarray:
        """The displacement ``float32 [N, 3]`` (metres) of ICT shape ``name`` at
        weight 1 (e.g. ``"cheekRaiser_L"``, or ``"browInnerUp_L"``, one half of
        ARKit's ``browInnerUp``); zero when its OBJ was absent."""
        if name not in self.shape_names:
            raise KeyError(f"ICT-FaceKit has no shape {name!r}; shapes: {', '.join(self.shape_names)}")
        return self.shape_deltas[self.shape_names.index(name)]

    def sample_identities(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """``n`` identities ``float32 [n, K]``: standard normal (one unit = one
        sigma of ICT's scanned population per mode), clipped to +-``IDENTITY_CLIP``."""
        beta = rng.standard_normal((n, self.n_identity))
        return np.clip(beta, -IDENTITY_CLIP, IDENTITY_CLIP).astype(np.float32)

    def population_identity(self, index: int, seed: int = 0) -> np.ndarray:
        """Identity ``float32 [K]`` of member ``index`` of the population drawn with
        ``seed``: the same person every time (as ``models.face.identity.population_identity``)."""
        if index < 0:
            raise ValueError(f"identity index must be >= 0, got {index}")
        return self.sample_identities(1, np.random.default_rng([seed, index]))[0]

    def neutral(self, identity: np.ndarray) -> np.ndarray:
        """Neutral meshes ``float32 [B, N, 3]`` of identities ``[B, K]``."""
        beta = np.atleast_2d(np.asarray(identity, dtype=np.float32))
        check_batch(beta, self.n_identity, "identity")
        n = self.template.n_vertices
        flat = beta @ self.identity_basis if self.n_identity else np.zeros((len(beta), n * 3), np.float32)
        return flat.reshape(-1, n, 3) + self.template.vertices[None]

    def vertices(self, identity: np.ndarray, weights: np.ndarray) -> np.ndarray:
        """Meshes ``float32 [B, N, 3]`` from identities ``[B, K]`` and ARKit weights ``[B, 52]``.

        Evaluated ``CHUNK`` frames at a time, each distinct identity of a chunk
        once; zero weights give exactly ``neutral(identity)``.
        """
        beta = np.atleast_2d(np.asarray(identity, dtype=np.float32))
        w = np.atleast_2d(np.asarray(weights, dtype=np.float32))
        check_batch(beta, self.n_identity, "identity")
        check_batch(w, N_EXPRESSION, "weights")
        if len(beta) != len(w):
            raise ValueError(f"identity has {len(beta)} rows but weights has {len(w)}")
        n = self.template.n_vertices
        out = np.empty((len(w), n, 3), dtype=np.float32)
        for s in range(0, len(w), CHUNK):
            e = min(s + CHUNK, len(w))
            flat = out[s:e].reshape(e - s, n * 3)                 # a view: the product lands in ``out``
            np.matmul(w[s:e], self.expression_basis, out=flat)
            uniq, inverse = np.unique(beta[s:e], axis=0, return_inverse=True)
            neutral = self.neutral(uniq)
            out[s:e] += neutral if len(uniq) == 1 else neutral[inverse.reshape(-1)]
        return out

    def landmarks(self, vertices: np.ndarray) -> np.ndarray:
        """The 68 landmarks ``[..., 68, 3]`` of meshes ``[..., N, 3]``."""
        return self.template.landmark_points(vertices)


def neutral_metres(neutral_cm: np.ndarray) -> np.ndarray:
    """The template ``float32 [N, 3]`` metres of a neutral in centimetres,
    rounded through float32 centimetres first: the OBJ text and ICT arrays
    stored as float32 then give the same template, so the same topology id."""
    cm = np.asarray(neutral_cm, dtype=np.float32).astype(np.float64)
    return (cm * METRES_PER_ICT_UNIT).astype(np.float32)


def _build(neutral_m: np.ndarray, triangles: np.ndarray, landmark_ids: np.ndarray,
           identity_names: tuple[str, ...], identity_basis: np.ndarray,
           shape_names: tuple[str, ...], shape_deltas: np.ndarray, found: tuple[str, ...]) -> ICTFaceKit:
    """The model from checked arrays in metres."""
    faces = np.ascontiguousarray(triangles, dtype=np.int32)
    template = FaceTemplate(name=ICT_NAME, vertices=np.ascontiguousarray(neutral_m, dtype=np.float32),
                            faces=faces, landmarks=LandmarkEmbedding.from_vertices(landmark_ids, faces))
    return ICTFaceKit(template, identity_names, identity_basis, shape_names, shape_deltas, found)


def _shape_list(expression_names: list[str]) -> tuple[str, ...]:
    """Every ICT shape the model holds: the listed expressions, then any
    ARKit source or extra shape the list lacks (these are reported missing)."""
    names = list(dict.fromkeys(expression_names))
    names += [s for s in ARKIT_SOURCES + EXTRA_SHAPES if s not in names]
    return tuple(names)


def _check_landmarks(ids: np.ndarray, n_vertices: int, faces: np.ndarray, where: str) -> np.ndarray:
    """``ids`` as int64 [68]: 68 vertex ids, each a corner of some triangle; a
    ``ValueError`` naming ``where`` otherwise."""
    ids = np.asarray(ids)
    if ids.shape != (68,) or not np.issubdtype(ids.dtype, np.integer):
        raise ValueError(f"{where}: the landmarks must be 68 integer vertex ids, got shape {ids.shape} "
                         f"of {ids.dtype}")
    if ids.min() < 0 or ids.max() >= n_vertices:
        raise ValueError(f"{where}: landmark vertex ids must lie in 0..{n_vertices - 1}, "
                         f"found {ids.min()}..{ids.max()}")
    loose = np.setdiff1d(ids, faces)
    if len(loose):
        raise ValueError(f"{where}: landmark vertices {loose.tolist()} are on no triangle")
    return ids.astype(np.int64)


# ----------------------------------------------------------------------
# loaders


def ict_from_arrays(neutral_cm: np.ndarray, triangles: np.ndarray, landmark_ids: np.ndarray,
                    expr_names: list[str] | tuple[str, ...], expr_deltas_cm: np.ndarray,
                    identity_deltas_cm: np.ndarray | None = None) -> ICTFaceKit:
    """The model from arrays in ICT's units (centimetres).

    ``neutral_cm`` [N, 3], ``triangles`` int [F, 3] (0-based), ``landmark_ids``
    int [68] (iBUG order), ``expr_names`` [S] ICT shape names with
    ``expr_deltas_cm`` [S, N, 3] (shape minus neutral), ``identity_deltas_cm``
    [K, N, 3] (identity k minus neutral, per sigma; any float dtype).
    """
    neutral = np.asarray(neutral_cm, dtype=np.float64)
    if neutral.ndim != 2 or neutral.shape[1] != 3 or not np.all(np.isfinite(neutral)):
        raise ValueError(f"neutral_cm must be a finite [N, 3] array, got shape {neutral.shape}")
    n = len(neutral)
    tri = np.asarray(triangles)
    if tri.ndim != 2 or tri.shape[1] != 3 or tri.min() < 0 or tri.max() >= n:
        raise ValueError(f"triangles must be [F, 3] vertex ids in 0..{n - 1}")
    ids = _check_landmarks(landmark_ids, n, tri, "landmark_ids")
    names = [str(s) for s in expr_names]
    deltas = np.asarray(expr_deltas_cm)
    if deltas.shape != (len(names), n, 3):
        raise ValueError(f"expr_deltas_cm must be [{len(names)}, {n}, 3] for {len(names)} names, "
                         f"got {deltas.shape}")
    if len(set(names)) != len(names):
        raise ValueError("expr_names repeats a name")
    if not np.all(np.isfinite(deltas)):
        raise ValueError("expr_deltas_cm contains NaN or infinity")
    shape_names = _shape_list(names)
    shape_deltas = np.zeros((len(shape_names), n, 3), dtype=np.float32)
    shape_deltas[:len(names)] = deltas * METRES_PER_ICT_UNIT     # the listed names come first
    if identity_deltas_cm is None:
        identity_deltas_cm = np.zeros((0, n, 3), np.float32)
    idd = np.asarray(identity_deltas_cm)
    if idd.ndim != 3 or idd.shape[1:] != (n, 3):
        raise ValueError(f"identity_deltas_cm must be [K, {n}, 3], got {idd.shape}")
    basis = np.empty((len(idd), n * 3), dtype=np.float32)
    for k in range(len(idd)):                                     # one mode at a time: bounded memory
        basis[k] = (idd[k].astype(np.float32) * np.float32(METRES_PER_ICT_UNIT)).reshape(-1)
    if not np.all(np.isfinite(basis)):
        raise ValueError("identity_deltas_cm contains NaN or infinity")
    identity_names = tuple(f"identity{k:03d}" for k in range(len(idd)))
    return _build(neutral_metres(neutral), tri, ids, identity_names, basis,
                  shape_names, shape_deltas, tuple(names))


def ict_from_reference(folder: str | Path, n_identities: int | None = None) -> ICTFaceKit:
    """The model from the reference arrays in ``folder`` (``ict_expressions.npz``,
    and ``ict_identities_f16.npz`` when present; the first ``n_identities`` modes,
    default all, 0 for none). About 0.6 s with all 100 identities."""
    folder = Path(folder)
    path = folder / REFERENCE_EXPRESSIONS
    if not path.is_file():
        raise FileNotFoundError(f"ICT reference arrays not found: {path}")
    try:
        with np.load(path) as z:
            arrays = {k: z[k] for k in REFERENCE_KEYS}
    except (OSError, KeyError, ValueError) as exc:
        raise ValueError(f"cannot read {path}: {exc}") from exc
    identities = None
    id_path = folder / REFERENCE_IDENTITIES
    if n_identities != 0 and id_path.is_file():
        try:
            with np.load(id_path) as z:
                identities = z["identity_deltas"][:n_identities]
        except (OSError, KeyError, ValueError) as exc:
            raise ValueError(f"cannot read {id_path}: {exc}") from exc
    elif n_identities:
        raise FileNotFoundError(f"{n_identities} identities asked for, but {id_path} does not exist")
    try:
        return ict_from_arrays(arrays["neutral"], arrays["triangles"], arrays["landmark68_vertex_ids"],
                               list(arrays["expr_names"]), arrays["expr_deltas"], identities)
    except ValueError as exc:
        raise ValueError(f"{path}: {exc}") from exc


def model_folder(folder: str | Path) -> Path:
    """The ``FaceXModel`` folder: ``folder`` itself, or its ``FaceXModel/`` child."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"ICT-FaceKit folder not found: {folder}")
    if not (folder / NEUTRAL_FILE).is_file() and (folder / MODEL_FOLDER / NEUTRAL_FILE).is_file():
        return folder / MODEL_FOLDER
    if not (folder / NEUTRAL_FILE).is_file():
        raise FileNotFoundError(f"{folder / NEUTRAL_FILE} not found: give the ICT-FaceKit "
                                f"'{MODEL_FOLDER}' folder or the folder that contains it")
    return folder


def read_vertex_indices(path: Path) -> tuple[list[str], np.ndarray]:
    """``vertex_indices.json``'s expression names and 68 landmark vertex ids."""
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found (ICT-FaceKit lists its expressions and landmarks there)")
    try:
        spec = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{path}: not valid JSON ({exc})") from exc
    if not isinstance(spec, dict) or EXPRESSIONS_KEY not in spec or LANDMARKS_KEY not in spec:
        raise ValueError(f"{path}: needs the keys '{EXPRESSIONS_KEY}' and '{LANDMARKS_KEY}'")
    names = spec[EXPRESSIONS_KEY]
    if not isinstance(names, list) or not all(isinstance(s, str) and SHAPE_NAME.fullmatch(s) for s in names):
        raise ValueError(f"{path}: '{EXPRESSIONS_KEY}' must be a list of shape names (letters, digits, '_')")
    try:
        ids = np.asarray(spec[LANDMARKS_KEY])
    except ValueError as exc:
        raise ValueError(f"{path}: '{LANDMARKS_KEY}' must be a list of 68 vertex ids") from exc
    if ids.shape != (68,) or not np.issubdtype(ids.dtype, np.integer):
        raise ValueError(f"{path}: '{LANDMARKS_KEY}' must be a list of 68 vertex ids, got shape {ids.shape}")
    return names, ids


def load_ict_facekit(folder: str | Path) -> ICTFaceKit:
    """The ICT Face Model from a user's ``FaceXModel/`` folder (or its parent).

    Identity files are ``identity###.obj`` in number order; expression files
    are the names of ``vertex_indices.json``'s ``expressions`` list plus
    ``EXTRA_SHAPES`` (absent ones are zero and listed in
    ``missing_expressions``). Every problem is a ``FileNotFoundError`` or
    ``ValueError`` naming the file. About 20 ms per file here.
    """
    root = model_folder(folder)
    neutral_path = root / NEUTRAL_FILE
    neutral = read_obj(neutral_path)
    n = len(neutral.vertices)
    names, landmark_ids = read_vertex_indices(root / INDEX_FILE)
    ids = _check_landmarks(landmark_ids, n, neutral.triangles, str(root / INDEX_FILE))

    def delta_m(path: Path) -> np.ndarray:
        mesh = read_obj(path, faces=False)
        if len(mesh.vertices) != n:
            raise ValueError(f"{path}: {len(mesh.vertices)} vertices, but {neutral_path.name} has {n}: "
                             "not a shape of this model")
        if mesh.n_polygons != neutral.n_polygons:
            raise ValueError(f"{path}: {mesh.n_polygons} faces, but {neutral_path.name} has "
                             f"{neutral.n_polygons}: a truncated file, or another mesh")
        return ((mesh.vertices - neutral.vertices) * METRES_PER_ICT_UNIT).astype(np.float32)

    identity_files = sorted((p for p in root.iterdir() if IDENTITY_FILE.fullmatch(p.name)),
                            key=lambda p: int(IDENTITY_FILE.fullmatch(p.name).group(1)))
    basis = np.empty((len(identity_files), n * 3), dtype=np.float32)
    for k, path in enumerate(identity_files):
        basis[k] = delta_m(path).reshape(-1)

    shape_names = _shape_list(names)
    shape_deltas = np.zeros((len(shape_names), n, 3), dtype=np.float32)
    found = []
    for i, shape in enumerate(shape_names):
        path = root / f"{shape}.obj"
        if path.is_file():
            shape_deltas[i] = delta_m(path)
            found.append(shape)
    return _build(neutral_metres(neutral.vertices), neutral.triangles, ids,
                  tuple(p.stem for p in identity_files), basis, shape_names, shape_deltas, tuple(found))
