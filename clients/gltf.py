"""Recorded face takes as binary glTF 2.0 (``.glb``): one file a viewer, Blender
or a game engine plays as it is.

Layout (every buffer in the one binary chunk; all floats float32, metres, +Y up):

``scene``            ``extras: {"fps", "frames"}`` (fps from the median frame interval;
                     absent for a one-frame take); ``asset.generator`` is ``"facecast"``
node 0 ``"face"``    mesh ``"face"``: the take compressed to a morph-target basis
  POSITION           the mean frame (with ``min``/``max``)
  NORMAL             area-weighted unit vertex normals of the mean frame
  indices            the triangles, UNSIGNED_SHORT when N < 65536, else UNSIGNED_INT
  targets            K POSITION displacements ``pc00, pc01, ...``: the principal
                     components of (frames - mean), each scaled so its weights lie
                     in [-1, 1] (the range Blender's shape-key sliders and three.js
                     expect); names in ``mesh.extras.targetNames``
  weights            the first frame's K weights (what a viewer shows without animation)
node 1 ``"arkit"``   only with ARKit weights: mesh ``"arkit"``, a 52-shape rig FITTED to
                     this take, placed beside the face (translated +x by 1.2 face widths)
  POSITION, NORMAL   the most neutral frame (the smallest sum of weights)
  targets            the 52 ARKit blendshapes, named in ``extras.targetNames`` in
                     ``runtime.protocol.BLENDSHAPE_NAMES`` order: ridge least squares
                     ``frames - base ~= weights @ D`` over the whole take
animation            one LINEAR sampler per mesh, sharing the input accessor (the frame
                     times from 0, i.e. ``t - t[0]``), channels with path ``weights``:
                     the K component weights of ``face``, the 52 recorded weights of ``arkit``

Trade-offs:

* K is the smallest number of components whose reconstruction is within
  ``tolerance_mm`` of EVERY vertex of EVERY frame, capped at ``max_targets``;
  the reported error is measured on the float32 arrays as written (rounding
  adds ~1e-6 mm), so when the cap binds it gives the real, larger error.
* PCA keeps the file small: the mean + K targets + T*K weights instead of
  T*N*3 floats (600 frames of 5,229 vertices are 37.6 MB raw). A smooth take
  needs few components; sensor noise does not compress, so a noisy take hits
  the cap and reports its error instead. Per-frame vertex animation is not
  in core glTF at all; morph targets are what every viewer plays.
* Between frames the weights, hence the vertices, are interpolated linearly
  (viewers do this; facecast's own playback shows the latest frame instead).
* Morph targets carry no NORMAL deltas: viewers shade every frame with the
  base normals. Normals are not linear in positions, so a PCA of them would
  be approximate anyway; lighting of strong expressions is slightly off.
* The ``arkit`` rig is a linear fit to one take's frames: SynthFace's jaw is a
  rotation and its secondary terms are nonlinear, so the rig reproduces the
  take only to ``weights_rig_error_mm``, and shapes the take never uses get
  zero displacement (the ridge). An engine whose character already has ARKit
  blendshapes should ignore that geometry and read only the weight channel
  (``animations[0]`` channel on node ``"arkit"``) and ``extras.targetNames``,
  and drive its own rig with them.
* glTF sampler times must strictly increase: of frames that share a time
  (as float32 seconds) only the last is written; ``GlbReport.frames`` counts
  the frames written, and the errors are over those.
* The PCA is exact (eigendecomposition of the T x T Gram matrix of the
  frames, float64), so time grows as T^2 N + T^3 and memory as T N + T^2:
  on 2 CPU cores a 600-frame take of 5,229 vertices takes about 1 s, a
  3,000-frame one about 7 s; fine for takes of minutes, not hours.

``read_glb_frames`` and ``read_glb_weights`` evaluate a written file at any
times (pygltflib and numpy only), for tests and for users checking a file.
"""

from __future__ import annotations

