"""SynthFace's expression space: Apple ARKit's 52 blendshapes as
displacement fields of position in the face frame.

Each blendshape is a smooth, compactly supported field written against the
landmark anchors (lid margins, mouth line, mouth corners, brow line, ...),
evaluated on a template's own vertices, in normalised face units (1 = the
outer-eye-corner distance). ``jawOpen`` is not a field but a rotation of the
lower face about a hinge axis through the two jaw joints; the model applies
it after the linear blendshapes, as a skinned jaw would.

The mask has no eyeballs and no tongue: ``eyeLook{Down,In,Out,Up}{Left,Right}``
and ``tongueOut`` are kept in the list (so weights line up with ARKit's)
and are documented zero fields, listed in ``ZERO_SHAPES``.

Which lip a vertex belongs to is decided at the point pushed 2.5 % of the
face scale inwards along its normal: where the two lips touch (a closed
FLAME mouth, or SynthFace's lip rows) their vertices almost coincide, but
their normals face each other, so the pushed points fall clearly above and
below the mouth line.
"""

from __future__ import annotations

import numpy as np

from models.face.anchors import Anchors
from models.face.regions import front_weight, lips_ellipse
from models.geometry.smooth import bump, smoothstep

#: ARKit's 52 blendshape names, in Apple's documented order.
ARKIT_NAMES: tuple[str, ...] = (
    "eyeBlinkLeft", "eyeLookDownLeft", "eyeLookInLeft", "eyeLookOutLeft", "eyeLookUpLeft",
    "eyeSquintLeft", "eyeWideLeft",
    "eyeBlinkRight", "eyeLookDownRight", "eyeLookInRight", "eyeLookOutRight", "eyeLookUpRight",
    "eyeSquintRight", "eyeWideRight",
    "jawForward", "jawLeft", "jawRight", "jawOpen",
    "mouthClose", "mouthFunnel", "mouthPucker", "mouthLeft", "mouthRight",
    "mouthSmileLeft", "mouthSmileRight", "mouthFrownLeft", "mouthFrownRight",
    "mouthDimpleLeft", "mouthDimpleRight", "mouthStretchLeft", "mouthStretchRight",
    "mouthRollLower", "mouthRollUpper", "mouthShrugLower", "mouthShrugUpper",
    "mouthPressLeft", "mouthPressRight", "mouthLowerDownLeft", "mouthLowerDownRight",
    "mouthUpperUpLeft", "mouthUpperUpRight",
    "browDownLeft", "browDownRight", "browInnerUp", "browOuterUpLeft", "browOuterUpRight",
    "cheekPuff", "cheekSquintLeft", "cheekSquintRight",
    "noseSneerLeft", "noseSneerRight",
    "tongueOut",
)
N_EXPRESSION = len(ARKIT_NAMES)
INDEX = {name: i for i, name in enumerate(ARKIT_NAMES)}

#: shapes the mask has no anatomy for (eyeballs, tongue): zero displacement
ZERO_SHAPES: tuple[str, ...] = tuple(n for n in ARKIT_NAMES if n.startswith("eyeLook")) + ("tongueOut",)

