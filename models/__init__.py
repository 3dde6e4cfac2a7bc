"""facecast models: everything needed at inference time.

The face model (template, topology, 68 landmarks, morphable bases), the
geometry it stands on, the networks and their checkpoints. Nothing in this
package reads datasets, runs training loops or parses command lines.
"""