import errno
import numbers
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pygltflib as gl
import scipy.linalg

from runtime.protocol import BLENDSHAPE_NAMES
from runtime.render import vertex_normals

__all__ = ["GlbReport", "read_glb_frames", "read_glb_weights", "write_glb"]

#: errors are reported in millimetres; meshes are in metres
MM_PER_M = 1000.0
GENERATOR = "facecast"
FACE_MESH = "face"
ARKIT_MESH = "arkit"
#: the arkit node stands this many face widths to the +x side of the face node
SIDE_BY_SIDE = 1.2
#: ridge of the rig fit, relative to the mean diagonal of ``W^T W``
RIDGE = 1e-6
#: components whose singular value is below this fraction of the largest are noise
RANK_RTOL = 1e-7
#: frames per block when computing reconstruction errors (bounds the float64 buffers)
CHUNK_FRAMES = 256
#: worst (frame, vertex) pairs re-checked for each K before a full error evaluation
CANDIDATES = 512
#: the normal given to a vertex no triangle uses (glTF requires unit normals)
LOOSE_NORMAL = (0.0, 0.0, 1.0)
#: a plain skin-coloured material, double-sided (the face mask is an open surface)
SKIN_RGBA = (0.80, 0.66, 0.58, 1.0)

_FLOAT = gl.FLOAT
_ARRAY = gl.ARRAY_BUFFER
_ELEMENTS = gl.ELEMENT_ARRAY_BUFFER
_DTYPES = {gl.BYTE: np.int8, gl.UNSIGNED_BYTE: np.uint8, gl.SHORT: np.int16,
           gl.UNSIGNED_SHORT: np.uint16, gl.UNSIGNED_INT: np.uint32, gl.FLOAT: np.float32}
_WIDTHS = {"SCALAR": 1, "VEC2": 2, "VEC3": 3, "VEC4": 4, "MAT2": 4, "MAT3": 9, "MAT4": 16}


@dataclass(frozen=True)
class GlbReport:
    """What ``write_glb`` wrote.

    ``frames``: keyframes written; ``vertices``: N; ``targets``: K principal
    components; ``max_error_mm``: the largest per-vertex distance, over all
    written frames, between the face mesh as stored and the recording;
    ``bytes``: file size; ``weights_rig_error_mm``: the same for the fitted
    ARKit rig, or None without weights.
    """

    frames: int
    vertices: int
    targets: int
    max_error_mm: float
    bytes: int
    weights_rig_error_mm: float | None = None


