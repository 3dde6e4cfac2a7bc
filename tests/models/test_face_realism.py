"""SynthFace against real faces: dlib's 68 landmarks on skimage's astronaut
photograph, and the CoMA/FLAME reference head."""

from __future__ import annotations

import numpy as np

from models.face import synthface_template

#: the issue's bound: mean 2D landmark error at most 10 % of the outer-eye-corner distance
ASTRONAUT_BOUND = 0.10


def test_astronaut_landmarks_within_ten_percent_of_eye_distance():
    from trainers.bench.face import astronaut_error

    result = astronaut_error(synthface_template().landmark_points())
    print(f"astronaut: mean error {result['mean_share']:.1%} of the outer-eye distance "
          f"(max {result['max_share']:.1%})")
    assert result["mean_share"] <= ASTRONAUT_BOUND


def test_proportions_against_the_flame_reference(reference_dir):
    from trainers.bench.face import reference_calibration

    result = reference_calibration(reference_dir)
    print(f"FLAME reference: landmarks {result['landmark_mean_mm']:.1f} mm, "
          f"surface {result['surface_mean_mm']:.1f} mm after similarity alignment")
    assert result["landmark_mean_mm"] < 10.0
    assert result["surface_mean_mm"] < 5.0
    assert 0.9 < result["alignment_scale"] < 1.1        # the same size as a real head
    assert np.isfinite(list(result.values())).all()
