"""The SynthFace template: a face mask built by code, no downloaded asset.

Construction, in three steps:

1. A structured grid over a chart ``(t, Y)``: ``t`` is the angle of a
   horizontal superellipse around a vertical axis through the head (ear to
   ear), ``Y`` the height in metres. Rows follow named feature curves (jaw
   line, mouth line, eye line, hairline), so the mouth and eye slits lie on
   grid rows. Along each slit the row's vertices are duplicated: the upper
   side keeps the originals, the lower side gets the copies, so the lips are
   separate rows of vertices and the eyelids can close.
2. The slits are opened in the chart by a lens-shaped vertical displacement
   (eyes: the palpebral fissure; mouth: a lip gap of about a millimetre).
3. Each chart point ``(t, Y)`` becomes a 3D point on the superellipse of
   that height, pushed out along the radial direction by a sum of smooth,
   compactly supported feature terms (nose, eye sockets, lids, brows,
   cheekbones, lips, chin, ...) written in frontal coordinates ``(X, Y)``.

Because every vertex is a radial graph over the chart, the surface is
embedded (never self-intersecting) as long as the chart triangles keep their
orientation; ``chart_orientation`` checks exactly that for any deformation.

Frame: metres, ``+x`` the subject's left, ``+y`` up, ``+z`` forward (out of
the face), origin on the head's vertical axis at the height of the eye
corners. Every constant below has a name and a unit.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.interpolate import PchipInterpolator

from models.geometry.smooth import bump, smoothstep, soft_plus

# --------------------------------------------------------------------------
# Shape constants (metres unless stated)
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class Bump:
    """A compact radial bump added to the radial height.

    ``centre`` and ``radii`` are frontal ``(X, Y)`` in metres, ``height`` in
    metres (negative for a hollow). ``mirror`` adds the twin at ``-X``.
    ``power`` sharpens (> 1) or flattens (< 1) the profile.
    """

    name: str
    centre: tuple[float, float]
    radii: tuple[float, float]
    height: float
    mirror: bool = False
    power: float = 1.0

    def evaluate(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        out = np.zeros_like(x)
        centres = [self.centre] + ([(-self.centre[0], self.centre[1])] if self.mirror else [])
        for cx, cy in centres:
            r2 = ((x - cx) / self.radii[0]) ** 2 + ((y - cy) / self.radii[1]) ** 2
            out += bump(r2) ** self.power
        return self.height * out


@dataclass(frozen=True)
class GridSpec:
    """Resolution of the chart grid."""

    columns: int = 81                #: ear-to-ear vertex columns (odd: one on the midline)
    centre_density: float = 0.62     #: column spacing on the midline relative to the mean
    t_max: float = 1.64              #: superellipse angle of the outermost column (rad)
    rows_below_jaw: int = 5          #: rows between the bottom rim and the jaw line
    rows_jaw_to_mouth: int = 16      #: rows between the jaw line and the mouth slit
    rows_mouth_to_eyes: int = 23     #: rows between the mouth slit and the eye slits
    rows_eyes_to_top: int = 19       #: rows between the eye slits and the hairline


@dataclass(frozen=True)
class SlitSpec:
    """A slit: its corners (frontal X of the two ends) and its lens opening.

    ``open_up``/``open_down`` are the largest displacements (metres) of the
    upper and lower margins; ``peak_up``/``peak_down`` where along the slit
    (0 at the corner nearer the midline, 1 at the outer corner) they peak.
    ``falloff`` is the height band (metres) over which the opening fades.
    """

    inner_x: float
    outer_x: float
    open_up: float
    open_down: float
    peak_up: float
    peak_down: float
    falloff: float


@dataclass(frozen=True)
class TemplateSpec:
    """Every number that shapes the SynthFace mean face."""

    grid: GridSpec = field(default_factory=GridSpec)
    #: superellipse exponent of the horizontal sections (2 = ellipse; larger = flatter front)
    section_exponent: float = 2.6
    #: half width of the head section (x at the outermost point) against height Y
    half_width: tuple[tuple[float, float], ...] = (
        (-0.14, 0.056), (-0.11, 0.060), (-0.085, 0.064), (-0.06, 0.067), (-0.03, 0.070),
        (0.0, 0.071), (0.03, 0.069), (0.06, 0.065), (0.10, 0.060),
    )
    #: depth of the section on the midline (z at X = 0) against height Y, before features
    front_depth: tuple[tuple[float, float], ...] = (
        (-0.14, 0.080), (-0.11, 0.084), (-0.095, 0.087), (-0.075, 0.089), (-0.055, 0.091),
        (-0.04, 0.090), (-0.02, 0.086), (0.0, 0.085), (0.02, 0.086), (0.04, 0.083),
        (0.057, 0.078), (0.074, 0.068), (0.09, 0.056), (0.10, 0.046),
    )
    #: radius retracted per metre below the jaw line (the surface turns under the jaw)
    under_jaw_slope: float = 5.0
    #: rise of the rows under the jaw per metre they run back (their slope)
    under_jaw_rise: float = 0.15
    #: share of the pull under the jaw that goes inwards rather than backwards
    under_jaw_inward: float = 0.3
    #: smoothing width of the turn under the jaw (m)
    under_jaw_round: float = 0.004

    # feature curves, as functions of frontal |X| (m)
    eye_line_inner: float = -0.0010     #: Y of the eye slit at the inner corner
    eye_line_outer: float = 0.0025      #: Y of the eye slit at the outer corner
    mouth_line: float = -0.0600         #: Y of the mouth slit on the midline
    mouth_corner_drop: float = 0.0008   #: how much lower the mouth corners sit
    mouth_row_rise: float = 0.025       #: the mouth's grid row rises this much towards the ear ...
    mouth_row_rise_band: float = 0.045  #: ... over this |X| band beyond the mouth corner
    jaw_chin: float = -0.1060           #: Y of the jaw line under the chin
    jaw_rise: float = 0.060             #: rise of the jaw line from the chin to the ear
    jaw_rise_power: float = 2.4         #: shape of that rise against |X| / side_x
    side_x: float = 0.070               #: reference half width for the feature curves
    below_jaw_centre: float = 0.006     #: chart height of the mask under the chin
    below_jaw_side: float = 0.006       #: ... and under the ear
    hairline_centre: float = 0.088      #: Y of the hairline on the midline
    hairline_drop: float = 0.050        #: how far the hairline falls at the sideburns
    even_rows_from: float = 0.050       #: frontal |X| where rows start to spread evenly
    even_rows_band: float = 0.018       #: ... and the width of that transition

    eyes: SlitSpec = SlitSpec(inner_x=0.0160, outer_x=0.0455, open_up=0.0058, open_down=0.0042,
                              peak_up=0.42, peak_down=0.55, falloff=0.018)
    mouth: SlitSpec = SlitSpec(inner_x=0.0, outer_x=0.0245, open_up=0.0005, open_down=0.0005,
                               peak_up=0.0, peak_down=0.0, falloff=0.004)

    # nose: a ridge along the midline, heights and half widths against Y
    nose_height: tuple[tuple[float, float], ...] = (
        (0.016, 0.0), (0.008, 0.0030), (0.000, 0.0070), (-0.010, 0.0130), (-0.018, 0.0185),
        (-0.024, 0.0225), (-0.028, 0.0236), (-0.032, 0.0205), (-0.036, 0.0125),
        (-0.040, 0.0040), (-0.044, 0.0),
    )
    nose_half_width: tuple[tuple[float, float], ...] = (
        (0.016, 0.011), (0.005, 0.010), (-0.010, 0.0115), (-0.022, 0.0135),
        (-0.030, 0.0150), (-0.038, 0.0150), (-0.046, 0.0140),
    )

    # lips: the vermilion heights (m) and borders (Y, m)
    upper_lip_border: float = -0.0525  #: Y of the upper vermilion border at the bow peaks
    cupid_dip: float = 0.0012          #: dip of the border on the midline (m)
    lower_lip_border: float = -0.0700  #: Y of the lower vermilion border on the midline
    upper_lip_pout: float = 0.0032     #: forward bulge of the upper lip
    lower_lip_pout: float = 0.0040     #: forward bulge of the lower lip
    lip_curl: float = 0.0012           #: how far the lips curl in at the slit
    lip_curl_band: float = 0.0030      #: height band of that curl

    # eyes: a socket, and an eyeball the lids lie on; the lid surface is the
    # smooth maximum of the two (the lids drape over the ball, the socket
    # shows around it)
    eye_socket: Bump = Bump("eye_socket", (0.0300, 0.0050), (0.0260, 0.0225), -0.0140, mirror=True)
    eyeball_centre: tuple[float, float] = (0.0310, 0.0005)  #: frontal (X, Y) of each eyeball's apex
    eyeball_radius: float = 0.0125       #: radius of the eyeball under the lids (m)
    eyeball_height: float = 0.0105       #: lid surface over the apex, above the socket floor (m)
    eye_blend: float = 0.003             #: smoothing width of the lid/socket junction (m)

    bumps: tuple[Bump, ...] = (
        Bump("lid_crease", (0.0300, 0.0105), (0.0160, 0.0045), -0.0010, mirror=True),
        Bump("brow_ridge", (0.0290, 0.0190), (0.0300, 0.0120), 0.0042, mirror=True),
        Bump("glabella", (0.0, 0.0140), (0.0160, 0.0120), 0.0030),
        Bump("nasion_saddle", (0.0, 0.0065), (0.0110, 0.0070), -0.0018),
        Bump("frontal_eminence", (0.0260, 0.0560), (0.0300, 0.0300), 0.0025, mirror=True),
        Bump("temple", (0.0620, 0.0230), (0.0180, 0.0280), -0.0040, mirror=True),
        Bump("cheekbone", (0.0460, -0.0230), (0.0250, 0.0190), 0.0060, mirror=True),
        Bump("infraorbital", (0.0300, -0.0160), (0.0180, 0.0100), 0.0020, mirror=True),
        Bump("cheek", (0.0400, -0.0500), (0.0260, 0.0220), 0.0030, mirror=True),
        Bump("ala", (0.0125, -0.0330), (0.0085, 0.0075), 0.0100, mirror=True),
        Bump("alar_crease", (0.0185, -0.0330), (0.0045, 0.0080), -0.0015, mirror=True),
        Bump("muzzle", (0.0, -0.0590), (0.0420, 0.0330), 0.0070),
        Bump("philtrum", (0.0, -0.0460), (0.0030, 0.0070), -0.0008),
        Bump("philtral_column", (0.0045, -0.0465), (0.0020, 0.0065), 0.0006, mirror=True),
        Bump("mouth_corner", (0.0255, -0.0605), (0.0050, 0.0050), -0.0018, mirror=True),
        Bump("nasolabial", (0.0255, -0.0470), (0.0055, 0.0150), -0.0010, mirror=True),
        Bump("mentolabial_sulcus", (0.0, -0.0775), (0.0220, 0.0075), -0.0030),
        Bump("chin", (0.0, -0.0935), (0.0200, 0.0175), 0.0060),
        Bump("jaw_angle", (0.0560, -0.0720), (0.0180, 0.0200), 0.0020, mirror=True),
    )


# --------------------------------------------------------------------------
# The mesh
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class TemplateMesh:
    """A built template and the chart it came from.

    ``vertices``: float32 [N, 3] metres; ``faces``: int32 [F, 3] outward CCW.
    ``chart``: float64 [N, 2] ``(t, Y)`` of each vertex (after slit opening).
    ``slits``: name -> (upper-side vertex ids, lower-side vertex ids), each
    ordered from the corner nearer the subject's right (-X) to the other,
    corners included in both.
    ``landmark_vertices``: int32 [68] iBUG-68 order.
    """

    vertices: np.ndarray
    faces: np.ndarray
    chart: np.ndarray
    slits: dict[str, tuple[np.ndarray, np.ndarray]]
    landmark_vertices: np.ndarray


def _pchip(table: tuple[tuple[float, float], ...]) -> PchipInterpolator:
    """Monotone cubic through ``(x, y)`` pairs given in any order of ``x``."""
    xs, ys = np.asarray(sorted(table)).T
    return PchipInterpolator(xs, ys, extrapolate=True)


def _superellipse(t: np.ndarray, exponent: float) -> tuple[np.ndarray, np.ndarray]:
    """Unit superellipse at angle parameter ``t``: ``(sin-like, cos-like)``."""
    p = 2.0 / exponent
    return (np.sign(np.sin(t)) * np.abs(np.sin(t)) ** p,
            np.sign(np.cos(t)) * np.abs(np.cos(t)) ** p)


def _column_angles(spec: TemplateSpec) -> np.ndarray:
    """Column angles ``t``, evenly spaced in arc length on the reference
    section, denser on the midline (``centre_density``)."""
    g = spec.grid
    a, b = _pchip(spec.half_width)(0.0), _pchip(spec.front_depth)(0.0)
    t_fine = np.linspace(-g.t_max, g.t_max, 20001)
    sx, cz = _superellipse(t_fine, spec.section_exponent)
    seg = np.hypot(np.diff(a * sx), np.diff(b * cz))
    arc = np.concatenate([[0.0], np.cumsum(seg)])
    arc = 2.0 * arc / arc[-1] - 1.0                                   # in [-1, 1]
    s = np.linspace(-1.0, 1.0, g.columns)
    c = g.centre_density
    warped = c * s + (1.0 - c) * s ** 3                               # monotone, denser at 0
    return np.interp(warped, arc, t_fine)


def _frontal_x(spec: TemplateSpec, t: np.ndarray, y: np.ndarray) -> np.ndarray:
    sx, _ = _superellipse(t, spec.section_exponent)
    return _pchip(spec.half_width)(y) * sx


def _slit_profile(tau: np.ndarray, peak: float) -> np.ndarray:
    """Almond profile on ``tau`` in [0, 1]: 0 at both corners, 1 at ``peak``."""
    tau = np.clip(tau, 0.0, 1.0)
    if peak <= 0.0:  # symmetric lens about the midline (the mouth: tau = |X| / corner)
        return np.clip(1.0 - tau ** 2, 0.0, None) ** 0.75
    p = peak / (1.0 - peak)
    raw = tau ** p * (1.0 - tau)
    return (raw / (peak ** p * (1.0 - peak))) ** 0.75


def _feature_rows(spec: TemplateSpec, absx: np.ndarray) -> dict[str, np.ndarray]:
    """Heights (Y) of the named row curves at frontal |X|."""
    e = spec.eyes
    ramp = smoothstep((absx - e.inner_x) / (e.outer_x - e.inner_x))
    eye = spec.eye_line_inner + (spec.eye_line_outer - spec.eye_line_inner) * ramp
    eye = eye + 0.004 * smoothstep((absx - e.outer_x) / 0.02)
    m = spec.mouth
    mouth = spec.mouth_line - spec.mouth_corner_drop * smoothstep(absx / m.outer_x)
    mouth = mouth + spec.mouth_row_rise * smoothstep((absx - m.outer_x) / spec.mouth_row_rise_band)
    rel = np.clip(absx / spec.side_x, 0.0, 1.2)
    jaw = spec.jaw_chin + spec.jaw_rise * rel ** spec.jaw_rise_power
    below = spec.below_jaw_centre + (spec.below_jaw_side - spec.below_jaw_centre) * rel
    top = spec.hairline_centre - spec.hairline_drop * smoothstep((rel - 0.3) / 0.8)
    return {"bottom": jaw - below, "jaw": jaw, "mouth": mouth, "eye": eye, "top": top}


def _row_fractions(n: int, cluster_end: float) -> np.ndarray:
    """``n + 1`` fractions from 0 to 1, denser towards 1 when ``cluster_end > 1``."""
    s = np.linspace(0.0, 1.0, n + 1)
    return 1.0 - (1.0 - s) ** cluster_end


def _grid(spec: TemplateSpec):
    """Chart coordinates of the grid and the row index of each knot curve."""
    g = spec.grid
    t = _column_angles(spec)
    # frontal |X| of each column on the eye line is close enough for the row curves
    absx = np.abs(_frontal_x(spec, t, np.zeros_like(t)))
    rows = _feature_rows(spec, absx)
    segments = [
        ("bottom", "jaw", _row_fractions(g.rows_below_jaw, 1.0)),
        ("jaw", "mouth", _row_fractions(g.rows_jaw_to_mouth, 1.35)),
        ("mouth", "eye", _mouth_to_eye_fractions(g.rows_mouth_to_eyes)),
        ("eye", "top", 1.0 - _row_fractions(g.rows_eyes_to_top, 1.2)[::-1]),
    ]
    # towards the ears the anatomical curves give way to evenly spread rows
    total = sum(len(seg[2]) - 1 for seg in segments)
    side = smoothstep((absx - spec.even_rows_from) / spec.even_rows_band)
    start = 0
    for lo, _, frac in segments:
        even = rows["bottom"] + (rows["top"] - rows["bottom"]) * start / total
        rows[lo] = rows[lo] + side * (even - rows[lo])
        start += len(frac) - 1
    ys = []
    knot_rows = {}
    for k, (lo, hi, frac) in enumerate(segments):
        knot_rows[lo] = sum(len(s[2]) - 1 for s in segments[:k])
        use = frac if k == len(segments) - 1 else frac[:-1]
        ys.append(rows[lo][None, :] + use[:, None] * (rows[hi] - rows[lo])[None, :])
    knot_rows["top"] = sum(len(s[2]) - 1 for s in segments)
    y = np.concatenate(ys, axis=0)                                    # [rows, cols]
    return t, y, knot_rows


def _mouth_to_eye_fractions(n: int) -> np.ndarray:
    """Rows between the mouth and the eyes: dense at both ends (lips, lids)."""
    s = np.linspace(0.0, 1.0, n + 1)
    return s - 0.11 * np.sin(2.0 * np.pi * s) / (2.0 * np.pi) * 2.0


def _triangulate(upper_index: list[list[int]], lower_index: list[list[int]]) -> np.ndarray:
    """Split each grid quad into two CCW triangles.

    The quad between rows ``i`` and ``i + 1`` takes its bottom edge from row
    ``i``'s upper-side ids and its top edge from row ``i + 1``'s lower-side
    ids (the copies, where that row is a slit row). Diagonals are mirrored
    about the midline so the topology is left-right symmetric.
    """
    faces = []
    n_rows, n_cols = len(upper_index), len(upper_index[0])
    centre = (n_cols - 1) // 2
    for i in range(n_rows - 1):
        for j in range(n_cols - 1):
            a, b = upper_index[i][j], upper_index[i][j + 1]
            c, d = lower_index[i + 1][j + 1], lower_index[i + 1][j]
            if j < centre:
                faces += [(a, b, c), (a, c, d)]
            else:
                faces += [(a, b, d), (b, c, d)]
    return np.asarray(faces, dtype=np.int32)


def build_template(spec: TemplateSpec | None = None) -> TemplateMesh:
    """Build the SynthFace template mesh from ``spec`` (defaults: the shipped face)."""
    spec = spec or TemplateSpec()
    t, y, knot = _grid(spec)
    n_rows, n_cols = y.shape
    ids = np.arange(n_rows * n_cols).reshape(n_rows, n_cols)
    chart_t = np.broadcast_to(t, (n_rows, n_cols)).reshape(-1).copy()
    chart_y = y.reshape(-1).copy()

    # --- slits: choose corner columns and duplicate the interior of the row
    slits: dict[str, tuple[list[int], list[int]]] = {}
    lower_index = [list(r) for r in ids]          # index used by triangles below a slit row
    upper_index = [list(r) for r in ids]          # index used by triangles above it
    extra_t, extra_y = [], []
    next_id = n_rows * n_cols

    def nearest_col(x: float, row: int) -> int:
        return int(np.argmin(np.abs(_frontal_x(spec, t, y[row]) - x)))

    slit_cols = {}
    for name, row, s in (
        ("eye_right", knot["eye"], spec.eyes),
        ("eye_left", knot["eye"], spec.eyes),
        ("mouth", knot["mouth"], spec.mouth),
    ):
        if name == "mouth":
            j0, j1 = nearest_col(-s.outer_x, row), nearest_col(s.outer_x, row)
        elif name == "eye_right":
            j0, j1 = nearest_col(-s.outer_x, row), nearest_col(-s.inner_x, row)
        else:
            j0, j1 = nearest_col(s.inner_x, row), nearest_col(s.outer_x, row)
        slit_cols[name] = (row, j0, j1)
        upper, lower = [], []
        for j in range(j0, j1 + 1):
            if j in (j0, j1):
                upper.append(ids[row, j])
                lower.append(ids[row, j])
                continue
            lower_index[row][j] = next_id
            extra_t.append(t[j])
            extra_y.append(y[row, j])
            upper.append(ids[row, j])
            lower.append(next_id)
            next_id += 1
        slits[name] = (upper, lower)

    chart_t = np.concatenate([chart_t, extra_t])
    chart_y = np.concatenate([chart_y, extra_y])

    # quads between rows i and i+1: bottom edge uses the row's upper-side ids,
    # top edge uses row i+1's lower-side ids (copies where row i+1 is a slit row)
    faces = _triangulate(upper_index, lower_index)

    # --- open the slits: vertical lens displacement in the chart
    chart_y = _open_slits(spec, t, chart_t, chart_y, slit_cols, slits, ids)

    vertices = _embed(spec, chart_t, chart_y)
    mesh = TemplateMesh(
        vertices=vertices.astype(np.float32),
        faces=faces,
        chart=np.stack([chart_t, chart_y], axis=1),
        slits={k: (np.asarray(up, np.int32), np.asarray(lo, np.int32)) for k, (up, lo) in slits.items()},
        landmark_vertices=np.zeros(68, np.int32),
    )
    from models.face.landmarks import place_landmarks  # local: landmarks need the mesh

    return TemplateMesh(
        vertices=mesh.vertices, faces=mesh.faces, chart=mesh.chart, slits=mesh.slits,
        landmark_vertices=place_landmarks(mesh, spec),
    )


def _open_slits(spec: TemplateSpec, t: np.ndarray, chart_t: np.ndarray, chart_y: np.ndarray,
                slit_cols: dict[str, tuple[int, int, int]], slits: dict, ids: np.ndarray) -> np.ndarray:
    """Open each slit: push the vertices above it up and those below it down,
    by its lens profile along the slit, fading with height over ``falloff``
    (a cubic fade, whose steepest compression of the rows is 1.5 / falloff)."""
    y = chart_y.copy()
    every = np.arange(len(chart_y))
    for name, (row, j0, j1) in slit_cols.items():
        s = spec.mouth if name == "mouth" else spec.eyes
        upper, lower = slits[name]
        t0, t1 = t[j0], t[j1]
        in_cols = (chart_t > min(t0, t1)) & (chart_t < max(t0, t1))
        if name == "mouth":
            tau = np.abs(chart_t) / abs(t1)
        elif name == "eye_right":
            tau = (chart_t - t1) / (t0 - t1)        # 0 at the inner corner (j1), 1 at the outer (j0)
        else:
            tau = (chart_t - t0) / (t1 - t0)
        up = s.open_up * _slit_profile(tau, s.peak_up)
        down = s.open_down * _slit_profile(tau, s.peak_down)
        row_y = np.interp(chart_t, t, chart_y[ids[row]])
        above = ((chart_y >= row_y) & ~np.isin(every, lower)) | np.isin(every, upper)
        d = np.clip(np.abs(chart_y - row_y) / s.falloff, 0.0, 1.0)
        fade = 1.0 - d * d * (3.0 - 2.0 * d)
        y = y + np.where(in_cols, np.where(above, up, -down) * fade, 0.0)
    return y


def _embed(spec: TemplateSpec, chart_t: np.ndarray, chart_y: np.ndarray) -> np.ndarray:
    """Chart ``(t, Y)`` -> 3D points: superellipse section plus radial features."""
    a = _pchip(spec.half_width)(chart_y)
    b = _pchip(spec.front_depth)(chart_y)
    sx, cz = _superellipse(chart_t, spec.section_exponent)
    x, z = a * sx, b * cz
    radial = np.stack([x, np.zeros_like(x), z], axis=1)
    radial /= np.linalg.norm(radial, axis=1, keepdims=True)
    h = feature_height(spec, x, chart_y)
    # the surface turns under the jaw: retract the radius below the jaw line
    absx = np.abs(x)
    jaw = _feature_rows(spec, absx)["jaw"]
    # the surface turns under the jaw: below the jaw line the rows run back
    # towards the neck (mostly backwards, a little inwards), rising slightly,
    # so the underside of the chin faces down and hides behind the jaw line
    under = np.clip(jaw - chart_y, 0.0, None)
    height = np.where(under > 0.0, jaw + spec.under_jaw_rise * under, chart_y)
    pts = np.stack([x, height, z], axis=1) + h[:, None] * radial
    retract = spec.under_jaw_slope * soft_plus(jaw - chart_y, spec.under_jaw_round)
    back = radial * np.array([spec.under_jaw_inward, 0.0, 1.0])
    back /= np.linalg.norm(back, axis=1, keepdims=True)
    return pts - retract[:, None] * back


def feature_height(spec: TemplateSpec, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Radial height (m) of all facial features at frontal ``(X, Y)``."""
    h = np.zeros_like(x)
    for b in spec.bumps:
        h += b.evaluate(x, y)
    h += _nose(spec, x, y)
    h += _lips(spec, x, y)
    h += _eyes(spec, x, y)
    return h


