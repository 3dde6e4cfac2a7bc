"""Record a few seconds of a stream and save them for offline use, as
``facecast record`` does: ``clients.record.take`` gathers the frames,
``clients.record.write`` writes ``.npz`` (the facecast recording format),
``.glb`` (glTF 2.0: a mesh with morph targets and their animation) or a
folder of PLY files (a path ending in ``/``).

    facecast serve                                  # in another terminal
    python clients/examples/save_take.py --label bareteeth --seconds 3 --out take.npz take.glb
    facecast view take.npz                          # play it back
"""

import argparse
import time
from pathlib import Path

from clients.python import FacecastClient
from clients.record import take, write


def main() -> None:
    p = argparse.ArgumentParser(description="Record a generated stream to .npz / .glb.")
    p.add_argument("--url", default="tcp://127.0.0.1:5555", help="tcp://HOST:PORT (ZeroMQ data) or ws://HOST:PORT")
    p.add_argument("--control", help="ZeroMQ control endpoint (default: the data port + 1)")
    p.add_argument("--label", default="high_smile", help="expression label of the stream opened")
    p.add_argument("--seconds", type=float, default=3.0, help="how long to record (default 3)")
    p.add_argument("--out", nargs="+", default=["take.npz"], help="files to write: .npz, .glb or DIR/")
    args = p.parse_args()

    # streams=[]: receive nothing until take() subscribes to the stream, once it plays
    with FacecastClient(args.url, control=args.control or True, streams=[]) as fc:
        # without loop, a generate clip (neutral -> apex -> neutral) ends by itself after `duration`
        sid = fc.open(args.label, duration=max(args.seconds, 0.5))
        while any(s["state"] == "preparing" for s in fc.list_streams() if s["stream"] == sid):
            time.sleep(0.05)                                   # baking its clip: it shows the neutral face
        recorded = take(fc, sid, args.seconds, show=False)    # every frame of sid, in order
        if recorded.ended is None:                             # the take stopped first: close the stream
            fc.close_stream(sid)
    print(f"took {len(recorded.frames)} frames of {recorded.stream} over {recorded.t[-1]:.2f} s "
          f"({recorded.dropped} dropped, stream {recorded.ended or 'still open at the end'})")
    for out in args.out:
        print("wrote", write(recorded, Path(out)))              # .glb: states its morph targets and max error


if __name__ == "__main__":
    main()
