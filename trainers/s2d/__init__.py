"""S2D-Dec training, its baselines, and the paper's Tables 1 and 2 on SynthFace."""
