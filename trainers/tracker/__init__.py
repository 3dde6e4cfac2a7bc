"""The cascaded-regression face tracker's trainer: SynthFace renders with ground truth
(``renders``), the cascade's training (``train``) and its evaluation on held-out
renders (``evaluate``)."""
