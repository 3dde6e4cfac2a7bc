"""What an engine client does per frame to drive a character's rig. A frame with
ARKit weights (header ``bs``: ``frame.weights``, ``frame.blendshapes``) drives
ARKit-named blendshapes through a name -> index table; a frame without them
(``generate``/``playlist`` streams send none today) drives the rig from the mesh:
here ``jawOpen`` from the gap between the inner lips' centres, landmarks 62 and
66 (0-based iBUG-68): 0 at the template's gap, 1 at ``--full-open-mm`` more.

    facecast serve                                  # in another terminal
    python clients/examples/blendshapes_to_rig.py --label mouth_open --seconds 5
"""

import argparse
import time

import numpy as np

from clients.python import FacecastClient
from runtime.protocol import BLENDSHAPE_NAMES

#: the character's blendshapes, in its own order; TO_RIG (built once): (index in the 52 weights, index in RIG)
RIG = ("jawOpen", "mouthSmileLeft", "mouthSmileRight", "eyeBlinkLeft", "eyeBlinkRight", "browInnerUp")
TO_RIG = [(BLENDSHAPE_NAMES.index(name), i) for i, name in enumerate(RIG) if name in BLENDSHAPE_NAMES]
UPPER_LIP, LOWER_LIP = 62, 66


def lip_gap(topo, vertices: np.ndarray) -> float:
    """Metres between landmarks 62 and 66 of a mesh, from the topology's barycentric embedding
    (``frame.landmarks`` holds the runtime's own landmarks when the stream sends ``lm``)."""
    corners = vertices[topo.faces[topo.landmark_faces[[UPPER_LIP, LOWER_LIP]]]]    # [2, 3 corners, xyz]
    upper, lower = np.einsum("lk,lkc->lc", topo.landmark_bary[[UPPER_LIP, LOWER_LIP]], corners)
    return float(np.linalg.norm(upper - lower))


def main() -> None:
    p = argparse.ArgumentParser(description="Drive a rig from blendshape weights or from the mesh.")
    p.add_argument("--url", default="tcp://127.0.0.1:5555", help="tcp://HOST:PORT (ZeroMQ data) or ws://HOST:PORT")
    p.add_argument("--control", help="ZeroMQ control endpoint (default: the data port + 1)")
    p.add_argument("--label", default="mouth_open", help="expression label of the stream opened")
    p.add_argument("--seconds", type=float, default=5.0, help="how long to run (default 5)")
    p.add_argument("--full-open-mm", type=float, default=20.0, help="gap beyond closed at jawOpen 1 (default 20)")
    args = p.parse_args()

    rig = np.zeros(len(RIG), np.float32)                # what the engine sets on its mesh each frame
    with FacecastClient(args.url, control=args.control or True) as fc:
        sid = fc.open(args.label, loop=True)
        fc.subscribe([sid])
        end, next_print, closed = time.monotonic() + args.seconds, 0.0, None
        for frame in fc.frames():
            if frame.weights is not None:               # ARKit weights: copy by name
                for src, dst in TO_RIG:                 # (frame.blendshapes["jawOpen"]: the same by name)
                    rig[dst] = frame.weights[src]
                how = "bs weights"
            else:                                       # vertices only: measure the face
                if closed is None:                      # calibrate once, on the topology's template
                    closed = lip_gap(frame.topology, frame.topology.template)
                gap = lip_gap(frame.topology, frame.vertices)
                rig[RIG.index("jawOpen")] = min(max(gap - closed, 0.0) * 1000 / args.full_open_mm, 1.0)
                how = f"vertices: inner-lip gap {gap * 1000:5.2f} mm"
            if time.monotonic() >= next_print:          # print 4 times a second, not every frame
                shown = ", ".join(f"{n} {w:.2f}" for n, w in zip(RIG, rig) if w > 0.005) or "neutral"
                print(f"{frame.stream} t {frame.t:5.2f} s {frame.label}: {how} -> {shown}")
                next_print = time.monotonic() + 0.25
            if time.monotonic() >= end:
                break
        fc.close_stream(sid)
        print(f"{fc.received} frames; inner-lip gap: template {closed * 1000:.2f} mm" if closed is not None
              else f"{fc.received} frames, all with bs weights")

if __name__ == "__main__":
    main()