#: the regions each blendshape may move (see models.face.regions); ``other``
#: is the neck and scalp of a full head, which the jaw drags a little
SHAPE_REGIONS: dict[str, tuple[str, ...]] = {
    **{f"eyeBlink{s}": ("eyes",) for s in ("Left", "Right")},
    **{f"eyeSquint{s}": ("eyes", "cheeks", "nose") for s in ("Left", "Right")},
    **{f"eyeWide{s}": ("eyes",) for s in ("Left", "Right")},
    **{n: () for n in ZERO_SHAPES},
    **{n: ("lips", "chin", "jaw", "cheeks", "other") for n in ("jawForward", "jawLeft", "jawRight", "jawOpen")},
    "mouthClose": ("lips", "chin"),
    "mouthFunnel": ("lips", "chin", "cheeks"),
    "mouthPucker": ("lips", "chin", "cheeks"),
    "mouthLeft": ("lips", "chin", "cheeks", "jaw", "nose"),
    "mouthRight": ("lips", "chin", "cheeks", "jaw", "nose"),
    **{f"mouth{k}{s}": ("lips", "chin", "cheeks", "jaw", "nose")
       for k in ("Smile", "Frown", "Dimple", "Stretch") for s in ("Left", "Right")},
    "mouthRollLower": ("lips", "chin"),
    "mouthRollUpper": ("lips", "nose"),
    "mouthShrugLower": ("lips", "chin"),
    "mouthShrugUpper": ("lips", "nose"),
    **{f"mouthPress{s}": ("lips",) for s in ("Left", "Right")},
    **{f"mouthLowerDown{s}": ("lips", "chin") for s in ("Left", "Right")},
    **{f"mouthUpperUp{s}": ("lips", "nose") for s in ("Left", "Right")},
    **{f"browDown{s}": ("brows", "forehead", "eyes", "nose") for s in ("Left", "Right")},
    "browInnerUp": ("brows", "forehead", "eyes", "nose"),
    **{f"browOuterUp{s}": ("brows", "forehead", "eyes") for s in ("Left", "Right")},
    "cheekPuff": ("cheeks", "jaw", "chin", "lips", "nose"),
    **{f"cheekSquint{s}": ("cheeks", "eyes", "nose") for s in ("Left", "Right")},
    **{f"noseSneer{s}": ("nose", "cheeks", "lips", "eyes") for s in ("Left", "Right")},
}

#: jaw rotation at ``jawOpen = 1`` (radians, about 17 degrees)
JAW_OPEN_ANGLE = 0.30
#: the jaw joints (temporomandibular), normalised face coordinates, subject's right then left
JAW_HINGE = np.array([[-0.82, -0.34, -0.85], [0.82, -0.34, -0.85]])
#: height band (normalised) below the mouth line over which the lower lip stretches
JAW_LIP_STRETCH_BAND = 0.2
#: how far (normalised units) a point is pushed inwards to decide its lip
LIP_PROBE_DEPTH = 0.025
#: half-width (normalised) of the left/right split on the midline
MIDLINE_BLEND = 0.05


def _b(x, y, cx, cy, rx, ry):
    return bump(((x - cx) / rx) ** 2 + ((y - cy) / ry) ** 2)


def _side_weight(x: np.ndarray, side: int) -> np.ndarray:
    """Smooth split: 1 on ``side`` (+1 subject's left), 0 on the other."""
    left = smoothstep((x + MIDLINE_BLEND) / (2 * MIDLINE_BLEND))
    return left if side > 0 else 1.0 - left


def lip_sides(xi: np.ndarray, normals: np.ndarray, a: Anchors) -> tuple[np.ndarray, np.ndarray]:
    """(upper, lower) lip membership in [0, 1] of each vertex."""
    probe = xi - LIP_PROBE_DEPTH * normals
    line = a.mouth_line(np.clip(probe[:, 0], a.point(48)[0], a.point(54)[0]))
    upper = smoothstep((probe[:, 1] - line) / 0.012 + 0.5)
    return upper, 1.0 - upper


