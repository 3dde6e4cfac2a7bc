"""SynthFace v2: expressions as large, as wide and as personal as real ones.

The same template, identity space and landmarks as SynthFace v1 (meshes of
both share a topology id), with new expressions. A mesh from identity
``beta [B, 35]`` and ARKit weights ``w [B, 52]``:

1. neutral: ``V0 = T + sum_k beta_k D_k`` (v1's identity fields);
2. fields: each calibrated entry ``e`` of ``models.face.calibration`` (its
   shape's weight through the entry's response: linear, or saturating for a
   smile's cheek bulge and a cheek puff), styled per identity
   (``models.face.style``: region-wise gain and turn), plus v1's corrective
   products (a smile on an open jaw, a squinting smile); the sum ``E`` goes
   through the identity's Jacobian (its stretch over ``JACOBIAN_SCALE``),
   ``V = V0 + E + J(beta) E``, so a wider mouth smiles wider. The shapes made
   mainly by a mechanism (``MECHANISM_SHAPES``) add their leftover fields
   as they are: the person's own geometry varies them through the mechanism;
3. mechanisms (``models.face.mechanisms``): the lids slide over the
   eyeballs to close in a blink, the jaw turns about its joints and glides
   forward as it opens, and the lips stop at each other.

``mouthClose`` follows ARKit's meaning: it closes the lips of an open jaw,
so it acts only as far as ``jawOpen`` opened them (its weight is capped by
jawOpen's, and at equal weights the lips meet whatever the face's
proportions: ``Lips.close``); ``tongueOut`` moves nothing (no tongue on a
mask).

The fields come from ``synthface_v2.npz`` (fitted to ICT-FaceKit's
scan-derived shapes by ``facecast train face``); a template without eye or
mouth openings runs without the mechanism it cannot have, and says which
(``missing_mechanisms``).
"""

from __future__ import annotations

import numpy as np

from models.face.anchors import Anchors
from models.face.calibration import Calibration, response
from models.face.expression import ARKIT_NAMES, INDEX, jaw_weight
from models.face.frame import FaceFrame
from models.face.mechanisms import EyelidClosure, JawMotion, Lips
from models.face.model import IdentityParts, SynthFaceBase, identity_bases, jaw_hinge
from models.face.regions import front_weight, region_labels
from models.face.secondary import TERMS, secondary_fields
from models.face.style import N_STYLE, style_bases, style_matrices
from models.face.topology import FaceTemplate
from models.geometry.normals import vertex_normals

#: v1's corrective combinations kept in v2 (products of two weights: zero when
#: either shape is alone, so they leave each shape's own field as calibrated)
PRODUCT_TERMS = tuple(t for t in TERMS if len(t.drivers) == 2)
#: shapes with no anatomy on a mask
V2_ZERO_SHAPES = ("tongueOut",)
BLINKS = (INDEX["eyeBlinkRight"], INDEX["eyeBlinkLeft"])
#: the lips' rolls (upper, lower): a curl about each lip's root
ROLLS = ("mouthRollUpper", "mouthRollLower")
ROLL_INDEX = (INDEX["mouthRollUpper"], INDEX["mouthRollLower"])
#: shapes made mostly by a mechanism: each person's own geometry, not a style, varies them
MECHANISM_SHAPES = ("eyeBlinkLeft", "eyeBlinkRight", "jawOpen", "mouthClose") + ROLLS
#: the identity's stretch that blendshapes follow is measured over this distance
#: (normalised, ~10 mm): proportions, not the fine profile of a lip or a lid
JACOBIAN_SCALE = 0.12


