"""The asyncio client with two streams and a "render loop" that shows only the
newest frame of each: ``latest()`` drains what arrived and keeps one frame per
stream, so a loop slower than the streams (here 20 Hz against 60 fps) never
falls behind.

    facecast serve                                  # in another terminal
    python clients/examples/asyncio_two_streams.py --labels high_smile mouth_open --seconds 5
"""

import argparse
import asyncio

from clients.python import AsyncFacecastClient

RENDER_HZ = 20       # how often the "render loop" wakes up


async def run(args: argparse.Namespace) -> None:
    async with await AsyncFacecastClient.connect(args.url, control=args.control or True) as fc:
        sids = [await fc.open(label, loop=True) for label in args.labels]
        await fc.subscribe(sids)
        shown = {sid: 0 for sid in sids}
        loop = asyncio.get_running_loop()
        end = loop.time() + args.seconds
        next_print = loop.time() + 0.5
        while loop.time() < end:
            newest = await fc.latest(timeout=1 / RENDER_HZ)   # {stream: its newest MeshFrame}
            for sid, frame in newest.items():
                shown[sid] += 1                                # here an engine would upload frame.vertices
            if newest and loop.time() >= next_print:
                print("  ".join(f"{f.stream} {f.label} seq {f.seq} t {f.t:5.2f}" for f in newest.values()))
                next_print += 0.5
            await asyncio.sleep(1 / RENDER_HZ)                 # the rest of the frame's work
        for sid in sids:
            reply = await fc.close_stream(sid)
            print(f"{sid}: showed {shown[sid]} of the {reply['frames']} frames built; {fc.state.dropped_in(sid)} "
                  f"missing here (seq gaps), {reply['dropped']} skipped by the engine since it opened")
        print(f"received {fc.received} frames in all")


def main() -> None:
    p = argparse.ArgumentParser(description="Two streams, newest frame of each, with AsyncFacecastClient.")
    p.add_argument("--url", default="tcp://127.0.0.1:5555", help="tcp://HOST:PORT (ZeroMQ data) or ws://HOST:PORT")
    p.add_argument("--control", help="ZeroMQ control endpoint (default: the data port + 1)")
    p.add_argument("--labels", nargs=2, default=["high_smile", "mouth_open"], help="the two streams' labels")
    p.add_argument("--seconds", type=float, default=5.0, help="how long to run (default 5)")
    asyncio.run(run(p.parse_args()))


if __name__ == "__main__":
    main()
