"""Images of SynthFace faces with their ground truth, for training and testing the tracker.

Each sample is one face: member ``i`` of the split's identity population
(``trainers.neutral.data.split_identities`` with ``cfg.seed``: train and test
of one seed never share a face), an expression (a CoMA label at random intensity, a random blendshape
mix, or neutral), a random head pose, drawn by the project's renderer
(``runtime.render``: the face with its eyes and mouth cavity as ``FaceView``
draws them; where the open mask lets a ray pass beside an eyeball, the hole
shows a dark socket) over a procedural background. The camera is orthographic and
set up so that a model point ``v`` (metres) lands exactly where the
tracker's camera (``models.tracking.camera``) puts it::

    p = s F (R v)[:2] + t        pixels: x right, y down, the centre of pixel
                                 (row i, column j) at (j, i), as OpenCV and dlib count

The mesh is rotated on the CPU (``R v``) and drawn by a fixed camera looking
down -z whose orthographic scale and target match ``s`` and ``t``
(``pose_camera``).

Ground truth per sample (``TrackerTruth``)::

    identity     float32 [n, 35]     SynthFace identity
    weights      float32 [n, 52]     ARKit expression weights
    labels       str     [n]         CoMA label, "mix" or "neutral"
    yaw, pitch, roll  float64 [n]    degrees (``camera.rotation_from_euler`` of their radians)
    rotation     float64 [n, 3, 3]   R
    scale        float64 [n]         s, pixels per metre
    translation  float64 [n, 2]      t, pixels
    landmarks    float64 [n, 68, 2]  the 68 landmark vertices (``contour.landmark_ids``: the
                                     jaw on the silhouette) projected
    detected     float64 [n, 68, 2]  ``landmarks`` + detector noise: Gaussian, ``noise_inner``
                                     (points 17-67) or ``noise_contour`` (jaw, 0-16) times
                                     ``interocular`` per axis, plus one offset of the whole
                                     shape (``SHAPE_OFFSET`` times ``interocular`` per axis)
    interocular  float64 [n]         outer eye corners' distance in pixels (``s`` times their
                                     3D distance: it does not shrink as the head turns)
    albedo       float32 [n, 3]      the skin tone (sRGB)

Appearance varies per sample (``Look``): skin tone from deep to light
(``runtime.render.lighting.skin_tone``), key/fill/ambient lights (direction,
colour, intensity), specular, a procedural background (colour gradient,
low-frequency colour noise, blurred random shapes), pixel noise and slight
blur. Every draw comes from ``cfg.seed`` and the sample's index, so sample
``i`` is the same whatever ``n`` is.

A set on disk (``write_tracker_set``, ``TrackerSet.open``)::

    config.json          the TrackerRenderConfig, n, the renderer, timings (written last)
    truth.npz            every truth array above
    images/000000.png    uint8 RGB, one per sample
"""

from __future__ import annotations

import json
import math
import re
import time
import zipfile
from collections import deque
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Iterator

import numpy as np

from models.face import N_EXPRESSION, N_IDENTITY, SynthFace, synthface
from models.tracking.camera import Pose, project, rotation_from_euler
from models.tracking.contour import contour_lines, landmark_ids
from trainers.neutral.data import SPLIT_SEED, SPLITS, sample_expressions, split_identities
from trainers.progress import human_bytes, progress, summary

#: outer eye corners (iBUG 36 and 45): the inter-ocular distance
OUTER_EYE_CORNERS = (36, 45)
#: the jaw contour landmarks (iBUG 0-16)
N_CONTOUR = 17
#: per-image offset of the whole detected shape, per axis, as a share of the inter-ocular distance
SHAPE_OFFSET = 0.01
#: the face's bounding box keeps this many pixels from the image border
MARGIN = 8
#: the fixed camera sits this far (m) in front of the rotated face's origin ...
CAMERA_DISTANCE = 1.0
#: ... and its near/far planes keep CLIP_RADII (runtime.render.camera) of this radius (m) around it
SCENE_RADIUS = 0.2
#: faces per batch of ``SynthFace.vertices`` while sampling and rendering
CHUNK = 64
#: background shapes: how many (low, high) in a soft layer and a sharper one, and each layer's blur radius
SHAPES = ((2, 10), (0, 6))
SHAPE_BLUR = ((4.0, 20.0), (0.5, 3.0))
#: backgrounds are drawn this many times smaller, then enlarged
BACKGROUND_SCALE = 2
#: a hole in the face (see-through past an eyeball) shows this share of the skin colour, ...
SOCKET_SHADE = 0.18
#: ... out to this many pixels around it (the partly covered rim)
HOLE_EDGE = 1
#: random streams of a sample: its truth, its look; and the look of a rendered sequence
TRUTH_STREAM, LOOK_STREAM, SEQUENCE_STREAM = 0, 1, 2
#: images rendered but not yet written, at most
PENDING_WRITES = 4
#: on-disk layout
FORMAT = "facecast-tracker-renders"
FORMAT_VERSION = 1
CONFIG_FILE, TRUTH_FILE, IMAGES = "config.json", "truth.npz", "images"
IMAGE_NAME = re.compile(r"^\d{6}\.png$")
#: what a pixel means, stored with every set
PIXEL_CONVENTION = ("p = s F (R v)[:2] + t; x right, y down; the centre of pixel (row i, column j) is (j, i)")