def _eyes(spec: TemplateSpec, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Socket and lids: ``smoothmax(socket, lids over the eyeball)`` per eye."""
    socket = spec.eye_socket.evaluate(x, y)
    cx, cy = spec.eyeball_centre
    r = spec.eyeball_radius
    out = socket.copy()
    for sx in (-cx, cx):
        d2 = ((x - sx) ** 2 + (y - cy) ** 2) / (r * r)
        ball = spec.eye_socket.height + spec.eyeball_height * np.sqrt(np.clip(1.0 - d2, 0.0, None))
        k = spec.eye_blend
        near = d2 < 4.0
        blended = 0.5 * (out + ball + np.sqrt((out - ball) ** 2 + k * k))
        out = np.where(near, blended, out)
    return out


def _nose(spec: TemplateSpec, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    height = np.clip(_pchip(spec.nose_height)(y), 0.0, None)
    ys = np.asarray([p[0] for p in spec.nose_height])
    height = np.where((y > ys.max()) | (y < ys.min()), 0.0, height)
    width = _pchip(spec.nose_half_width)(y)
    profile = bump((x / width) ** 2) ** 0.7
    return height * profile


#: half width (m) of the dip in the upper lip's border on the midline
CUPID_DIP_HALF_WIDTH = 0.006


def _lips(spec: TemplateSpec, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    m = spec.mouth
    absx = np.abs(x)
    mouth_y = spec.mouth_line - spec.mouth_corner_drop * smoothstep(absx / m.outer_x)
    across = np.clip(1.0 - (absx / (m.outer_x + 0.002)) ** 2, 0.0, None) ** 1.2
    # upper vermilion: from the slit up to the Cupid's bow border
    bow = spec.upper_lip_border - spec.cupid_dip * bump((x / CUPID_DIP_HALF_WIDTH) ** 2)
    border_up = mouth_y + (bow - mouth_y) * np.sqrt(across)
    tu = (y - mouth_y) / np.maximum(border_up - mouth_y, 1e-4)
    upper = spec.upper_lip_pout * across * np.sin(np.pi * np.clip(tu, 0, 1) ** 0.8) ** 1.5
    # lower vermilion: from the slit down to its border
    border_lo = mouth_y + (spec.lower_lip_border - mouth_y) * np.sqrt(across)
    tl = (mouth_y - y) / np.maximum(mouth_y - border_lo, 1e-4)
    lower = spec.lower_lip_pout * across * np.sin(np.pi * np.clip(tl, 0, 1) ** 0.9) ** 1.5
    # both lips curl in where they meet
    curl = -spec.lip_curl * (1.0 - smoothstep(np.abs(y - mouth_y) / spec.lip_curl_band)) * across
    return upper + lower + curl
