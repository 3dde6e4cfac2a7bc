"""SynthFace v2's anatomical mechanisms: what skin does that a sum of
blendshapes cannot.

Three mechanisms act on a mesh after its blendshape fields are added, each
with a physical cause and each nonlinear in its weight:

- ``EyelidClosure``: a blink slides the lids over the eyeball. Each lid
  vertex turns about a horizontal axis through its eyeball's centre, which
  keeps its distance from the ball; the upper and lower margins end on one
  meeting curve (point by point, the inner margin coming out to the outer
  one's radius, never in), computed from where the margins are in the frame
  being made (a squint or a wide eye first moves them), so ``eyeBlink = 1``
  closes the eye whatever else is active. No lid vertex ever enters an
  eyeball (``rest_on_eyeballs``).
- ``JawMotion``: ``jawOpen`` turns the mandible about the jaw joints and,
  increasingly as it opens, glides it forward and down (the condyle leaves
  its socket along the articular eminence: rotation first, translation
  later). Each vertex follows with its skinning weight, as a rotation by a
  share of the angle (no shrinking, as linear blending of positions would).
- ``Lips``: a lip rolls in by turning about an axis at its root (its near
  part as one piece, the turn fading slowly enough around the axis that the
  lip bends without folding); ``mouthClose`` brings the lower lip up to the
  upper one (and forward, where the jaw swung it back) as far as the jaw
  opened them, whatever the face's proportions; and the lips cannot pass
  through each other: where one rises past the other, both are pushed back
  to the contact line, sharing the overlap, the push fading into each lip
  without letting its rows overtake each other.

All three are built once per template from its boundary loops (the eye and
mouth slits) and its 68 landmarks, so they work on any template whose eyes
and mouth are openings in its skin (SynthFace's mask); a template without
such an opening runs without that mechanism (``SynthFaceV2.missing_mechanisms``).
Geometry in world units (metres) unless a name says ``xi`` (normalised face
coordinates, ``models.face.frame``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from models.face.anchors import Anchors
from models.face.slits import lid_step, mouth_step
from models.face.topology import FaceTemplate
from models.geometry.boundary import boundary_loops
from models.geometry.rotation import rotate_about_axis
from models.geometry.smooth import smoothstep

#: a slit's boundary loop must have its centroid this close (normalised) to the slit's landmarks
SLIT_SEARCH = 0.12
#: eyeball radius as a share of the outer-eye-corner distance (12.5 mm for 90 mm, as ``accessories``)
EYEBALL_RADIUS_SHARE = 0.0125 / 0.09
#: the eye zone the lids move in: beyond the corners (x) and above/below the eye centre (y), normalised
LID_ZONE = (0.12, 0.26, 0.2)
#: how far (normalised) above the upper margin, and below the lower margin, the lid follows a blink
UPPER_LID_HEIGHT = 0.13
LOWER_LID_HEIGHT = 0.07
#: beyond a corner, the lid's share of the motion fades over this width (normalised)
CORNER_FADE = 0.06
#: share of the eye's opening closed by the lower lid in a blink (the rest by the upper lid)
BLINK_LOWER_SHARE = 0.2
#: gap (m, on a face with a 90 mm outer-eye-corner distance) left between closed lids
LID_CLEARANCE = 0.0002
#: width (normalised) of the band along a margin where blendshape fields are held off a
#: closing lid (the mechanism alone places the margins)
MARGIN_BAND = 0.04

#: the lips region the mechanisms act in (beyond the corners, above/below the mouth line; normalised)
LIP_ZONE = (0.15, 0.45)
#: ... of which the contact acts in this much (beyond the corners, and depth from a margin)
CONTACT_BEYOND_CORNER = 0.03
CONTACT_DEPTH = 0.3
#: mouthClose's upper-lip part is held off within this distance (normalised) of a corner
CLOSE_CORNER = 0.15
#: share of a lip overlap the upper lip gives way (the lower lip, on the mobile jaw, the rest)
UPPER_LIP_SHARE = 0.3
#: a lip's near part (normalised depth from its margin): it moves as one piece in a contact
LIP_PLATEAU = 0.04
#: least depth (normalised) past the near part over which the contact's move fades
LIP_BODY = 0.07
#: ... and at least this many times the compression (keeps the profile's slope under 1)
BODY_PER_PUSH = 2.5
#: gap (m, on a 90 mm face) the contact leaves between the lips
LIP_CLEARANCE = 0.00005
#: mouthClose's lower-lip part is scaled in the near part, fading out over this depth (normalised)
CLOSE_FADE = 0.4
#: ... and never more than this (a face whose lips would need more closes less)
CLOSE_MAX_SCALE = 1.5
#: a column where mouthClose lifts the lower margin less than this (m per m of face size) keeps it whole
TRAVEL_FLOOR = 0.01
#: smoothing passes, along the mouth, of how far forward the lower lip comes to seal
CLOSE_DEPTH_SMOOTHING = 4
#: most that scale changes from one column of the mouth to the next
CLOSE_SLOPE = 0.25
#: columns next to each mouth corner where the contact compares a column with itself alone
CORNER_COLUMNS = 3
#: passes that spread a column's contact move to its neighbours
COLUMN_SMOOTHING = 3
#: a rolling lip turns as one piece up to this angle (rad) about its axis from its margin,
#: then less and less over CURL_FADE_PER_ANGLE times the curl's own angle (more than 1: no fold)
CURL_FULL_ANGLE = 0.6
CURL_FADE_PER_ANGLE = 1.5
#: ... and fades out over this width (normalised) towards each mouth corner
CURL_CORNER = 0.12
#: the reference face size the metre constants above are given for
REFERENCE_SPAN = 0.09


# ---------------------------------------------------------------- slits
@dataclass(frozen=True)
class Slit:
    """A slit's two margins, each ordered by increasing normalised x.

    ``upper``/``lower``: vertex ids ``int [U]``/``[L]``; ``upper_x``/``lower_x``
    their rest x (normalised, strictly increasing).
    """

    upper: np.ndarray
    lower: np.ndarray
    upper_x: np.ndarray
    lower_x: np.ndarray

    def bracket(self, x: np.ndarray, upper: bool) -> tuple[np.ndarray, np.ndarray]:
        """For points at rest x ``[M]``: the node before each ``int [M]`` and the
        share ``[M]`` of the way to the next, along the upper or lower margin
        (clamped at the corners)."""
        nodes = self.upper_x if upper else self.lower_x
        a = np.clip(np.searchsorted(nodes, x) - 1, 0, len(nodes) - 2)
        t = np.clip((x - nodes[a]) / (nodes[a + 1] - nodes[a]), 0.0, 1.0)
        return a, t

    def at(self, vertices: np.ndarray, bracket: tuple[np.ndarray, np.ndarray], upper: bool) -> np.ndarray:
        """Margin points ``[B, M, 3]`` of meshes ``[B, N, 3]`` at bracketed x."""
        ids = self.upper if upper else self.lower
        a, t = bracket
        p0 = vertices[:, ids[a]]
        p1 = vertices[:, ids[a + 1]]
        return p0 + t[None, :, None] * (p1 - p0)


def find_slit(template: FaceTemplate, xi: np.ndarray, centre: np.ndarray, corners: tuple[np.ndarray, np.ndarray],
              name: str) -> Slit:
    """The slit whose boundary loop surrounds ``centre`` (normalised), split into
    upper and lower margins at the loop vertices nearest ``corners``.

    Raises ``ValueError`` naming ``name`` and the template when no such loop
    exists (a template whose eyes or mouth are closed surfaces).
    """
    skin = template.skin
    best, best_d = None, np.inf
    for loop in boundary_loops(template.faces):
        if len(loop) < 6 or not skin[loop].all():
            continue
        d = np.linalg.norm(xi[loop, :2].mean(axis=0) - centre[:2])
        if d < best_d:
            best, best_d = loop, d
    if best is None or best_d > SLIT_SEARCH:
        raise ValueError(f"template {template.name!r} has no opening at the {name} (no boundary loop within "
                         f"{SLIT_SEARCH} of its landmarks); SynthFace v2's {name} needs one")
    loop = best
    i0 = int(np.argmin(np.linalg.norm(xi[loop, :2] - corners[0][:2], axis=1)))
    i1 = int(np.argmin(np.linalg.norm(xi[loop, :2] - corners[1][:2], axis=1)))
    rolled = np.roll(loop, -i0)
    k = (i1 - i0) % len(loop)
    one, two = rolled[:k + 1], np.concatenate([rolled[k:], rolled[:1]])
    if xi[one, 1].mean() < xi[two, 1].mean():
        one, two = two, one
    upper, lower = _by_x(one, xi), _by_x(two, xi)
    return Slit(upper=upper, lower=lower, upper_x=xi[upper, 0], lower_x=xi[lower, 0])


def _by_x(chain: np.ndarray, xi: np.ndarray) -> np.ndarray:
    """A margin's vertices ordered by x, ties (several vertices at one x) dropped
    to the first, so the margin is a function of x."""
    order = chain[np.argsort(xi[chain, 0], kind="stable")]
    x = xi[order, 0]
    keep = np.concatenate([[True], np.diff(x) > 1e-9])
    return order[keep]


# ---------------------------------------------------------------- eyelids
@dataclass(frozen=True)
class _Lid:
    vertices: np.ndarray          #: int [M] lid vertex ids
    upper: np.ndarray             #: bool [M] on the upper lid
    follow: np.ndarray            #: [M] share of the margin's motion the vertex makes
    at_upper: tuple               #: brackets along the upper margin
    at_lower: tuple               #: brackets along the lower margin


class EyelidClosure:
    """Blinks as lids sliding over the eyeballs (see the module docstring)."""

    def __init__(self, template: FaceTemplate, xi: np.ndarray, normals_xi: np.ndarray, anchors: Anchors) -> None:
        self.slits: dict[int, Slit] = {}
        self.lids: dict[int, _Lid] = {}
        held = np.zeros(template.n_vertices)
        skin = template.skin
        for side in (-1, 1):
            inner, outer = anchors.eye_corners(side)
            slit = find_slit(template, xi, anchors.eye_centre(side), (inner, outer),
                             "left eye" if side > 0 else "right eye")
            lo_x, hi_x = min(inner[0], outer[0]), max(inner[0], outer[0])
            c = anchors.eye_centre(side)
            x, y = xi[:, 0], xi[:, 1]
            zone = ((x > lo_x - LID_ZONE[0]) & (x < hi_x + LID_ZONE[0]) & (y < c[1] + LID_ZONE[1])
                    & (y > c[1] - LID_ZONE[2]) & skin)
            ids = np.flatnonzero(zone)
            xs = np.clip(x[ids], lo_x, hi_x)
            beyond = np.clip(np.maximum(lo_x - x[ids], x[ids] - hi_x), 0.0, None)
            upper = lid_step(xi[ids], normals_xi[ids], anchors, side) > 0.5
            up_y = np.interp(xs, slit.upper_x, xi[slit.upper, 1])
            lo_y = np.interp(xs, slit.lower_x, xi[slit.lower, 1])
            rise = np.where(upper, (y[ids] - up_y) / UPPER_LID_HEIGHT, (lo_y - y[ids]) / LOWER_LID_HEIGHT)
            follow = (1.0 - smoothstep(rise)) * (1.0 - smoothstep(beyond / CORNER_FADE))
            on_margin = np.isin(ids, np.concatenate([slit.upper, slit.lower]))
            follow[on_margin] = 1.0
            band = np.where(upper, y[ids] - up_y, lo_y - y[ids])
            held[ids] = np.maximum(held[ids], (1.0 - smoothstep(band / MARGIN_BAND))
                                   * (1.0 - smoothstep(beyond / CORNER_FADE)))
            keep = follow > 0.0
            ids, upper, follow, xs = ids[keep], upper[keep], follow[keep], xs[keep]
            self.slits[side] = slit
            self.lids[side] = _Lid(vertices=ids, upper=upper, follow=follow,
                                   at_upper=slit.bracket(xs, True), at_lower=slit.bracket(xs, False))
        #: [N] in [0, 1]: how much of a blendshape field a vertex takes near a lid margin
        #: (0 on the margins: the closure alone places them)
        self.field_gate = 1.0 - held

    def eyeballs(self, vertices: np.ndarray, axes: np.ndarray, scale: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Eyeball centres ``[B, 2, 3]`` (subject's right, left) and radii ``[B]``
        of neutral meshes ``[B, N, 3]`` with face frames ``axes [B, 3, 3]`` and
        sizes ``scale [B]``: a sphere of radius ``EYEBALL_RADIUS_SHARE * scale``
        behind the middle of the eye's opening, as far forward as it goes with
        every lid vertex outside it by ``LID_CLEARANCE`` (the lids rest on it)."""
        radius = EYEBALL_RADIUS_SHARE * np.asarray(scale, dtype=np.float64)
        clear = radius + LID_CLEARANCE * scale / REFERENCE_SPAN
        back = axes[:, :, 2]                                                   # the face's forward axis
        centres = []
        for side in (-1, 1):
            slit, lid = self.slits[side], self.lids[side]
            middle = vertices[:, np.concatenate([slit.upper, slit.lower])].astype(np.float64).mean(axis=1)
            d = vertices[:, lid.vertices].astype(np.float64) - middle[:, None]
            # |d + t * back| >= clear for t >= the larger root of t^2 + 2 t (d . back) + |d|^2 - clear^2
            along = np.einsum("bmc,bc->bm", d, back)
            disc = along ** 2 - (np.einsum("bmc,bmc->bm", d, d) - clear[:, None] ** 2)
            root = np.where(disc > 0.0, -along + np.sqrt(np.clip(disc, 0.0, None)), -np.inf)
            depth = np.clip(root.max(axis=1), 0.0, None)
            centres.append(middle - depth[:, None] * back)
        return np.stack(centres, axis=1), radius

    def rest_on_eyeballs(self, vertices: np.ndarray, centres: np.ndarray, scale: np.ndarray) -> None:
        """Push any lid vertex of meshes ``[B, N, 3]`` that lies inside its
        eyeball (a field moved it there) out to the ball's surface plus half
        ``LID_CLEARANCE``, in place: lids slide over the eye, never into it (a
        neutral lid rests a whole clearance off, so it is never moved)."""
        clear = (EYEBALL_RADIUS_SHARE + 0.5 * LID_CLEARANCE / REFERENCE_SPAN) * scale          # [B]
        for k, side in enumerate((-1, 1)):
            ids = self.lids[side].vertices
            d = vertices[:, ids].astype(np.float64) - centres[:, k, None]
            dist = np.linalg.norm(d, axis=-1)
            inside = dist < clear[:, None]
            if np.any(inside):
                out = centres[:, k, None] + d * (clear[:, None] / np.maximum(dist, 1e-12))[..., None]
                vertices[:, ids] = np.where(inside[..., None], out, vertices[:, ids]).astype(vertices.dtype)

    def apply(self, vertices: np.ndarray, blink: np.ndarray, centres: np.ndarray, axes: np.ndarray,
              scale: np.ndarray) -> None:
        """Close the lids of meshes ``[B, N, 3]`` in place.

        Args:
            blink: ``[B, 2]`` eyeBlink weights (subject's right, left).
            centres: ``[B, 2, 3]`` eyeball centres.
            axes: ``[B, 3, 3]`` columns: the face's x (the turning axis), y, z.
            scale: ``[B]`` face sizes (outer-eye-corner distances).
        """
        for k, side in enumerate((-1, 1)):
            w = blink[:, k]
            rows = np.flatnonzero(w > 0.0)
            if len(rows) == 0:
                continue
            slit, lid = self.slits[side], self.lids[side]
            v = vertices[rows]
            c = centres[rows, k][:, None, :]
            ey, ez = axes[rows, :, 1][:, None, :], axes[rows, :, 2][:, None, :]
            ex = axes[rows, :, 0][:, None, :]

            def polar(p):                               # axial, radius, angle about the eyeball's axis
                d = p - c
                a = (d * ex).sum(axis=-1)
                radial = d - a[..., None] * ex
                return a, np.linalg.norm(radial, axis=-1), np.arctan2((radial * ey).sum(axis=-1),
                                                                      (radial * ez).sum(axis=-1))

            a_up, r_up, phi_up = polar(slit.at(v, lid.at_upper, True))
            a_lo, r_lo, phi_lo = polar(slit.at(v, lid.at_lower, False))
            # the meeting curve, the lids kept LID_CLEARANCE apart
            half_gap = 0.5 * LID_CLEARANCE * scale[rows, None] / REFERENCE_SPAN / np.maximum(r_up, r_lo)
            phi_meet = phi_lo + BLINK_LOWER_SHARE * (phi_up - phi_lo)
            r_meet = np.maximum(r_up, r_lo)                 # the inner margin comes out: nothing goes into the eye
            up = lid.upper[None]
            d_phi = np.where(up, phi_meet + half_gap - phi_up, phi_meet - half_gap - phi_lo)
            d_r = np.where(up, r_meet - r_up, r_meet - r_lo)
            a_meet = a_lo + BLINK_LOWER_SHARE * (a_up - a_lo)    # along the axis too: the margins meet point by point
            d_a = np.where(up, a_meet - a_up, a_meet - a_lo)
            share = lid.follow[None] * w[rows, None]
            a, r, phi = polar(v[:, lid.vertices])
            a = a + share * d_a
            r = r + share * d_r
            phi = phi + share * d_phi
            moved = c + a[..., None] * ex + r[..., None] * (np.sin(phi)[..., None] * ey + np.cos(phi)[..., None] * ez)
            vertices[rows[:, None], lid.vertices[None, :]] = moved.astype(vertices.dtype)


