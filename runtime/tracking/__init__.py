"""Live face tracking, as stages: frame sources, the tracking pipeline
(detect -> landmarks -> fit -> cascade -> filter -> sink) and its filters."""