def jaw_weight(xi: np.ndarray, normals: np.ndarray, a: Anchors, skin: np.ndarray) -> np.ndarray:
    """How much each vertex follows the jaw, in [0, 1]: the lower lip, chin
    and lower cheeks fully; the upper lip, nose and eyes not at all."""
    probe = xi - LIP_PROBE_DEPTH * normals
    x, y = probe[:, 0], probe[:, 1]
    xc = a.mouth_half_width
    corner_y = 0.5 * (a.point(48)[1] + a.point(54)[1])
    hinge_y = JAW_HINGE[0, 1]
    slope = (hinge_y - corner_y) / (abs(JAW_HINGE[0, 0]) - xc)
    beyond = np.clip(np.abs(x) - xc, 0.0, None)
    boundary = np.where(beyond > 0, corner_y + slope * beyond, a.mouth_line(np.clip(x, -xc, xc)))
    width = 0.012 + 0.45 * beyond
    w = smoothstep((boundary - y) / width + 0.5)
    # the lips stretch: near the mouth line the lower lip follows the jaw fully
    # only mid-lip, half at the corners, so the mouth opens as an oval
    along = 0.5 + 0.5 * np.sqrt(np.clip(1.0 - (x / xc) ** 2, 0.0, None))
    near_line = 1.0 - smoothstep((a.mouth_line(np.clip(x, -xc, xc)) - y) / JAW_LIP_STRETCH_BAND)
    w = w * (1.0 - (1.0 - along) * near_line)
    # the neck of a full head stays: fade out well below the jaw outline
    below = a.jaw_outline_y(x) - 0.05 - y
    w = w * (1.0 - smoothstep(below / 0.25)) * front_weight(xi[:, 2])
    return np.where(skin, w, 0.0)


