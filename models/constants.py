"""Named tolerances and unit conversions, each defined once.

Lengths are metres everywhere in meshes; reported errors are millimetres.
"""

#: metres to millimetres, for every reported error.
MM_PER_M = 1000.0

#: below this length (metres) a vector is treated as zero when normalising.
EPS_LENGTH = 1e-12

#: a displacement below this (metres) counts as "does not move" (0.01 mm).
EPS_DISPLACEMENT = 1e-5

#: the number of iBUG-68 landmarks.
N_LANDMARKS = 68
