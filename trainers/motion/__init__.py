"""Motion3DGAN's trainers: SRVF data, the WGAN-GP, the LSTM baseline, the
expression classifier, the paper's Table 3 and the ``facecast train/eval/bench
motion`` commands.

    data        the Motion3DGAN split of a data folder as SRVF curves
    gan         WGAN-GP on the tangent space at the reference point
    baseline    the deterministic LSTM generator
    classifier  LSTM (512) + fully connected: accuracy and FID features
    metrics     accuracy, FID, diversity
    evaluate    Table 3 (Gen-LM, Det-LM) and diversity
    det_lm      S2D-Dec round trip for the Det-LM row
    train       the one training run that makes the shipped checkpoints
    plots       training curves and trajectories (PNG)
    bench       runtime API timings
    cli         the commands
"""