@dataclass(frozen=True)
class TrackerRenderConfig:
    """What the renders look like; angles in degrees, sizes in pixels."""

    size: tuple[int, int] = (640, 480)          #: (width, height)
    yaw_deg: float = 60.0                       #: yaw uniform in +-this
    pitch_deg: float = 20.0                     #: pitch uniform in +-this
    roll_deg: float = 15.0                      #: roll uniform in +-this
    face_px: tuple[float, float] = (150.0, 260.0)   #: height of the face's image (its vertices' box), uniform
    mix_share: float = 0.3                      #: share of expressive faces that are random blendshape mixes
    neutral_share: float = 0.1                  #: share of neutral faces
    noise_inner: float = 0.015                  #: detector noise of landmarks 17-67 (share of inter-ocular distance)
    noise_contour: float = 0.03                 #: detector noise of the jaw contour 0-16
    seed: int = 0
    split: str = "train"                        #: "train" or "test" (disjoint identity populations)

    def __post_init__(self) -> None:
        object.__setattr__(self, "size", (int(self.size[0]), int(self.size[1])))
        object.__setattr__(self, "face_px", (float(self.face_px[0]), float(self.face_px[1])))
        if self.split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got {self.split!r}")
        if min(self.size) < 4 * MARGIN:
            raise ValueError(f"image size must be at least {4 * MARGIN} pixels each way, got {self.size}")
        if not (0 <= self.yaw_deg < 90 and 0 <= self.pitch_deg < 90 and 0 <= self.roll_deg <= 180):
            raise ValueError("yaw_deg and pitch_deg must lie in [0, 90), roll_deg in [0, 180]")
        lo, hi = self.face_px
        if not 0 < lo <= hi <= self.size[1] - 2 * MARGIN:
            raise ValueError(f"face_px must satisfy 0 < low <= high <= image height - {2 * MARGIN}, "
                             f"got {self.face_px} for size {self.size}")
        if not (0 <= self.mix_share <= 1 and 0 <= self.neutral_share <= 1):
            raise ValueError("mix_share and neutral_share must lie in [0, 1]")
        if self.noise_inner < 0 or self.noise_contour < 0:
            raise ValueError("detector noise must be >= 0")

    def to_dict(self) -> dict:
        return asdict(self)

    @staticmethod
    def from_dict(d: dict) -> "TrackerRenderConfig":
        return TrackerRenderConfig(**{**d, "size": tuple(d["size"]), "face_px": tuple(d["face_px"])})


# ------------------------------------------------------------------ ground truth
@dataclass
class TrackerTruth:
    """The ground truth of ``n`` samples (the module docstring lists every array)."""

    identity: np.ndarray
    weights: np.ndarray
    labels: np.ndarray
    yaw: np.ndarray
    pitch: np.ndarray
    roll: np.ndarray
    rotation: np.ndarray
    scale: np.ndarray
    translation: np.ndarray
    landmarks: np.ndarray
    detected: np.ndarray
    interocular: np.ndarray
    albedo: np.ndarray

    def __len__(self) -> int:
        return len(self.identity)

    def pose(self, i: int) -> Pose:
        """Sample ``i``'s camera."""
        return Pose(self.rotation[i], float(self.scale[i]), self.translation[i])

    def arrays(self) -> dict[str, np.ndarray]:
        """Every truth array by name (what ``truth.npz`` holds)."""
        return {f.name: getattr(self, f.name) for f in fields(TrackerTruth)}

    def check(self) -> None:
        """``ValueError`` naming the first array whose shape does not fit the others."""
        n = len(self.identity)
        shapes = {"identity": (n, N_IDENTITY), "weights": (n, N_EXPRESSION), "labels": (n,), "yaw": (n,),
                  "pitch": (n,), "roll": (n,), "rotation": (n, 3, 3), "scale": (n,), "translation": (n, 2),
                  "landmarks": (n, 68, 2), "detected": (n, 68, 2), "interocular": (n,), "albedo": (n, 3)}
        for name, shape in shapes.items():
            got = np.shape(getattr(self, name))
            if got != shape:
                raise ValueError(f"truth array {name!r} has shape {list(got)}, expected {list(shape)}")