def expression_fields(xi: np.ndarray, normals: np.ndarray, a: Anchors, skin: np.ndarray) -> np.ndarray:
    """The 52 blendshape fields at ``xi [N, 3]`` with unit ``normals [N, 3]``
    (both in the face frame): ``[52, N, 3]`` normalised displacement at
    weight 1. ``jawOpen``'s slot is zero here (it is a rotation)."""
    x, y, z = xi[:, 0], xi[:, 1], xi[:, 2]
    n = len(xi)
    out = np.zeros((N_EXPRESSION, n, 3))

    def put(name: str, d: np.ndarray) -> None:
        out[INDEX[name]] += d

    def vec(dx, dy, dz, w):
        return np.stack([dx * w, dy * w, dz * w], axis=1)

    sides = {"Left": 1, "Right": -1}
    upper_lip, lower_lip = lip_sides(xi, normals, a)

    # ---- eyes: lids move by the local opening of the eye -------------------
    for sname, s in sides.items():
        inner, outer = a.eye_corners(s)
        up = a.lid_margin(s, True, x)
        lo = a.lid_margin(s, False, x)
        gap = np.clip(up - lo, 0.0, None)
        mid = 0.5 * (up + lo)
        x_in = (x - min(inner[0], outer[0])) * (max(inner[0], outer[0]) - x) >= 0
        upper_lid = (y >= mid) * (1.0 - smoothstep((y - up) / 0.1)) * x_in
        lower_lid = (y < mid) * (1.0 - smoothstep((lo - y) / 0.08)) * x_in
        c = a.eye_centre(s)
        put(f"eyeBlink{sname}", vec(0, -0.82, 0.12, gap * upper_lid) + vec(0, 0.18, 0.0, gap * lower_lid))
        put(f"eyeWide{sname}", vec(0, 0.32, 0.0, gap * upper_lid) + vec(0, -0.08, 0.0, gap * lower_lid))
        cheek = _b(x, y, c[0], c[1] - 0.2, 0.2, 0.1)
        put(f"eyeSquint{sname}", vec(0, 0.34, 0.02, gap * lower_lid) + vec(0, 0.018, 0.006, cheek))

    # ---- brows --------------------------------------------------------------
    for sname, s in sides.items():
        bc = a.brow_centre(s)
        w = _b(x, y, bc[0], bc[1], 0.3, 0.16)
        put(f"browDown{sname}", vec(-0.018 * s, -0.05, 0.006, w))
        wo = _b(x, y, s * 0.47, a.brow_line(np.array([s * 0.47]))[0], 0.26, 0.16)
        put(f"browOuterUp{sname}", vec(0.0, 0.055, 0.0, wo))
        wi = _b(x, y, s * 0.16, a.brow_line(np.array([s * 0.16]))[0], 0.22, 0.17)
        put("browInnerUp", vec(0.004 * s, 0.06, 0.004, wi))

    # ---- cheeks and nose ----------------------------------------------------
    mouth_y = float(a.mouth_centre[1])
    for sname, s in sides.items():
        puff = _b(x, y, s * 0.5, mouth_y + 0.1, 0.27, 0.3)
        put("cheekPuff", vec(0.03 * s, 0.0, 0.045, puff))
        sq = _b(x, y, s * 0.43, -0.26, 0.24, 0.16)
        put(f"cheekSquint{sname}", vec(0.0, 0.03, 0.01, sq))
        alar_y = 0.5 * (a.point(31)[1] + a.point(35)[1])
        sn = _b(x, y, s * 0.1, alar_y + 0.08, 0.13, 0.2)
        put(f"noseSneer{sname}", vec(0.004 * s, 0.035, 0.006, sn))

    # ---- jaw (translations; jawOpen is the hinge rotation) ------------------
    wj = jaw_weight(xi, normals, a, skin)
    put("jawForward", vec(0.0, 0.0, 0.07, wj))
    put("jawLeft", vec(0.09, 0.0, 0.0, wj))
    put("jawRight", vec(-0.09, 0.0, 0.0, wj))

    # ---- mouth --------------------------------------------------------------
    cx, cy = a.mouth_centre[0], a.mouth_centre[1]
    hw = a.mouth_half_width
    lips = bump(lips_ellipse(x, y, a))
    along = np.clip(1.0 - ((x - cx) / hw) ** 2, 0.0, None)           # 1 mid-lip, 0 at corners
    put("mouthClose", vec(0, -0.03, 0, upper_lip * lips) + vec(0, 0.12, 0.01, lower_lip * lips))
    put("mouthFunnel", vec(-0.06 * (x - cx) / hw, 0.0, 0.045, lips)
        + vec(0, 0.035, 0, upper_lip * lips * along) + vec(0, -0.04, 0, lower_lip * lips * along))
    put("mouthPucker", vec(-0.13 * (x - cx), 0.0, 0.06, lips)
        + vec(0, -0.01, 0, upper_lip * lips) + vec(0, 0.012, 0, lower_lip * lips))
    shift = _b(x, y, cx, cy, hw + 0.22, 0.26)
    put("mouthLeft", vec(0.08, 0.0, 0.0, shift))
    put("mouthRight", vec(-0.08, 0.0, 0.0, shift))
    for sname, s in sides.items():
        corner = a.point(54 if s > 0 else 48)
        cw = _b(x, y, corner[0], corner[1], 0.27, 0.27)
        put(f"mouthSmile{sname}", vec(0.045 * s, 0.06, -0.02, cw))
        put(f"mouthFrown{sname}", vec(0.006 * s, -0.055, 0.0, cw))
        put(f"mouthDimple{sname}", vec(0.03 * s, 0.004, -0.035, cw))
        put(f"mouthStretch{sname}", vec(0.06 * s, -0.028, -0.014, cw))
        side = _side_weight(x - cx, s)
        put(f"mouthPress{sname}", vec(0, -0.01, -0.008, upper_lip * lips * side)
            + vec(0, 0.01, -0.008, lower_lip * lips * side))
        put(f"mouthLowerDown{sname}", vec(0, -0.05, 0.004, lower_lip * lips * side * (0.3 + 0.7 * along)))
        put(f"mouthUpperUp{sname}", vec(0, 0.045, 0.004, upper_lip * lips * side * (0.3 + 0.7 * along)))
    put("mouthRollLower", vec(0, 0.014, -0.035, lower_lip * lips * along))
    put("mouthRollUpper", vec(0, -0.014, -0.035, upper_lip * lips * along))
    shrug = _b(x, y, cx, a.lower_lip_bottom - 0.05, hw + 0.05, 0.3)
    put("mouthShrugLower", vec(0, 0.04, 0.012, lower_lip * shrug))
    put("mouthShrugUpper", vec(0, 0.03, 0.006, upper_lip * lips * along))

    # the face skin moves; other components (eyeballs) and the back of a full head never do
    out *= front_weight(z)[None, :, None]
    out[:, ~skin] = 0.0
    for name in ZERO_SHAPES:
        out[INDEX[name]] = 0.0
    return out
