"""Open a ``generate`` stream and print, once a second, its frame rate, its
latency (engine tick -> arrival here) and the frames dropped; close it at the end.

    facecast serve                                  # in another terminal (or facecast demo)
    python clients/examples/print_frames.py --label high_smile --seconds 5
    python clients/examples/print_frames.py --url ws://127.0.0.1:8765   # the same over WebSocket
"""

import argparse
import statistics
import time

from clients.python import FacecastClient


def main() -> None:
    p = argparse.ArgumentParser(description="Print per-second figures of one generated stream.")
    p.add_argument("--url", default="tcp://127.0.0.1:5555", help="tcp://HOST:PORT (ZeroMQ data) or ws://HOST:PORT")
    p.add_argument("--control", help="ZeroMQ control endpoint (default: the data port + 1)")
    p.add_argument("--label", default="high_smile", help="expression label (`facecast stats --cmd models` lists them)")
    p.add_argument("--seconds", type=float, default=5.0, help="how long to run (default 5)")
    args = p.parse_args()

    # control=True means "the data port + 1"; over ws:// commands share the WebSocket
    with FacecastClient(args.url, control=args.control or True) as fc:
        print(f"connected to {fc.url}: runtime {fc.info['version']}, protocol v{fc.info['v']}")
        sid = fc.open(args.label, loop=True)       # a looping clip: neutral -> apex -> neutral
        fc.subscribe([sid])                        # only this stream (another may be open, e.g. the demo's)
        end = time.monotonic() + args.seconds
        window_start, latencies, frames = time.monotonic(), [], 0
        for frame in fc.frames():                  # blocks; TimeoutError after fc.timeout without a frame
            frames += 1
            latencies.append(frame.latency_ms)     # the runtime's clock vs ours: same machine here
            now = time.monotonic()
            if now - window_start >= 1.0 or now >= end:
                print(f"{sid} {frame.label}: {frames / (now - window_start):5.1f} fps, latency p50 "
                      f"{statistics.median(latencies):.1f} ms max {max(latencies):.1f} ms, "
                      f"dropped {fc.state.dropped_in(sid)} (seq {frame.seq}, t {frame.t:.2f} s, {frame.enc})")
                window_start, latencies, frames = now, [], 0
            if now >= end:
                break
        reply = fc.close_stream(sid)               # an `end` (reason "closed") follows on the data plane
        print(f"closed {sid}: the engine built {reply['frames']} frames, skipped {reply['dropped']}; "
              f"this client received {fc.received}, missed {fc.dropped}")


if __name__ == "__main__":
    main()