# ----------------------------------------------------------------------
# writing
# ----------------------------------------------------------------------
def write_glb(path: str | os.PathLike, vertices: np.ndarray, faces: np.ndarray, t: np.ndarray,
              weights: np.ndarray | None = None, *, tolerance_mm: float = 0.01, max_targets: int = 64,
              name: str = "facecast take") -> GlbReport:
    """Write a take (``vertices float32 [T, N, 3]`` metres, ``faces int [F, 3]``
    counter-clockwise, ``t float64 [T]`` seconds non-decreasing, optional ARKit
    ``weights [T, 52]``) as a ``.glb`` in the layout of this module's docstring.

    Raises:
        ValueError: bad shapes, values or arguments (the message names which).
        OSError: ``path`` cannot be written (the error names the path).
    """
    verts, tris, times, w = _check_take(vertices, faces, t, weights)
    if isinstance(tolerance_mm, bool) or not isinstance(tolerance_mm, numbers.Real) \
            or not np.isfinite(tolerance_mm) or tolerance_mm <= 0:
        raise ValueError(f"tolerance_mm must be a positive number of millimetres, got {tolerance_mm!r}")
    if isinstance(max_targets, bool) or not isinstance(max_targets, numbers.Integral) or max_targets < 0:
        raise ValueError(f"max_targets must be an integer >= 0, got {max_targets!r}")
    if not isinstance(name, str):
        raise ValueError(f"name must be a string, got {name!r}")
    path = Path(path)
    if not path.parent.is_dir():
        raise FileNotFoundError(errno.ENOENT, "cannot write the glTF file: no such folder", str(path))

    # glTF sampler input must strictly increase: keep the last frame of each run of equal times
    t32 = (times - times[0]).astype(np.float32)
    keep = np.append(t32[1:] > t32[:-1], True)
    verts, t32 = verts[keep], t32[keep]
    w = None if w is None else w[keep]
    n_frames, n_verts = verts.shape[:2]

    mean = verts.mean(axis=0, dtype=np.float64)
    base, targets, coeffs, err_mm = _principal_targets(verts, mean, float(tolerance_mm) / MM_PER_M,
                                                       int(max_targets))

    doc = _Document()
    face_node = doc.mesh_node(FACE_MESH, base, tris, targets, [f"pc{k:02d}" for k in range(len(targets))],
                              coeffs[0] if len(targets) else None)
    input_acc = None
    if len(targets):
        input_acc = doc.times(t32)
        doc.channel(face_node, input_acc, coeffs)

    rig_err_mm = None
    if w is not None:
        neutral = int(np.argmin(w.sum(axis=1)))
        rig_base = verts[neutral].astype(np.float32)
        rig = _fit_rig(verts, rig_base, w)
        rig_err_mm = _max_error(verts, rig_base, w, rig) * MM_PER_M
        width = float(base[:, 0].max() - base[:, 0].min())
        arkit_node = doc.mesh_node(ARKIT_MESH, rig_base, tris, rig, list(BLENDSHAPE_NAMES), w[0],
                                   translation=[SIDE_BY_SIDE * width, 0.0, 0.0])
        if input_acc is None:
            input_acc = doc.times(t32)
        doc.channel(arkit_node, input_acc, w)

    extras = {"frames": int(n_frames)}
    if n_frames > 1:
        extras["fps"] = float(1.0 / np.median(np.diff(times[keep])))
    data = doc.glb(name, extras)
    _write_bytes(path, data)
    return GlbReport(frames=int(n_frames), vertices=int(n_verts), targets=len(targets), max_error_mm=err_mm,
                     bytes=len(data), weights_rig_error_mm=rig_err_mm)


def _check_take(vertices, faces, t, weights):
    """The take as (float32 [T, N, 3], int64 [F, 3], float64 [T], float32 [T, 52] | None)."""
    v = np.asarray(vertices)
    if v.ndim != 3 or v.shape[2] != 3:
        raise ValueError(f"vertices must be [T, N, 3], got shape {v.shape}")
    if v.shape[0] < 1 or v.shape[1] < 1:
        raise ValueError(f"vertices needs at least one frame of at least one vertex, got shape {v.shape}")
    if not np.issubdtype(v.dtype, np.number) or np.iscomplexobj(v):
        raise ValueError(f"vertices must be real numbers, got dtype {v.dtype}")
    v = v.astype(np.float32, copy=False)
    if not np.all(np.isfinite(v)):
        raise ValueError("vertices contains NaN or infinity")
    n_frames, n_verts = v.shape[:2]

    f = np.asarray(faces)
    if f.ndim != 2 or f.shape[1] != 3 or f.shape[0] < 1:
        raise ValueError(f"faces must be [F, 3] with F >= 1, got shape {f.shape}")
    if not np.issubdtype(f.dtype, np.integer):
        raise ValueError(f"faces must be integers, got dtype {f.dtype}")
    if f.min() < 0 or f.max() >= n_verts:
        raise ValueError(f"faces index vertices {f.min()}..{f.max()}, out of range for {n_verts} vertices")
    f = f.astype(np.int64)

    times = np.asarray(t)
    if times.shape != (n_frames,):
        raise ValueError(f"t must be [{n_frames}] seconds (one per frame), got shape {times.shape}")
    if not np.issubdtype(times.dtype, np.number) or np.iscomplexobj(times):
        raise ValueError(f"t must be real numbers, got dtype {times.dtype}")
    times = times.astype(np.float64)
    if not np.all(np.isfinite(times)):
        raise ValueError("t contains NaN or infinity")
    if np.any(np.diff(times) < 0):
        i = int(np.flatnonzero(np.diff(times) < 0)[0])
        raise ValueError(f"t must be non-decreasing, but t[{i + 1}] = {times[i + 1]} < t[{i}] = {times[i]}")

    w = None
    if weights is not None:
        w = np.asarray(weights)
        shape = (n_frames, len(BLENDSHAPE_NAMES))
        if w.shape != shape or not np.issubdtype(w.dtype, np.number) or np.iscomplexobj(w):
            raise ValueError(f"weights must be real [{shape[0]}, {shape[1]}] (one ARKit row per frame), "
                             f"got shape {w.shape} dtype {w.dtype}")
        w = w.astype(np.float32)
        if not np.all(np.isfinite(w)):
            raise ValueError("weights contains NaN or infinity")
    return v, f, times, w