class SynthFaceV2(SynthFaceBase):
    """SynthFace v2 on one template (a ``models.face.base.FaceModel``).

    Stateless after construction: every method is a pure function of its
    arguments and the precomputed bases.
    """

    name = "synthface-2"

    def __init__(self, template: FaceTemplate, calibration: Calibration | None = None) -> None:
        self.template = template
        self.calibration = calibration if calibration is not None else Calibration.load()
        self.face_mask = template.skin
        frame = template.frame
        v64 = template.vertices.astype(np.float64)
        xi = frame.to_local(v64)
        normals_xi = vertex_normals(v64, template.faces) @ frame.rotation
        anchors = Anchors(frame.to_local(template.landmark_points(v64)))
        skin = template.skin
        self.anchors = anchors
        self.regions = region_labels(xi, anchors, skin)
        self.identity_basis, self.identity_jacobian = identity_bases(template, xi, anchors, JACOBIAN_SCALE)
        self.hinge, self.hinge_identity = jaw_hinge(template, anchors, self.calibration.jaw_hinge)

        self.missing_mechanisms: list[str] = []
        self.eyelids = self._mechanism("eyelid closure", lambda: EyelidClosure(template, xi, normals_xi, anchors))
        self.lips = self._mechanism("lips", lambda: Lips(template, xi, normals_xi, anchors,
                                                         self.calibration.lip_curl))
        follow = self.calibration.jaw_weight(xi, normals_xi, anchors)
        if follow is None:
            follow = jaw_weight(xi, normals_xi, anchors, skin)
        self.jaw = JawMotion(follow * front_weight(xi[:, 2]) * skin, self.calibration.jaw_angle,
                             self.calibration.jaw_glide)

        cal = self.calibration
        fields = cal.fields(xi, normals_xi, anchors)                           # [E, N, 3] normalised
        self.entry_shape = np.array([INDEX[e.shape] for e in cal.entries], dtype=np.int64)
        self.entry_response = tuple(e.response for e in cal.entries)
        for e, entry in enumerate(cal.entries):
            if entry.shape.startswith("eyeBlink") and self.eyelids is not None:
                fields[e] *= self.eyelids.field_gate[:, None]
        fields *= (front_weight(xi[:, 2]) * skin)[None, :, None]
        self.fields = fields.astype(np.float32)                                # normalised
        self.field_world = frame.vectors_to_world(fields).astype(np.float32)  # metres
        n = template.n_vertices
        self._style = style_bases(fields, xi).reshape(len(cal.entries), N_STYLE * 3, n).astype(np.float32)
        # a mechanism's leftover field is not styled: it must stay matched to its mechanism
        self.entry_styled = np.array([e.shape not in MECHANISM_SHAPES for e in cal.entries], dtype=bool)
        #: (entry, upper lip?) of the rolls' leftover fields
        self.roll_entries = tuple((e, entry.shape == "mouthRollUpper") for e, entry in enumerate(cal.entries)
                                  if entry.shape in ROLLS)
        closes = [e for e, entry in enumerate(cal.entries) if entry.shape == "mouthClose"]
        self.close_entry = closes[0] if closes else None
        products = secondary_fields(xi, normals_xi, anchors, skin)
        keep = [TERMS.index(t) for t in PRODUCT_TERMS]
        self.product_world = frame.vectors_to_world(products[keep]).astype(np.float32)
        self.product_drivers = np.array([[INDEX[d] for d in t.drivers] for t in PRODUCT_TERMS], dtype=np.int64)

    def _mechanism(self, name: str, build):
        try:
            return build()
        except ValueError:
            self.missing_mechanisms.append(name)
            return None

    def _parts(self, beta: np.ndarray) -> "_IdentityParts":
        return _IdentityParts(self, beta)

    def effective_weights(self, weights: np.ndarray) -> np.ndarray:
        """The weights the mesh is made from: ``mouthClose`` capped by ``jawOpen``,
        the shapes with no anatomy zeroed. ``[B, 52]``."""
        w = np.array(weights, dtype=np.float32, copy=True)
        close, jaw = INDEX["mouthClose"], INDEX["jawOpen"]
        w[:, close] = np.minimum(w[:, close], w[:, jaw])
        for name in V2_ZERO_SHAPES:
            w[:, INDEX[name]] = 0.0
        return w

    # ------------------------------------------------------------------
    def _express(self, parts: "_IdentityParts", which: np.ndarray, weights: np.ndarray) -> np.ndarray:
        n = self.template.n_vertices
        w = self.effective_weights(weights)
        b = len(w)
        act = np.zeros((b, len(self.entry_shape)), dtype=np.float32)
        for e, (shape, kind) in enumerate(zip(self.entry_shape, self.entry_response)):
            act[:, e] = response(kind, w[:, shape])
        closing = None
        if self.close_entry is not None and self.lips is not None and np.any(act[:, self.close_entry] != 0.0):
            closing = act[:, self.close_entry, None, None] * self.field_world[self.close_entry][None]
            act = act.copy()
            act[:, self.close_entry] = 0.0
        act_all = act
        mech = act * ~self.entry_styled[None]          # mechanisms' leftovers: neither styled nor stretched
        act = act * self.entry_styled[None]
        own = (mech @ self.field_world.reshape(len(mech[0]), n * 3)).reshape(b, n, 3)
        if self.lips is not None and self.lips.curl_params is not None:
            # where a lip curls, the curl alone moves it: its roll's leftover field is held off there,
            # by this person's own share of the curl
            lips = self.lips
            follow = parts.curl_follow[which]                                  # [b, M]
            for e, upper in self.roll_entries:
                if np.any(act_all[:, e] != 0.0):
                    held = follow * (lips.upper == upper)[None] * act_all[:, e, None]
                    own[:, lips.vertices] -= held[..., None] * self.field_world[e][lips.vertices][None]
        lin = (act @ self.field_world.reshape(len(act[0]), n * 3)).reshape(b, n, 3)
        prod = w[:, self.product_drivers[:, 0]] * w[:, self.product_drivers[:, 1]]
        if np.any(prod != 0.0):
            lin += (prod @ self.product_world.reshape(len(PRODUCT_TERMS), n * 3)).reshape(b, n, 3)
        live = np.flatnonzero(np.any(act != 0.0, axis=0))
        if len(live):                                  # the identity's style, in the face frame
            m = parts.style[which][:, self.entry_shape[live]]                 # [b, E', K, 3, 3]
            coef = act[:, live, None, None, None] * m                          # [b, E', K, a, c]
            coef = coef.transpose(0, 3, 1, 2, 4).reshape(b * 3, -1)            # [(b a), (E' K c)]
            styled = (coef @ self._style[live].reshape(-1, n)).reshape(b, 3, n)
            frame = self.template.frame
            lin += (styled.transpose(0, 2, 1) @ (frame.rotation.T * frame.scale).astype(np.float32))
        jac = parts.jacobian[which]
        verts = parts.neutral[which] + lin + own
        for j in range(3):                             # verts += J(beta) . lin, per vertex
            verts += jac[..., j] * lin[..., j:j + 1]
        axes, scale = parts.axes[which], parts.scale[which]
        if self.eyelids is not None:
            self.eyelids.apply(verts, w[:, BLINKS], parts.eyeballs[which], axes, scale)
            self.eyelids.rest_on_eyeballs(verts, parts.eyeballs[which], scale)
        if self.lips is not None:
            self.lips.curl(verts, w[:, ROLL_INDEX], parts.curl_pivots[which], parts.curl_follow[which], axes)
        jaw = w[:, INDEX["jawOpen"]]
        self.jaw.apply(verts, jaw, parts.hinge[which], axes, scale)
        if closing is not None:
            self.jaw.turn(closing, jaw, parts.hinge[which])
            share = np.divide(w[:, INDEX["mouthClose"]], jaw, out=np.zeros(b, np.float32), where=jaw > 0.0)
            self.lips.close(verts, closing, share, axes[:, :, 1], axes[:, :, 0], axes[:, :, 2], scale)
        if self.lips is not None:
            rolled = np.where(self.lips.upper[None], w[:, ROLL_INDEX[0], None], w[:, ROLL_INDEX[1], None])
            curled = (parts.curl_follow[which] * rolled) > 0.0
            self.lips.contact(verts, axes[:, :, 1], axes[:, :, 0], scale, curled, parts.lip_rest[which])
        return verts


class _IdentityParts(IdentityParts):
    """What a group of identities contributes to every one of their frames:
    v1's (neutral, Jacobian, jaw joints), their face frames, styles, eyeballs
    and lips at rest."""

    def __init__(self, model: SynthFaceV2, beta: np.ndarray) -> None:
        super().__init__(model, beta)
        frame = FaceFrame.from_landmarks(model.template.landmark_points(self.neutral.astype(np.float64)))
        self.axes = frame.rotation                                             # [G, 3, 3]
        self.scale = frame.scale                                               # [G]
        self.style = style_matrices(beta, len(ARKIT_NAMES)).astype(np.float32)  # [G, 52, K, 3, 3]
        if model.eyelids is not None:
            self.eyeballs, self.eye_radius = model.eyelids.eyeballs(self.neutral, self.axes, self.scale)
        else:
            self.eyeballs, self.eye_radius = np.zeros((len(beta), 2, 3)), np.zeros(len(beta))
        if model.lips is not None:
            self.curl_pivots, self.curl_follow = model.lips.curl_pivots(self.neutral.astype(np.float64),
                                                                        self.axes, self.scale)
            self.lip_rest = model.lips.rest_overlap(self.neutral, self.axes, self.scale)