@dataclass
class TrackerSamples(TrackerTruth):
    """Rendered samples: ``images`` uint8 ``[n, H, W, 3]`` (RGB) and their truth."""

    images: np.ndarray


@dataclass(frozen=True)
class _Draw:
    """One sample's random draws before its mesh is known."""

    label: str
    weights: np.ndarray
    angles: tuple[float, float, float]     # degrees
    height: float                          # face_px drawn
    place: np.ndarray                      # [2] in [0, 1]: where in its free range the face sits
    noise: np.ndarray                      # [68, 2] standard normal
    offset: np.ndarray                     # [2] standard normal


def _stream(cfg: TrackerRenderConfig, tag: int, i: int = 0) -> np.random.Generator:
    return np.random.default_rng([cfg.seed, SPLIT_SEED[cfg.split], tag, i])


def _draw(cfg: TrackerRenderConfig, i: int) -> _Draw:
    rng = _stream(cfg, TRUTH_STREAM, i)
    if rng.random() < cfg.neutral_share:
        label, weights = "neutral", np.zeros(N_EXPRESSION, np.float32)
    else:
        w, lab = sample_expressions(1, rng, cfg.mix_share)
        label, weights = str(lab[0]), w[0]
    angles = tuple(float(rng.uniform(-a, a)) for a in (cfg.yaw_deg, cfg.pitch_deg, cfg.roll_deg))
    return _Draw(label, weights, angles, float(rng.uniform(*cfg.face_px)), rng.random(2),
                 rng.standard_normal((68, 2)), rng.standard_normal(2))


def place_face(vertices: np.ndarray, rotation: np.ndarray, height: float, place: np.ndarray,
               size: tuple[int, int]) -> tuple[float, np.ndarray]:
    """``(s, t)`` so that ``vertices [N, 3]`` turned by ``rotation`` image ``height`` pixels tall,
    their box at ``place [2]`` (0..1 of the free range each way) inside the image,
    ``MARGIN`` pixels from its border (centred where the face does not fit)."""
    turned = np.asarray(vertices, np.float64) @ np.asarray(rotation).T
    lo, hi = turned[:, :2].min(axis=0), turned[:, :2].max(axis=0)
    s = height / (hi[1] - lo[1])
    w, h = size
    # image x = s X + t_x over [s lo_x, s hi_x]; image y = -s Y + t_y over [-s hi_y, -s lo_y]
    ranges = ((MARGIN - s * lo[0], w - 1 - MARGIN - s * hi[0]), (MARGIN + s * hi[1], h - 1 - MARGIN + s * lo[1]))
    t = np.array([a + p * (b - a) if b >= a else 0.5 * (a + b) for (a, b), p in zip(ranges, place)])
    return float(s), t


def image_landmarks(template, vertices: np.ndarray, pose: Pose, lines=None) -> np.ndarray:
    """The 68 landmarks ``float64 [68, 2]`` of a mesh ``vertices [N, 3]`` seen by ``pose``:
    the jaw on the silhouette (``contour.landmark_ids``), the rest on their vertices."""
    lines = contour_lines(template) if lines is None else lines
    ids = landmark_ids(template, pose.rotation, vertices, lines)
    return pose.project(np.asarray(vertices, np.float64)[ids])


def sample_truth(cfg: TrackerRenderConfig, n: int, face: SynthFace | None = None) -> TrackerTruth:
    """The ground truth of samples ``0..n-1`` (no rendering; ``render_samples`` draws exactly these)."""
    if n < 1:
        raise ValueError(f"n must be at least 1, got {n}")
    face = face or synthface()
    template = face.template
    lines = contour_lines(template)
    fixed = template.landmarks.vertex_ids(template.faces)
    if fixed is None:
        raise ValueError(f"template {template.name!r}: the tracker's renders need landmarks on vertices")
    eyes = fixed[list(OUTER_EYE_CORNERS)]
    draws = [_draw(cfg, i) for i in range(n)]
    identity = split_identities(cfg.split, n, cfg.seed).astype(np.float32)
    weights = np.stack([d.weights for d in draws]).astype(np.float32)
    angles = np.array([d.angles for d in draws], np.float64)
    rotation = np.stack([rotation_from_euler(*np.radians(a)) for a in angles])
    scale, translation = np.empty(n), np.empty((n, 2))
    landmarks, detected, interocular = np.empty((n, 68, 2)), np.empty((n, 68, 2)), np.empty(n)
    sigma = np.where(np.arange(68) < N_CONTOUR, cfg.noise_contour, cfg.noise_inner)[:, None]
    for start in range(0, n, CHUNK):
        verts = face.vertices(identity[start:start + CHUNK], weights[start:start + CHUNK]).astype(np.float64)
        ids = landmark_ids(template, rotation[start:start + CHUNK], verts, lines)
        for k, v in enumerate(verts):
            i, d = start + k, draws[start + k]
            s, t = place_face(v, rotation[i], d.height, d.place, cfg.size)
            scale[i], translation[i] = s, t
            landmarks[i] = project(v[ids[k]], rotation[i], s, t)
            interocular[i] = s * np.linalg.norm(v[eyes[0]] - v[eyes[1]])
            detected[i] = landmarks[i] + interocular[i] * (sigma * d.noise + SHAPE_OFFSET * d.offset)
    albedo = np.array([draw_look(_stream(cfg, LOOK_STREAM, i)).albedo for i in range(n)], np.float32)
    return TrackerTruth(identity=identity, weights=weights, labels=np.array([d.label for d in draws]),
                        yaw=angles[:, 0], pitch=angles[:, 1], roll=angles[:, 2], rotation=rotation, scale=scale,
                        translation=translation, landmarks=landmarks, detected=detected, interocular=interocular,
                        albedo=albedo)