def _principal_targets(verts: np.ndarray, mean: np.ndarray, tol_m: float, max_targets: int):
    """The mean as float32 [N, 3], K targets float32 [K, N, 3], their weights
    float32 [T, K] in [-1, 1], and the max per-vertex error (mm) of the
    stored float32 reconstruction, K as small as ``tol_m`` allows."""
    n_frames, n_verts = verts.shape[:2]
    x = (verts.reshape(n_frames, -1) - mean.reshape(1, -1).astype(np.float32))        # float32 [T, 3N]
    base = mean.astype(np.float32)
    kmax = min(max_targets, n_frames)
    if kmax == 0:
        none = np.zeros((0, n_verts, 3), np.float32)
        return base, none, np.zeros((n_frames, 0), np.float32), _max_error(verts, base, None, none) * MM_PER_M

    gram = np.zeros((n_frames, n_frames))
    for c in range(0, x.shape[1], 4096):
        xc = x[:, c:c + 4096].astype(np.float64)
        gram += xc @ xc.T
    eigval, eigvec = scipy.linalg.eigh(gram, subset_by_index=[n_frames - kmax, n_frames - 1], driver="evx")
    eigval, eigvec = eigval[::-1], eigvec[:, ::-1]
    sing = np.sqrt(np.maximum(eigval, 0.0))
    rank = int(np.sum(sing > RANK_RTOL * sing[0])) if sing[0] > 0 else 0
    eigvec, sing = eigvec[:, :rank], sing[:rank]

    # components V [3N, k] = X^T U / s, re-orthonormalised (QR keeps the nested spans); C = X V
    comp = np.empty((x.shape[1], rank), order="F")          # (LAPACK's QR wants columns)
    for c in range(0, x.shape[1], 4096):
        comp[c:c + 4096] = x[:, c:c + 4096].T.astype(np.float64) @ eigvec
    comp /= np.maximum(sing, np.finfo(float).tiny)
    if rank:
        comp, r = np.linalg.qr(comp)
        comp *= np.where(np.diag(r) < 0, -1.0, 1.0)
    coef = np.zeros((n_frames, rank))
    for c in range(0, x.shape[1], 4096):
        coef += x[:, c:c + 4096].astype(np.float64) @ comp[c:c + 4096]

    k = _smallest_k(x, coef, comp, tol_m)
    coef, comp = coef[:, :k], comp[:, :k]
    # scale each component so its weights span [-1, 1], the largest |weight| being +1
    peak = np.argmax(np.abs(coef), axis=0)
    scale = coef[peak, np.arange(k)] if k else np.ones(0)
    weights = (coef / scale).astype(np.float32)
    targets = (comp * scale).T.reshape(k, n_verts, 3).astype(np.float32)
    return base, targets, weights, _max_error(verts, base, weights, targets) * MM_PER_M


