"""4D face data: the SynthFace generator, the CoMA-layout reader, the fast
cache both write, and the papers' train/test splits."""
