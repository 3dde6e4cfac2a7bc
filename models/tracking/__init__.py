"""Image-to-face tracking: face detection, 68 landmarks, model fitting."""