def _smallest_k(x: np.ndarray, coef: np.ndarray, comp: np.ndarray, tol_m: float) -> int:
    """The smallest K whose reconstruction ``coef[:, :K] @ comp[:, :K].T`` is within
    ``tol_m`` of ``x`` at every vertex of every frame, else all of them.

    The per-vertex maximum need not fall monotonically with K, so every K is
    tried in turn; most are rejected by the worst (frame, vertex) pairs of the
    last full evaluation, and only a K that passes them gets a full one."""
    n_frames = len(x)
    n_verts = x.shape[1] // 3
    x3 = x.reshape(n_frames, n_verts, 3)
    comp3 = np.ascontiguousarray(comp).reshape(n_verts, 3, -1)
    worst = None
    for k in range(coef.shape[1] + 1):
        if worst is not None:
            rows, cols = worst // n_verts, worst % n_verts
            xs = x3[rows, cols].astype(np.float64)
            rec = np.einsum("ik,ijk->ij", coef[rows, :k], comp3[cols, :, :k])
            if np.max(np.linalg.norm(xs - rec, axis=-1)) > tol_m:
                continue
        err, worst = _full_errors(x, coef[:, :k], comp[:, :k])
        if err <= tol_m:
            return k
    return coef.shape[1]


def _full_errors(x: np.ndarray, coef: np.ndarray, comp: np.ndarray) -> tuple[float, np.ndarray]:
    """Max per-vertex error of ``x ~ coef @ comp.T`` and the flat (frame * N + vertex)
    indices of the ``CANDIDATES`` worst pairs."""
    n_frames = len(x)
    n_verts = x.shape[1] // 3
    best_err = np.zeros(0)
    best_idx = np.zeros(0, dtype=np.int64)
    for s in range(0, n_frames, CHUNK_FRAMES):
        res = x[s:s + CHUNK_FRAMES].astype(np.float64)
        if coef.shape[1]:
            res -= coef[s:s + CHUNK_FRAMES] @ comp.T
        err = np.sqrt(np.einsum("ij,ij->i", res.reshape(-1, 3), res.reshape(-1, 3)))
        m = min(CANDIDATES, len(err))
        top = np.argpartition(err, len(err) - m)[len(err) - m:]
        best_err = np.concatenate([best_err, err[top]])
        best_idx = np.concatenate([best_idx, top + s * n_verts])
        if len(best_err) > CANDIDATES:
            sel = np.argpartition(best_err, len(best_err) - CANDIDATES)[len(best_err) - CANDIDATES:]
            best_err, best_idx = best_err[sel], best_idx[sel]
    return float(best_err.max()), best_idx


def _max_error(verts: np.ndarray, base: np.ndarray, weights: np.ndarray | None, targets: np.ndarray) -> float:
    """Max per-vertex distance (metres) between ``verts`` and ``base + weights @ targets``,
    evaluated in float64 from the float32 arrays as stored."""
    n_frames, n_verts = verts.shape[:2]
    flat = targets.reshape(len(targets), n_verts * 3).astype(np.float64)
    worst = 0.0
    for s in range(0, n_frames, CHUNK_FRAMES):
        res = verts[s:s + CHUNK_FRAMES].reshape(-1, n_verts * 3).astype(np.float64) - base.reshape(1, -1)
        if len(targets):
            res -= weights[s:s + CHUNK_FRAMES].astype(np.float64) @ flat
        err = np.einsum("ij,ij->i", res.reshape(-1, 3), res.reshape(-1, 3))
        worst = max(worst, float(err.max()))
    return float(np.sqrt(worst))


