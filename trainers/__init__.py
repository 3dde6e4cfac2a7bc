"""facecast trainers: datasets, losses, training loops, evaluation and benchmarks.

Everything here may import ``models``; nothing in ``models`` imports this.
"""
