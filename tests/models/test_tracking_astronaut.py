"""A real photograph: skimage's astronaut (Eileen Collins, NASA, public
domain). dlib finds the face and its 68 landmarks; the bilinear model fitted
to them puts its own projected landmarks close to dlib's."""

from __future__ import annotations

import numpy as np
import pytest

from models.face import synthface
from models.tracking.dlib68 import Dlib68
from models.tracking.fit import LandmarkFitter

#: mean and worst distance (pixels) allowed between the fitted model's landmarks and dlib's;
#: measured here: 1.3 and 3.1 px with the full model, the inter-ocular distance being 43 px
MEAN_PX, WORST_PX = 2.5, 6.0


@pytest.fixture(scope="module")
def astronaut():
    from skimage import data

    image = data.astronaut()
    dlib68 = Dlib68()
    faces = dlib68.detect(image, upsample=1)
    assert faces, "dlib found no face in the astronaut photograph"
    return image, faces[0], dlib68.landmarks(image, faces[0].box)


def test_dlib_finds_the_astronaut_s_face(astronaut):
    image, face, lm = astronaut
    left, top, right, bottom = face.box
    assert 150 < left < right < 290 and 50 < top < bottom < 190        # the face, top middle of the picture
    assert lm.shape == (68, 2) and (lm[:, 0] > left - 10).all() and (lm[:, 0] < right + 10).all()


def test_the_fitted_model_lands_on_dlib_s_landmarks(astronaut, tracking_model):
    image, face, lm = astronaut
    fitter = LandmarkFitter(tracking_model, synthface().template)
    fit = fitter.fit(lm)
    model_lm = fit.pose.project(fitter.landmarks3d(fit.identity, fit.expression, fit.landmark_ids))
    err = np.linalg.norm(model_lm - lm, axis=1)
    assert err.mean() < MEAN_PX and err.max() < WORST_PX, (err.mean(), err.max())
    yaw, pitch, roll = np.degrees(fit.pose.euler)
    assert abs(yaw) < 15 and abs(roll) < 15                            # she faces the camera
    assert np.isfinite(fitter.mesh(fit)).all()