def _fit_rig(verts: np.ndarray, base: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Per-blendshape displacements float32 [52, N, 3]: ridge least squares
    ``verts - base ~= w @ D`` (shapes the take never uses get zero)."""
    n_frames, n_verts = verts.shape[:2]
    w64 = w.astype(np.float64)
    gram = w64.T @ w64
    ridge = RIDGE * max(float(np.trace(gram)) / len(gram), 1.0)
    rhs = np.zeros((w.shape[1], n_verts * 3))
    for s in range(0, n_frames, CHUNK_FRAMES):
        y = verts[s:s + CHUNK_FRAMES].reshape(-1, n_verts * 3).astype(np.float64) - base.reshape(1, -1)
        rhs += w64[s:s + CHUNK_FRAMES].T @ y
    d = scipy.linalg.solve(gram + ridge * np.eye(len(gram)), rhs, assume_a="pos")
    return d.reshape(-1, n_verts, 3).astype(np.float32)


def _write_bytes(path: Path, data: bytes) -> None:
    """Write atomically (``clients.recording.replacing``): a failed or killed write
    leaves the previous file or the complete new one, never a half file."""
    from clients.recording import replacing

    try:
        with replacing(path) as fh:
            fh.write(data)
    except OSError as e:
        raise OSError(e.errno, f"cannot write the glTF file: {e.strerror or e}", str(path)) from e


class _Document:
    """A glTF document being built: accessors over one growing binary blob."""

    def __init__(self) -> None:
        self.blob = bytearray()
        self.doc = gl.GLTF2(asset=gl.Asset(generator=GENERATOR, version="2.0"))
        self.doc.materials.append(gl.Material(
            name="skin", doubleSided=True,
            pbrMetallicRoughness=gl.PbrMetallicRoughness(baseColorFactor=list(SKIN_RGBA),
                                                         metallicFactor=0.0, roughnessFactor=0.6)))
        self.animation = gl.Animation(name=None)

    def accessor(self, array: np.ndarray, kind: str, target: int | None = None, bounds: bool = False) -> int:
        """Append ``array`` (rows of ``kind``) as one tightly packed, 4-byte aligned bufferView."""
        array = np.ascontiguousarray(array)
        ctype = {np.dtype(np.float32): _FLOAT, np.dtype(np.uint16): gl.UNSIGNED_SHORT,
                 np.dtype(np.uint32): gl.UNSIGNED_INT}[array.dtype]
        rows = array.reshape(len(array), -1)
        data = array.astype(array.dtype.newbyteorder("<"), copy=False).tobytes()
        self.doc.bufferViews.append(gl.BufferView(buffer=0, byteOffset=len(self.blob), byteLength=len(data),
                                                  target=target))
        self.blob += data
        self.blob += b"\0" * (-len(self.blob) % 4)
        acc = gl.Accessor(bufferView=len(self.doc.bufferViews) - 1, byteOffset=0, componentType=ctype,
                          count=len(rows), type=kind)
        if bounds:
            acc.min = [float(v) for v in rows.min(axis=0)]
            acc.max = [float(v) for v in rows.max(axis=0)]
        self.doc.accessors.append(acc)
        return len(self.doc.accessors) - 1

    def mesh_node(self, name: str, base: np.ndarray, faces: np.ndarray, targets: np.ndarray,
                  target_names: list[str], first_weights: np.ndarray | None,
                  translation: list[float] | None = None) -> int:
        """A mesh with its morph targets, and the node that shows it; returns the node index."""
        normals = vertex_normals(base.astype(np.float64), faces)
        loose = np.linalg.norm(normals, axis=-1) < 0.5
        normals[loose] = LOOSE_NORMAL
        index_type = np.uint16 if len(base) < 65536 else np.uint32
        prim = gl.Primitive(
            attributes=gl.Attributes(POSITION=self.accessor(base, gl.VEC3, _ARRAY, bounds=True),
                                     NORMAL=self.accessor(normals.astype(np.float32), gl.VEC3, _ARRAY)),
            indices=self.accessor(faces.reshape(-1).astype(index_type), gl.SCALAR, _ELEMENTS),
            mode=gl.TRIANGLES, material=0,
            targets=[gl.Attributes(POSITION=self.accessor(d, gl.VEC3, _ARRAY, bounds=True)) for d in targets])
        mesh = gl.Mesh(name=name, primitives=[prim])
        if len(targets):
            mesh.weights = [float(v) for v in first_weights]
            mesh.extras = {"targetNames": list(target_names)}
        self.doc.meshes.append(mesh)
        node = gl.Node(name=name, mesh=len(self.doc.meshes) - 1)
        if translation is not None:
            node.translation = [float(v) for v in translation]
        self.doc.nodes.append(node)
        return len(self.doc.nodes) - 1

    def times(self, t32: np.ndarray) -> int:
        return self.accessor(t32.astype(np.float32), gl.SCALAR, bounds=True)

    def channel(self, node: int, input_acc: int, weights: np.ndarray) -> None:
        """Animate ``node``'s morph weights: ``weights [T, K]`` at the times of ``input_acc``."""
        out = self.accessor(weights.astype(np.float32).reshape(-1), gl.SCALAR)
        self.animation.samplers.append(gl.AnimationSampler(input=input_acc, output=out, interpolation=gl.ANIM_LINEAR))
        self.animation.channels.append(gl.AnimationChannel(
            sampler=len(self.animation.samplers) - 1, target=gl.AnimationChannelTarget(node=node, path="weights")))

    def glb(self, name: str, scene_extras: dict) -> bytes:
        doc = self.doc
        doc.scenes = [gl.Scene(name=name, nodes=list(range(len(doc.nodes))), extras=scene_extras)]
        doc.scene = 0
        if self.animation.channels:
            self.animation.name = name
            doc.animations = [self.animation]
        doc.buffers = [gl.Buffer(byteLength=len(self.blob))]
        doc.set_binary_blob(bytes(self.blob))
        return b"".join(doc.save_to_bytes())


# ----------------------------------------------------------------------
# reading
# ----------------------------------------------------------------------
def read_glb_frames(path: str | os.PathLike, times, *, mesh: str = FACE_MESH) -> np.ndarray:
    """Evaluate mesh ``mesh`` (``"face"``, or ``"arkit"`` for the fitted rig) of a
    file written by ``write_glb`` at ``times`` (seconds from the take's start):
    ``float32 [len(times), N, 3]``, ``base + sum_k w_k(t) target_k`` with the
    weights interpolated as the animation's sampler says (clamped at the ends),
    in the mesh's own coordinates (the node's translation is not applied)."""
    doc, blob = _load(path)
    node, m = _find(doc, mesh)
    if m is None:
        raise ValueError(f"{path}: no mesh named {mesh!r}")
    prim = doc.meshes[m].primitives[0]
    base = _accessor(doc, blob, prim.attributes.POSITION).astype(np.float64)
    targets = np.zeros((0, *base.shape))
    if prim.targets:       # pygltflib reads targets back as dicts
        targets = np.stack([_accessor(doc, blob, a["POSITION"] if isinstance(a, dict) else a.POSITION)
                            for a in prim.targets]).astype(np.float64)
    w = _weights_at(doc, blob, node, m, times)
    flat = base.reshape(1, -1) + w @ targets.reshape(len(targets), base.size)
    return flat.reshape(len(w), *base.shape).astype(np.float32)


def read_glb_weights(path: str | os.PathLike, times) -> np.ndarray | None:
    """The ARKit weights ``float32 [len(times), 52]`` of a file written by
    ``write_glb`` at ``times`` (interpolated as the sampler says), or None when
    the file has no ``"arkit"`` mesh."""
    doc, blob = _load(path)
    node, m = _find(doc, ARKIT_MESH)
    if m is None:
        return None
    return _weights_at(doc, blob, node, m, times).astype(np.float32)


def _load(path) -> tuple[gl.GLTF2, bytes]:
    data = Path(path).read_bytes()
    if data[:4] != b"glTF":
        raise ValueError(f"{path}: not a binary glTF (.glb) file")
    doc = gl.GLTF2.load_from_bytes(data)
    blob = doc.binary_blob()
    if doc is None or blob is None or len(doc.buffers) != 1 or doc.buffers[0].uri is not None:
        raise ValueError(f"{path}: expected a .glb with one embedded buffer")
    return doc, bytes(blob)


def _find(doc: gl.GLTF2, mesh_name: str) -> tuple[int | None, int | None]:
    """(node index, mesh index) of the node showing the mesh named ``mesh_name``."""
    for i, node in enumerate(doc.nodes):
        if node.mesh is not None and doc.meshes[node.mesh].name == mesh_name:
            return i, node.mesh
    return None, None


def _accessor(doc: gl.GLTF2, blob: bytes, index: int) -> np.ndarray:
    """Accessor ``index`` as an array ``[count, width]`` (``[count]`` for scalars),
    honouring the bufferView's and the accessor's byteOffset and the byteStride."""
    acc = doc.accessors[index]
    if acc.sparse is not None or acc.bufferView is None:
        raise ValueError(f"accessor {index}: sparse or bufferView-less accessors are not supported")
    dtype = np.dtype(_DTYPES[acc.componentType]).newbyteorder("<")
    width = _WIDTHS[acc.type]
    view = doc.bufferViews[acc.bufferView]
    start = (view.byteOffset or 0) + (acc.byteOffset or 0)
    item = dtype.itemsize * width
    stride = view.byteStride or item
    end = start + (acc.count - 1) * stride + item if acc.count else start
    if end > (view.byteOffset or 0) + view.byteLength or end > len(blob):
        raise ValueError(f"accessor {index} runs past the end of its bufferView")
    arr = np.ndarray((acc.count, width), dtype=dtype, buffer=blob, offset=start, strides=(stride, dtype.itemsize))
    arr = arr.astype(dtype.newbyteorder("="))
    return arr[:, 0] if width == 1 else arr


def _weights_at(doc: gl.GLTF2, blob: bytes, node: int, mesh: int, times) -> np.ndarray:
    """Morph weights float64 [len(times), K] of ``node`` at ``times``: from its
    ``weights`` channel, else the mesh's default weights (else zeros)."""
    q = np.atleast_1d(np.asarray(times, dtype=np.float64))
    if q.ndim != 1 or not np.all(np.isfinite(q)):
        raise ValueError("times must be a 1-D array of finite seconds")
    prim = doc.meshes[mesh].primitives[0]
    k = len(prim.targets or [])
    for anim in doc.animations:
        for ch in anim.channels:
            if ch.target.node == node and ch.target.path == "weights":
                sampler = anim.samplers[ch.sampler]
                key_t = _accessor(doc, blob, sampler.input).astype(np.float64)
                out = _accessor(doc, blob, sampler.output).astype(np.float64).reshape(len(key_t), k)
                return _interpolate(key_t, out, q, sampler.interpolation or gl.ANIM_LINEAR)
    default = np.asarray(doc.meshes[mesh].weights or np.zeros(k), dtype=np.float64)
    return np.repeat(default[None], len(q), axis=0)


def _interpolate(key_t: np.ndarray, out: np.ndarray, q: np.ndarray, how: str) -> np.ndarray:
    """glTF LINEAR or STEP interpolation of ``out [T, K]`` at ``q``, clamped to the ends."""
    if len(key_t) == 1:
        return np.repeat(out[:1], len(q), axis=0)
    i = np.clip(np.searchsorted(key_t, q, side="right") - 1, 0, len(key_t) - 2)
    if how == gl.ANIM_STEP:
        return out[np.where(q >= key_t[i + 1], i + 1, i)]
    if how != gl.ANIM_LINEAR:
        raise ValueError(f"{how} interpolation is not supported (write_glb writes LINEAR)")
    f = np.clip((q - key_t[i]) / (key_t[i + 1] - key_t[i]), 0.0, 1.0)[:, None]
    return out[i] * (1.0 - f) + out[i + 1] * f