# ---------------------------------------------------------------- jaw
class JawMotion:
    """``jawOpen`` as a rotation about the jaw joints plus a condylar glide.

    ``angle`` (rad at weight 1) and ``glide_xi`` (normalised displacement of
    the mandible at weight 1, in the face frame) are calibrated parameters;
    the glide grows as the square of the weight (rotation first).
    """

    def __init__(self, weight: np.ndarray, angle: float, glide_xi: np.ndarray) -> None:
        self.weight = np.asarray(weight, dtype=np.float32)          #: [N] skinning weight in [0, 1]
        self.vertices = np.flatnonzero(self.weight > 0.0)
        self.angle = float(angle)
        self.glide_xi = np.asarray(glide_xi, dtype=np.float64)

    def apply(self, vertices: np.ndarray, w: np.ndarray, hinge: np.ndarray, rotation: np.ndarray,
              scale: np.ndarray) -> None:
        """Open the jaws of meshes ``[B, N, 3]`` in place.

        Args:
            w: ``[B]`` jawOpen weights.
            hinge: ``[B, 2, 3]`` the jaw joints (subject's right, then left).
            rotation: ``[B, 3, 3]`` face frames (columns x, y, z).
            scale: ``[B]`` face sizes.
        """
        rows = np.flatnonzero(w != 0.0)
        if len(rows) == 0:
            return
        jaw = self.vertices
        share = self.weight[None, jaw]
        turned = rotate_about_axis(vertices[rows][:, jaw], hinge[rows],
                                   (w[rows] * self.angle)[:, None] * share)
        glide = np.einsum("bij,j->bi", rotation[rows], self.glide_xi) * (scale[rows] * w[rows] ** 2)[:, None]
        vertices[rows[:, None], jaw[None, :]] = (turned + share[..., None] * glide[:, None, :]).astype(vertices.dtype)

    def turn(self, vectors: np.ndarray, w: np.ndarray, hinge: np.ndarray) -> None:
        """Turn displacement ``vectors [B, N, 3]`` in place as ``apply`` turns the
        points they hang on (the glide moves points, not their displacements)."""
        rows = np.flatnonzero(w != 0.0)
        if len(rows) == 0:
            return
        jaw = self.vertices
        origin = np.zeros_like(hinge[rows])
        origin[:, 1] = hinge[rows, 1] - hinge[rows, 0]                      # the axis through the origin
        angle = (w[rows] * self.angle)[:, None] * self.weight[None, jaw]
        vectors[rows[:, None], jaw[None, :]] = rotate_about_axis(vectors[rows][:, jaw], origin, angle)

    def linear_part(self, hinge: np.ndarray, w: float = 1.0) -> np.ndarray:
        """``[M, 3, 3]``: the rotation each jaw vertex makes at weight ``w`` (one
        face, ``hinge [2, 3]``); the calibration undoes it on rest-space fields."""
        axis = hinge[1] - hinge[0]
        axis = axis / np.linalg.norm(axis)
        angles = w * self.angle * self.weight[self.vertices].astype(np.float64)
        k = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
        s, c = np.sin(angles)[:, None, None], np.cos(angles)[:, None, None]
        return np.eye(3)[None] + s * k[None] + (1.0 - c) * (k @ k)[None]