# ------------------------------------------------------------------- appearance
@dataclass(frozen=True)
class Look:
    """How one image looks: skin, lights, background and sensor (``seed`` drives the
    background and the pixel noise)."""

    albedo: tuple[float, float, float]     #: skin, sRGB
    specular: float
    shininess: float
    key_direction: tuple[float, float, float]   #: toward the light, view space
    key_color: tuple[float, float, float]
    fill_direction: tuple[float, float, float]
    fill_color: tuple[float, float, float]
    sky_color: tuple[float, float, float]
    ground_color: tuple[float, float, float]
    noise: float                           #: pixel noise (sigma, 8-bit levels)
    blur: float                            #: Gaussian blur radius (pixels; 0: none)
    seed: int

    def rig(self):
        from runtime.render.lighting import LightRig

        return LightRig(key_direction=self.key_direction, key_color=self.key_color,
                        fill_direction=self.fill_direction, fill_color=self.fill_color,
                        sky_color=self.sky_color, ground_color=self.ground_color)

    def material(self):
        from runtime.render.lighting import SKIN

        return replace(SKIN, albedo=self.albedo, specular=self.specular, shininess=self.shininess)


def _direction(azimuth_deg: float, elevation_deg: float) -> tuple[float, float, float]:
    az, el = math.radians(azimuth_deg), math.radians(elevation_deg)
    return (math.sin(az) * math.cos(el), math.sin(el), math.cos(az) * math.cos(el))


def _tinted(rng: np.random.Generator, intensity: float, warmth: float) -> tuple[float, float, float]:
    """A light colour: ``intensity`` with a warm (> 0) or cool (< 0) tint."""
    tint = np.array([1.0 + 0.15 * warmth, 1.0, 1.0 - 0.2 * warmth]) * rng.uniform(0.95, 1.05, 3)
    return tuple(float(c) for c in intensity * tint)


def draw_look(rng: np.random.Generator) -> Look:
    """A random look: skin from deep to light, a key light anywhere in front, a fill
    from the other side, an ambient hemisphere, specular, background, noise and blur."""
    from runtime.render.lighting import skin_tone

    albedo = skin_tone(rng.uniform(0.0, 1.0), rng.uniform(0.0, 1.0))
    key_az = rng.uniform(-75.0, 75.0)
    key = (_direction(key_az, rng.uniform(-25.0, 65.0)), _tinted(rng, rng.uniform(0.45, 1.35), rng.uniform(-1, 1)))
    fill_az = -np.sign(key_az) * rng.uniform(30.0, 85.0)
    fill = (_direction(fill_az, rng.uniform(-20.0, 35.0)), _tinted(rng, rng.uniform(0.04, 0.45), rng.uniform(-1, 1)))
    sky = _tinted(rng, rng.uniform(0.08, 0.45), rng.uniform(-1, 1))
    ground = tuple(float(c) * rng.uniform(0.2, 0.6) for c in sky)
    return Look(albedo=albedo, specular=float(rng.uniform(0.04, 0.25)), shininess=float(rng.uniform(12.0, 40.0)),
                key_direction=key[0], key_color=key[1], fill_direction=fill[0], fill_color=fill[1],
                sky_color=sky, ground_color=ground, noise=float(rng.uniform(0.0, 4.0)),
                blur=float(rng.uniform(0.3, 1.2)) if rng.random() < 0.35 else 0.0,
                seed=int(rng.integers(2 ** 62)))


