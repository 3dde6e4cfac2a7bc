"""Face-model calibration and realism: SynthFace's shapes against a scanned
face model (ICT-FaceKit), and the realism figures of ``facecast bench face``."""