# ---------------------------------------------------------------- lips
class Lips:
    """The lips' two mechanisms: rolling in, and contact (module docstring).

    **Curl** (``mouthRollUpper``/``mouthRollLower``): a lip's vermilion turns in
    about an axis along the mouth at the lip's root, ``curl[k] = (height,
    depth, angle)`` from its margin (normalised, face frame; radians at weight
    1; ``k`` 0 upper, 1 lower). The near part (within ``CURL_FULL`` of the
    margin) turns as one piece, deeper rows less, so the lip bends without
    folding; calibrated on the reference's roll shapes.

    **Contact**: the mouth is cut into columns, one per node of the upper
    margin. In each column, the lowest point of the upper lip's near part
    (within ``LIP_PLATEAU`` of its margin) must stay above the highest point
    of the lower lip's near part. Where it does not, the two lips share the
    overlap, the upper lip ``UPPER_LIP_SHARE`` of it and the lower lip (on the
    mobile jaw) the rest: each lip's near part moves away as one piece (its
    rows keep their order), the move fading deeper in the lip over at least
    ``LIP_BODY`` and at least ``BODY_PER_PUSH`` times the move (a slope under
    one: rows never overtake each other). The columns' moves are spread to
    their neighbours so that columns do not shear.
    """

    def __init__(self, template: FaceTemplate, xi: np.ndarray, normals_xi: np.ndarray, anchors: Anchors,
                 curl: np.ndarray | None = None) -> None:
        left, right = anchors.point(48), anchors.point(54)
        self.slit = find_slit(template, xi, anchors.mouth_centre, (left, right), "mouth")
        x, y = xi[:, 0], xi[:, 1]
        lo_x, hi_x = self.slit.upper_x[0], self.slit.upper_x[-1]
        line = anchors.mouth_line(np.clip(x, lo_x, hi_x))
        zone = ((x > lo_x - LIP_ZONE[0]) & (x < hi_x + LIP_ZONE[0]) & (np.abs(y - line) < LIP_ZONE[1])
                & template.skin)
        ids = np.flatnonzero(zone)
        xs = np.clip(x[ids], lo_x, hi_x)
        upper = mouth_step(xi[ids], normals_xi[ids], anchors) < 0.5
        up_y = np.interp(xs, self.slit.upper_x, xi[self.slit.upper, 1])
        lo_y = np.interp(xs, self.slit.lower_x, xi[self.slit.lower, 1])
        depth = np.clip(np.where(upper, y[ids] - up_y, lo_y - y[ids]), 0.0, None)
        depth[np.isin(ids, np.concatenate([self.slit.upper, self.slit.lower]))] = 0.0
        beyond = np.clip(np.maximum(lo_x - x[ids], x[ids] - hi_x), 0.0, None)
        self.corners = np.intersect1d(self.slit.upper, self.slit.lower)        #: vertices both lips share
        corners = np.isin(ids, self.corners)
        keep = ~corners
        self.vertices = ids[keep]
        self.upper = upper[keep]
        self.depth = depth[keep]                                              #: normalised depth from the margin
        self.near = self.depth <= LIP_PLATEAU                                 #: in the lip's near part
        beyond = beyond[keep]
        #: [M] 1 between the corners, fading beyond them: for the contact and the curl, and (wider) for
        #: mouthClose, whose lift is held off the corners and must fade out over more skin
        self.side_fade = 1.0 - smoothstep(beyond / CONTACT_BEYOND_CORNER)
        self.close_side_fade = 1.0 - smoothstep(beyond / LIP_ZONE[0])
        #: [M] the contact acts on the lips and the skin just around them, not on the chin below
        self.in_contact = (self.depth <= CONTACT_DEPTH) & (beyond <= CONTACT_BEYOND_CORNER)
        xs = xs[keep]
        self.column = np.clip(np.round(np.interp(xs, self.slit.upper_x, np.arange(len(self.slit.upper))))
                              .astype(np.int64), 0, len(self.slit.upper) - 1)
        self.at_upper = self.slit.bracket(xs, True)
        self.at_lower = self.slit.bracket(xs, False)
        #: where the lower margin is below each node of the upper margin (brackets)
        self.margin_below = self.slit.bracket(self.slit.upper_x, False)
        self.curl_params = None if curl is None else np.asarray(curl, dtype=np.float64)
        #: [M]: how much of its lip's curl a vertex may make along the mouth (none at the
        #: corners, which do not roll)
        inside = np.clip(np.minimum(xs - lo_x, hi_x - xs), 0.0, None)
        self.corner_fade = smoothstep(inside / CURL_CORNER) * self.side_fade
        #: [M]: 1 at the corners, 0 well inside: where mouthClose's upper-lip part is held off
        self.at_corner = 1.0 - smoothstep(inside / CLOSE_CORNER)

    # ---------------------------------------------------------------- curl
    def curl_pivots(self, neutral: np.ndarray, axes: np.ndarray, scale: np.ndarray
                    ) -> tuple[np.ndarray, np.ndarray]:
        """For neutral meshes ``[B, N, 3]`` with face frames ``axes [B, 3, 3]`` and
        sizes ``[B]``: each lip vertex's point on its curl axis ``[B, M, 3]`` and
        the share of the curl it makes ``[B, M]``.

        The share is a function of the vertex's angle about the axis, counted
        from the margin towards the lip's root: 1 up to ``CURL_FULL_ANGLE``,
        then falling linearly over ``CURL_FADE_PER_ANGLE`` times the curl's
        angle. Turning points about an axis by an angle that changes by less
        than the angle between them maps the lip's cross-section one to one:
        the lip bends, it never folds.
        """
        if self.curl_params is None:
            return np.zeros((len(neutral), len(self.vertices), 3)), np.zeros((len(neutral), len(self.vertices)))
        margin = np.where(self.upper[None, :, None], self.slit.at(neutral, self.at_upper, True),
                          self.slit.at(neutral, self.at_lower, False))
        k = np.where(self.upper, 0, 1)
        ey, ez = axes[:, None, :, 1], axes[:, None, :, 2]
        offset = self.curl_params[k, 0][None, :, None] * ey + self.curl_params[k, 1][None, :, None] * ez
        pivots = margin + offset * scale[:, None, None]

        def angle(p):
            d = p - pivots
            return np.arctan2((d * ey).sum(-1), (d * ez).sum(-1))

        turn = np.angle(np.exp(1j * (angle(neutral[:, self.vertices]) - angle(margin))))
        fade = CURL_FADE_PER_ANGLE * np.abs(self.curl_params[k, 2])[None]
        follow = np.clip(1.0 - (np.abs(turn) - CURL_FULL_ANGLE) / fade, 0.0, 1.0) * self.corner_fade[None]
        return pivots, follow

    def curl(self, vertices: np.ndarray, roll: np.ndarray, pivots: np.ndarray, follow: np.ndarray,
             axes: np.ndarray) -> None:
        """Roll the lips of meshes ``[B, N, 3]`` in place: ``roll [B, 2]`` the
        weights of mouthRollUpper and mouthRollLower; ``pivots`` and ``follow``
        from ``curl_pivots``."""
        if self.curl_params is None:
            return
        w = np.where(self.upper[None], roll[:, :1], roll[:, 1:2])                # [B, M]
        rows = np.flatnonzero(np.any(w > 0.0, axis=1))
        if len(rows) == 0:
            return
        k = np.where(self.upper, 0, 1)
        angle = w[rows] * self.curl_params[k, 2][None] * follow[rows]            # [b, M]
        axis = axes[rows, :, 0][:, None, :]                                      # [b, 1, 3]
        p = vertices[rows][:, self.vertices].astype(np.float64) - pivots[rows]
        cos, sin = np.cos(angle)[..., None], np.sin(angle)[..., None]
        turned = p * cos + np.cross(axis, p) * sin + axis * (p * axis).sum(-1, keepdims=True) * (1.0 - cos)
        vertices[rows[:, None], self.vertices[None, :]] = (pivots[rows] + turned).astype(vertices.dtype)

    # ---------------------------------------------------------------- contact
    def _gaps(self, vertices: np.ndarray, up: np.ndarray, across: np.ndarray, near: np.ndarray
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Per column ``[B, C]``: the upper lip's lowest and the lower lip's
        highest near point (along ``up``); and each lip vertex's column and
        height ``[B, M]``."""
        b = len(vertices)
        lip = vertices[:, self.vertices].astype(np.float64)
        height = np.einsum("bmc,bc->bm", lip, up)
        cols = self._columns(vertices, lip, across)
        rows = np.broadcast_to(np.arange(b)[:, None], near.shape)
        near_up, near_lo = near & self.upper[None], near & ~self.upper[None]
        lowest = np.full((b, len(self.slit.upper)), np.inf)
        highest = np.full((b, len(self.slit.upper)), -np.inf)
        np.minimum.at(lowest, (rows[near_up], cols[near_up]), height[near_up])
        np.maximum.at(highest, (rows[near_lo], cols[near_lo]), height[near_lo])
        # a triangle spans neighbouring columns: each column answers for its neighbours too, but
        # near the corners, where the mouth line bends, a neighbour's height is not this column's
        lo_pad = np.pad(lowest, ((0, 0), (1, 1)), constant_values=np.inf)
        hi_pad = np.pad(highest, ((0, 0), (1, 1)), constant_values=-np.inf)
        middle = slice(CORNER_COLUMNS, len(self.slit.upper) - CORNER_COLUMNS)
        lowest[:, middle] = np.minimum(np.minimum(lo_pad[:, :-2], lo_pad[:, 2:]), lowest)[:, middle]
        highest[:, middle] = np.maximum(np.maximum(hi_pad[:, :-2], hi_pad[:, 2:]), highest)[:, middle]
        return lowest, highest, cols, height

    def close(self, vertices: np.ndarray, closing: np.ndarray, share: np.ndarray, up: np.ndarray,
              across: np.ndarray, forward: np.ndarray, scale: np.ndarray) -> None:
        """Add ``mouthClose``'s displacement ``closing [B, N, 3]`` (already turned
        with the jaw) to meshes ``[B, N, 3]`` in place, so that the lower lip
        closes ``share [B]`` (mouthClose / jawOpen) of the gap the jaw opened:
        per column of the mouth, its lower lip's part of the shape is scaled
        to that (its near part fully, fading to unscaled over ``CLOSE_FADE``
        below it), whatever the face's proportions (the corners, and the upper
        lip's part near them, are held off the same way), and it comes forward by
        ``share`` of how far the jaw swung it behind the upper lip. The shape's
        direction stays the calibrated one; how far the lip travels adapts.
        ``up``, ``across``, ``forward [B, 3]``: each face's axes."""
        rows = np.flatnonzero(share > 0.0)
        if len(rows) == 0:
            return
        v, c = vertices[rows], closing[rows]
        u = up[rows]
        clearance = LIP_CLEARANCE * scale[rows] / REFERENCE_SPAN
        # per column (a node of the upper margin): the lower margin below it, how far apart they
        # are and how far mouthClose would lift the lower margin there
        upper_h = np.einsum("bnc,bc->bn", v[:, self.slit.upper].astype(np.float64), u)
        lower_at = self.slit.at(v, self.margin_below, False).astype(np.float64)
        lift_at = self.slit.at(c, self.margin_below, False).astype(np.float64)
        room = upper_h - np.einsum("bnc,bc->bn", lower_at, u) - clearance[:, None]
        lift = np.einsum("bnc,bc->bn", lift_at, u)
        fit = np.where(lift > TRAVEL_FLOOR * scale[rows, None],
                       share[rows, None] * room / np.maximum(lift, 1e-12), 1.0)
        fit = np.clip(fit, 0.0, CLOSE_MAX_SCALE)
        fit[:, [0, -1]] = 0.0                          # the corners are shared by both lips: already closed
        for _ in range(len(self.slit.upper)):          # gentle along the mouth, never past a column's need:
            padded = np.pad(fit, ((0, 0), (1, 1)), mode="edge")          # the envelope of slope CLOSE_SLOPE
            fit = np.minimum(fit, np.minimum(padded[:, :-2], padded[:, 2:]) + CLOSE_SLOPE)
        fade = (1.0 - smoothstep((self.depth - LIP_PLATEAU) / CLOSE_FADE)) * self.close_side_fade
        factor = np.ones(c.shape[:2])
        lower = ~self.upper
        cols = self._columns(v, v[:, self.vertices].astype(np.float64), across[rows])
        col_fit = np.take_along_axis(fit, cols, axis=1)
        factor[:, self.vertices[lower]] = 1.0 - (1.0 - col_fit[:, lower]) * fade[None, lower]
        # the corners, and the upper lip near them, stay: the shape's smooth field carries some of the
        # lower lip's lift across the corners, which closing the mouth must not open
        factor[:, self.vertices[self.upper]] = 1.0 - (fade * self.at_corner)[None, self.upper]
        factor[:, self.corners] = 0.0
        v = v + factor[..., None] * c
        # and in depth: the jaw swung the lower lip back; it comes forward to seal against the upper
        fwd = forward[rows]
        ahead = (np.einsum("bnc,bc->bn", v[:, self.slit.upper].astype(np.float64), fwd)
                 - np.einsum("bnc,bc->bn", self.slit.at(v, self.margin_below, False).astype(np.float64), fwd))
        ahead[:, [0, -1]] = 0.0
        for _ in range(CLOSE_DEPTH_SMOOTHING):
            padded = np.pad(ahead, ((0, 0), (1, 1)), mode="edge")
            ahead = 0.25 * padded[:, :-2] + 0.5 * ahead + 0.25 * padded[:, 2:]
        step = share[rows, None] * np.take_along_axis(ahead, cols, axis=1)[:, lower] * fade[None, lower]
        v[:, self.vertices[lower]] += step[..., None] * fwd[:, None, :]
        vertices[rows] = v.astype(vertices.dtype)

    def _columns(self, vertices: np.ndarray, lip: np.ndarray, across: np.ndarray) -> np.ndarray:
        """The column ``int [B, M]`` each lip vertex is in now: the upper-margin
        node nearest to it along the mouth (``across [B, 3]``), where the margin
        is now (a lip that slid sideways is compared with what it slid under)."""
        nodes = np.einsum("bnc,bc->bn", vertices[:, self.slit.upper].astype(np.float64), across)
        x = np.einsum("bmc,bc->bm", lip, across)
        order = np.argsort(nodes, axis=1)
        sorted_nodes = np.take_along_axis(nodes, order, axis=1)
        cols = np.empty(x.shape, dtype=np.int64)
        for r in range(len(x)):
            k = np.clip(np.searchsorted(sorted_nodes[r], x[r]), 1, len(sorted_nodes[r]) - 1)
            nearer = np.where(x[r] - sorted_nodes[r, k - 1] < sorted_nodes[r, k] - x[r], k - 1, k)
            cols[r] = order[r, nearer]
        return cols

    def rest_overlap(self, neutral: np.ndarray, axes: np.ndarray, scale: np.ndarray) -> np.ndarray:
        """What ``contact`` would resolve on neutral meshes ``[B, N, 3]`` (their
        lips as they rest, near the corners closer than the clearance) ``[B, C]``:
        the contact leaves a face's rest alone and acts on what goes beyond it."""
        near = np.broadcast_to(self.near, (len(neutral), len(self.vertices)))
        lowest, highest, _, _ = self._gaps(neutral, axes[:, :, 1], axes[:, :, 0], near)
        overlap = highest - lowest + LIP_CLEARANCE * (scale / REFERENCE_SPAN)[:, None]
        return np.where(np.isfinite(overlap), np.clip(overlap, 0.0, None), 0.0)

    def contact(self, vertices: np.ndarray, up: np.ndarray, across: np.ndarray, scale: np.ndarray,
                curled: np.ndarray | None = None, rest: np.ndarray | None = None) -> None:
        """Resolve lip overlap of meshes ``[B, N, 3]`` in place; ``up [B, 3]`` and
        ``across [B, 3]`` are each face's up and left axes, ``scale [B]`` its
        size (m); ``curled [B, M]`` (optional) marks lip vertices a roll has
        turned in, which then count as part of their lip's near part; ``rest
        [B, C]`` what ``rest_overlap`` found on each face's neutral."""
        b = len(vertices)
        near = np.broadcast_to(self.near, (b, len(self.vertices)))
        if curled is not None:
            near = near | curled
        near = near & self.in_contact[None]
        lowest, highest, cols, _ = self._gaps(vertices, up, across, near)
        near_up, near_lo = near & self.upper[None], near & ~self.upper[None]
        unit = scale / REFERENCE_SPAN
        overlap = highest - lowest + LIP_CLEARANCE * unit[:, None]
        overlap = np.where(np.isfinite(overlap), overlap, 0.0)
        if rest is not None:
            overlap = overlap - rest
        overlap = np.clip(overlap, 0.0, None)
        overlap[:, [0, -1]] = 0.0                      # the corners themselves are shared by both lips
        if not np.any(overlap > 0.0):
            return
        for _ in range(COLUMN_SMOOTHING):             # neighbours: the larger move, then a gentle average
            padded = np.pad(overlap, ((0, 0), (1, 1)), mode="edge")
            overlap = np.maximum(overlap, 0.5 * (padded[:, :-2] + padded[:, 2:]))
        share = np.where(self.upper, UPPER_LIP_SHARE, 1.0 - UPPER_LIP_SHARE)[None]
        move = share * np.take_along_axis(overlap, cols, axis=1)               # [B, M] m, each lip
        body = np.maximum(LIP_BODY * scale[:, None], BODY_PER_PUSH * move)
        # the fade starts where the near part ends (each lip's deepest near vertex)
        reach = np.where(self.upper[None], np.max(np.where(near_up, self.depth[None], 0.0), axis=1, keepdims=True),
                         np.max(np.where(near_lo, self.depth[None], 0.0), axis=1, keepdims=True))
        depth = np.where(near, 0.0, np.clip(self.depth[None] - reach, 0.0, None)) * scale[:, None]
        follow = np.clip(1.0 - depth / body, 0.0, None) ** 2 * (self.side_fade * self.in_contact)[None]
        signed = np.where(self.upper[None], move, -move) * follow
        vertices[:, self.vertices] += (signed[..., None] * up[:, None, :]).astype(vertices.dtype)