def background(seed: int, size: tuple[int, int]) -> np.ndarray:
    """A procedural background ``uint8 [H, W, 3]``: a two-colour gradient, low-frequency
    colour noise and a few blurred random shapes (drawn at ``1 / BACKGROUND_SCALE`` of the
    size, then enlarged: a background slightly out of focus, at a quarter of the cost)."""
    from PIL import Image, ImageDraw, ImageFilter

    rng = np.random.default_rng([seed, 0])
    full = size
    w, h = (-(-size[0] // BACKGROUND_SCALE), -(-size[1] // BACKGROUND_SCALE))
    c0, c1 = rng.uniform(0.0, 1.0, (2, 3)) ** rng.uniform(0.7, 1.6)
    angle = rng.uniform(0, 2 * np.pi)
    x, y = np.meshgrid(np.linspace(-1, 1, w, dtype=np.float32), np.linspace(-1, 1, h, dtype=np.float32))
    g = np.cos(angle) * x + np.sin(angle) * y
    g = (g - g.min()) / max(float(g.max() - g.min()), 1e-6)
    img = c0 + (c1 - c0) * g[..., None]
    gh, gw = int(rng.integers(2, 10)), int(rng.integers(2, 12))
    coarse = Image.fromarray(rng.integers(0, 256, (gh, gw, 3), dtype=np.uint8)).resize((w, h), Image.BICUBIC)
    img += rng.uniform(0.05, 0.35) * (np.asarray(coarse, np.float32) / 255.0 - 0.5)
    out = Image.fromarray(np.round(np.clip(img, 0, 1) * 255).astype(np.uint8)).convert("RGBA")
    for count, blur in zip(SHAPES, SHAPE_BLUR):                 # far (soft) shapes, then near (sharper) ones
        layer = Image.new("RGBA", (w, h), (0, 0, 0, 0))
        draw = ImageDraw.Draw(layer)
        for _ in range(int(rng.integers(*count))):
            cx, cy = rng.uniform(-0.1, 1.1) * w, rng.uniform(-0.1, 1.1) * h
            rx, ry = rng.uniform(0.03, 0.35) * w, rng.uniform(0.03, 0.35) * h
            fill = tuple(int(c) for c in rng.integers(0, 256, 3)) + (int(rng.integers(60, 230)),)
            kind = rng.integers(3)
            if kind == 0:
                draw.ellipse((cx - rx, cy - ry, cx + rx, cy + ry), fill=fill)
            elif kind == 1:
                draw.rectangle((cx - rx, cy - ry, cx + rx, cy + ry), fill=fill)
            else:
                a = np.sort(rng.uniform(0, 2 * np.pi, int(rng.integers(3, 7))))
                draw.polygon([(float(cx + rx * np.cos(t)), float(cy + ry * np.sin(t))) for t in a], fill=fill)
        out = Image.alpha_composite(out, layer.filter(ImageFilter.GaussianBlur(float(rng.uniform(*blur)))))
    return np.asarray(out.convert("RGB").resize(full, Image.BILINEAR))


def composite(face: np.ndarray, look: Look, back: np.ndarray | None = None) -> np.ndarray:
    """The rendered face ``uint8 [H, W, 4]`` (premultiplied by its coverage: the renderer
    clears to transparent black) over the look's background, blurred and noised:
    ``uint8 [H, W, 3]``. Deterministic in ``look``.

    SynthFace is an open mask: seen at an angle, a ray through an eye (or mouth) slit can
    pass beside the eyeball and out of the back, leaving a hole in the face. Holes (empty
    pixels enclosed by the face) show a dark socket, ``SOCKET_SHADE`` times the skin, not
    the background."""
    from PIL import Image, ImageFilter
    from scipy import ndimage

    h, w = face.shape[:2]
    behind = (background(look.seed, (w, h)) if back is None else back).astype(np.float32)
    covered = face[..., 3] > 0
    if covered.any():                                                       # look for holes in the face's box
        rows, cols = np.flatnonzero(covered.any(axis=1)), np.flatnonzero(covered.any(axis=0))
        box = (slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1))
        holes = ndimage.binary_fill_holes(covered[box]) & ~covered[box]
        if holes.any():
            holes = ndimage.binary_dilation(holes, iterations=HOLE_EDGE)      # and the anti-aliased rims
            behind[box][holes] = SOCKET_SHADE * 255.0 * np.asarray(look.albedo, np.float32)
    a = face[..., 3:4].astype(np.float32) / 255.0
    out = face[..., :3].astype(np.float32) + (1.0 - a) * behind
    if look.blur > 0:
        img = Image.fromarray(np.round(np.clip(out, 0, 255)).astype(np.uint8))
        out = np.asarray(img.filter(ImageFilter.GaussianBlur(look.blur)), np.float32)
    if look.noise > 0:
        out += look.noise * np.random.default_rng([look.seed, 1]).standard_normal(out.shape, dtype=np.float32)
    return np.round(np.clip(out, 0, 255)).astype(np.uint8)


# -------------------------------------------------------------------- rendering
def pose_camera(size: tuple[int, int], scale: float, translation: np.ndarray):
    """The fixed orthographic camera (looking down -z) that images a rotated point
    ``X = R v`` at ``s F X[:2] + t`` with pixel centres on integers.

    The renderer's window pixel is ``W / 2 + s (X - c_x) = s X + t_x + 1/2`` (and
    ``H / 2 - s (Y - c_y) = -s Y + t_y + 1/2`` down the rows) for ``s = H / (2 half_height)``
    and the target ``c`` below; the ``1/2`` is the renderer's pixel centre."""
    from runtime.render.camera import Camera

    w, h = size
    s = float(scale)
    t = np.asarray(translation, np.float64)
    target = ((w / 2 - 0.5 - t[0]) / s, (t[1] + 0.5 - h / 2) / s, 0.0)
    return Camera(target=tuple(float(c) for c in target), distance=CAMERA_DISTANCE, projection="orthographic",
                  half_height=h / (2 * s), radius=SCENE_RADIUS)


class TrackerRenderer:
    """One headless ``Renderer`` + ``FaceView`` reused for many images of SynthFace
    (or any template whose topology ``face`` has); close it when done."""

    def __init__(self, size: tuple[int, int] = (640, 480), face: SynthFace | None = None, samples: int = 4) -> None:
        from runtime.frames import Topology
        from runtime.render import FaceView, Renderer

        self.face = face or synthface()
        self.topology = Topology.from_template(self.face.template)
        self.renderer = Renderer.headless(size=size, samples=samples)
        self.view = FaceView(self.renderer)
        self.size = (int(size[0]), int(size[1]))

    def face_rgba(self, vertices: np.ndarray, pose: Pose, look: Look) -> np.ndarray:
        """The face (model-frame ``vertices [N, 3]``, metres) seen by ``pose`` on a
        transparent background: ``uint8 [H, W, 4]`` (colour premultiplied by coverage)."""
        from runtime.frames import Frame
        from runtime.render import Style

        turned = (np.asarray(vertices, np.float64) @ np.asarray(pose.rotation, np.float64).T).astype(np.float32)
        self.renderer.rig = look.rig()
        style = Style(landmarks=False, accessories=True, background=(0.0, 0.0, 0.0, 0.0), material=look.material())
        self.camera = pose_camera(self.size, pose.scale, pose.translation)
        return self.view.render(Frame(vertices=turned, topology=self.topology), self.camera, style)

    def depth(self) -> np.ndarray:
        """The last image's distance along the view axis ``float32 [H, W]`` (``inf``: background);
        a rotated point ``X`` lies at ``CAMERA_DISTANCE - X_z``."""
        return self.renderer.read_depth()

    def image(self, vertices: np.ndarray, pose: Pose, look: Look, back: np.ndarray | None = None) -> np.ndarray:
        """The finished picture ``uint8 [H, W, 3]``."""
        return composite(self.face_rgba(vertices, pose, look), look, back)

    @property
    def info(self) -> dict:
        return self.renderer.info

    def close(self) -> None:
        self.renderer.close()

    def __enter__(self) -> "TrackerRenderer":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _images(cfg: TrackerRenderConfig, truth: TrackerTruth, renderer: TrackerRenderer,
            show_progress: bool, desc: str) -> Iterator[np.ndarray]:
    """Each sample's picture, in order (meshes made a chunk at a time)."""
    n = len(truth)
    verts = None
    for i in progress(range(n), total=n, desc=desc, unit="image", enabled=show_progress):
        if i % CHUNK == 0:
            verts = renderer.face.vertices(truth.identity[i:i + CHUNK], truth.weights[i:i + CHUNK])
        yield renderer.image(verts[i % CHUNK], truth.pose(i), draw_look(_stream(cfg, LOOK_STREAM, i)))


def render_samples(cfg: TrackerRenderConfig, n: int, show_progress: bool = True) -> TrackerSamples:
    """Render samples ``0..n-1`` into memory (``n * W * H * 3`` bytes: keep ``n`` modest;
    ``write_tracker_set`` streams to disk)."""
    truth = sample_truth(cfg, n)
    images = np.empty((n, cfg.size[1], cfg.size[0], 3), np.uint8)
    with TrackerRenderer(cfg.size) as renderer:
        for i, img in enumerate(_images(cfg, truth, renderer, show_progress, f"tracker renders ({cfg.split})")):
            images[i] = img
    return TrackerSamples(**truth.arrays(), images=images)


def render_sequence(identity: np.ndarray, weights_seq: np.ndarray, poses: Pose | Sequence[Pose],
                    cfg: TrackerRenderConfig = TrackerRenderConfig(), show_progress: bool = False) -> np.ndarray:
    """A video of one face: ``identity [35]`` with expression ``weights_seq [T, 52]`` seen
    by ``poses`` (one ``Pose``, or one per frame), under one look (skin, lights,
    background, noise) drawn from ``cfg.seed``: ``uint8 [T, H, W, 3]``. The same mesh
    and pose give the same frame (the pixel noise is one fixed pattern)."""
    w_seq = np.atleast_2d(np.asarray(weights_seq, np.float32))
    n = len(w_seq)
    pose_list = [poses] * n if isinstance(poses, Pose) else list(poses)
    if len(pose_list) != n:
        raise ValueError(f"render_sequence: {n} expression frames but {len(pose_list)} poses")
    look = draw_look(_stream(cfg, SEQUENCE_STREAM))
    back = background(look.seed, cfg.size)
    ident = np.repeat(np.asarray(identity, np.float32).reshape(1, N_IDENTITY), n, axis=0)
    out = np.empty((n, cfg.size[1], cfg.size[0], 3), np.uint8)
    with TrackerRenderer(cfg.size) as renderer:
        verts = renderer.face.vertices(ident, w_seq)
        for i in progress(range(n), total=n, desc="tracker sequence", unit="frame", enabled=show_progress):
            out[i] = renderer.image(verts[i], pose_list[i], look, back)
    return out


# ---------------------------------------------------------------------- on disk
class PngImages(Sequence):
    """The images of a set on disk, read on access: ``images[i]`` is ``uint8 [H, W, 3]``."""

    def __init__(self, folder: Path, n: int, size: tuple[int, int]) -> None:
        self.folder, self.n, self.size = Path(folder), int(n), size

    def __len__(self) -> int:
        return self.n

    def path(self, i: int) -> Path:
        return self.folder / f"{i:06d}.png"

    def __getitem__(self, i):
        if isinstance(i, slice):
            return [self[k] for k in range(*i.indices(self.n))]
        i = int(i)
        if i < 0:
            i += self.n
        if not 0 <= i < self.n:
            raise IndexError(f"image {i} of a set of {self.n}")
        from PIL import Image, UnidentifiedImageError

        path = self.path(i)
        try:
            with Image.open(path) as img:
                arr = np.asarray(img.convert("RGB"))
        except FileNotFoundError as exc:
            raise ValueError(f"{path}: image missing from the tracker set") from exc
        except (UnidentifiedImageError, OSError, SyntaxError) as exc:
            raise ValueError(f"{path}: not a readable PNG ({exc})") from exc
        if arr.shape != (self.size[1], self.size[0], 3):
            raise ValueError(f"{path}: image is {arr.shape[1]}x{arr.shape[0]}, the set's size is "
                             f"{self.size[0]}x{self.size[1]}")
        return arr


@dataclass
class TrackerSet(TrackerTruth):
    """A set written by ``write_tracker_set``: every truth array in memory, images read
    on access (``images[i]`` or ``image(i)``)."""

    folder: Path
    config: TrackerRenderConfig
    images: PngImages
    meta: dict

    def image(self, i: int) -> np.ndarray:
        """Image ``i``, ``uint8 [H, W, 3]`` RGB."""
        return self.images[i]

    def samples(self, n: int | None = None) -> TrackerSamples:
        """The first ``n`` samples (all by default) with their images in memory
        (``n * W * H * 3`` bytes), as ``render_samples`` returns them."""
        n = len(self) if n is None else int(n)
        if not 1 <= n <= len(self):
            raise ValueError(f"{self.folder}: asked for {n} samples, the set holds {len(self)}")
        images = np.empty((n, self.config.size[1], self.config.size[0], 3), np.uint8)
        for i in range(n):
            images[i] = self.images[i]
        return TrackerSamples(**{k: v[:n] for k, v in self.arrays().items()}, images=images)

    @staticmethod
    def open(folder: str | Path) -> "TrackerSet":
        """Read a set; ``ValueError`` naming the folder or file when it is missing or corrupt."""
        folder = Path(folder)
        if not folder.is_dir():
            raise ValueError(f"{folder}: no such folder (a tracker set holds {CONFIG_FILE}, {TRUTH_FILE} "
                             f"and {IMAGES}/; make one with 'facecast data tracker')")
        meta = _read_config(folder / CONFIG_FILE)
        try:
            cfg = TrackerRenderConfig.from_dict(meta["config"])
            n = int(meta["n"])
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"{folder / CONFIG_FILE}: not a valid tracker set configuration ({exc})") from exc
        truth = _read_truth(folder / TRUTH_FILE, n)
        images = folder / IMAGES
        names = {p.name for p in images.iterdir()} if images.is_dir() else set()
        missing = [i for i in range(n) if f"{i:06d}.png" not in names]
        if missing:
            raise ValueError(f"{images / f'{missing[0]:06d}.png'}: image missing from the tracker set "
                             f"({len(missing)} of {n} missing)")
        return TrackerSet(**truth.arrays(), folder=folder, config=cfg, images=PngImages(images, n, cfg.size),
                          meta=meta)


def _read_config(path: Path) -> dict:
    try:
        meta = json.loads(path.read_text())
    except FileNotFoundError as exc:
        raise ValueError(f"{path}: missing, so {path.parent} is not a finished tracker set") from exc
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path}: corrupt ({exc})") from exc
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise ValueError(f"{path}: not a tracker set's configuration (format is not {FORMAT!r})")
    if meta.get("version") != FORMAT_VERSION:
        raise ValueError(f"{path}: tracker set format version {meta.get('version')}, this code reads "
                         f"{FORMAT_VERSION}")
    return meta


def _read_truth(path: Path, n: int) -> TrackerTruth:
    names = [f.name for f in fields(TrackerTruth)]
    try:
        with np.load(path, allow_pickle=False) as z:
            absent = [k for k in names if k not in z.files]
            if absent:
                raise ValueError(f"{path}: corrupt, arrays missing: {', '.join(absent)}")
            truth = TrackerTruth(**{k: z[k] for k in names})
    except FileNotFoundError as exc:
        raise ValueError(f"{path}: missing from the tracker set") from exc
    except ValueError as exc:
        raise ValueError(str(exc) if str(path) in str(exc) else f"{path}: corrupt ({exc})") from exc
    except (OSError, EOFError, zipfile.BadZipFile) as exc:
        raise ValueError(f"{path}: corrupt ({type(exc).__name__}: {exc})") from exc
    try:
        truth.check()
    except ValueError as exc:
        raise ValueError(f"{path}: {exc}") from exc
    if len(truth) != n:
        raise ValueError(f"{path}: holds {len(truth)} samples, {path.parent / CONFIG_FILE} says {n}")
    return truth


def write_tracker_set(folder: str | Path, cfg: TrackerRenderConfig, n: int, show_progress: bool = True) -> TrackerSet:
    """Render samples ``0..n-1`` to ``folder`` (images streamed to PNG as they are drawn),
    print a one-line summary, and return the set as ``TrackerSet.open`` reads it.
    ``config.json`` is written last: a set whose writing was cut short does not open."""
    from PIL import Image

    folder = Path(folder)
    images = folder / IMAGES
    images.mkdir(parents=True, exist_ok=True)
    for stale in (folder / CONFIG_FILE, folder / TRUTH_FILE):
        stale.unlink(missing_ok=True)
    for p in images.iterdir():
        if IMAGE_NAME.match(p.name):
            p.unlink()
    t0 = time.perf_counter()
    truth = sample_truth(cfg, n)
    # PNG encoding (which releases the GIL) runs beside the rendering of the next images
    with TrackerRenderer(cfg.size) as renderer, ThreadPoolExecutor(max_workers=1) as writer:
        info = renderer.info
        t_render = time.perf_counter()
        pending: deque = deque()
        for i, img in enumerate(_images(cfg, truth, renderer, show_progress, f"tracker renders ({cfg.split})")):
            pending.append(writer.submit(Image.fromarray(img).save, images / f"{i:06d}.png", compress_level=1))
            while len(pending) > PENDING_WRITES:
                pending.popleft().result()
        for job in pending:
            job.result()
        seconds = time.perf_counter() - t_render
    np.savez(folder / TRUTH_FILE, **truth.arrays())
    meta = {"format": FORMAT, "version": FORMAT_VERSION, "config": cfg.to_dict(), "n": n,
            "pixels": PIXEL_CONVENTION, "renderer": {k: info[k] for k in ("renderer", "version", "samples")},
            "render_seconds": round(seconds, 2), "images_per_second": round(n / seconds, 2),
            "total_seconds": round(time.perf_counter() - t0, 2)}
    (folder / CONFIG_FILE).write_text(json.dumps(meta, indent=1))
    size = sum(p.stat().st_size for p in images.iterdir())
    summary(f"tracker renders: {n} {cfg.split} images {cfg.size[0]}x{cfg.size[1]} (seed {cfg.seed}) in "
            f"{meta['total_seconds']:.1f} s, {meta['images_per_second']:.1f} images/s -> {folder} "
            f"({human_bytes(size)})")
    return TrackerSet.open(folder)
