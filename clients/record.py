"""``facecast record``: a live stream to a file, for offline use.

    facecast record --stream s000001 --seconds 10 --out take.npz   # the facecast recording format
    facecast record --stream s000001 --seconds 10 --out take.glb   # glTF 2.0 binary: mesh + animation
    facecast record --seconds 5 --out takes/                       # a folder: one PLY per frame + frames.csv

It connects like ``clients.python.FacecastClient`` (``--url``, ZeroMQ or
WebSocket), takes every frame of one stream (the named one, or the first
that sends) from its first frame for ``--seconds`` or until the stream
ends, and writes them. Ctrl-C stops early and still writes what came.

Times: a take's ``t`` is the stream's frame grid from the take's first
frame, ``(seq - seq0) / fps`` summed frame by frame (so it stays right
across a change of rate, and a frame lost on the way leaves its gap);
``wall`` is when the runtime sent each frame (Unix ns). Frames carry their
landmarks and, where the stream has them, the 52 blendshape weights.
"""

from __future__ import annotations

import argparse
import csv
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from clients.python import FacecastClient, FacecastError, MeshFrame, StreamEnd
from clients.python.core import DEFAULT_TIMEOUT, DEFAULT_URL
from runtime.protocol import BLENDSHAPE_NAMES

FORMATS = (".npz", ".glb")


@dataclass
class Take:
    """The frames of one stream, in order, and how the take ended."""

    stream: str
    frames: list[MeshFrame]
    dropped: int
    ended: str | None = None          #: the stream's end reason, when it ended during the take

    @property
    def t(self) -> np.ndarray:
        """Seconds from the first frame on the stream's frame grid (see the module docstring)."""
        seq = np.array([f.seq for f in self.frames], dtype=np.int64)
        fps = np.array([f.fps for f in self.frames], dtype=np.float64)
        return np.concatenate([[0.0], np.cumsum(np.diff(seq) / fps[1:])])

    def vertices(self) -> np.ndarray:
        return np.stack([f.vertices for f in self.frames]).astype(np.float32)

    def weights(self) -> np.ndarray | None:
        """``float32 [T, 52]`` when every frame has blendshape weights."""
        if any(f.weights is None for f in self.frames):
            return None
        return np.stack([f.weights for f in self.frames]).astype(np.float32)


def take(client: FacecastClient, stream: str | None, seconds: float, show: bool = True) -> Take:
    """Record ``seconds`` of ``stream`` (None: the first stream that sends).

    Raises:
        TimeoutError: no frame came for the client's timeout.
    """
    if stream is not None:
        client.subscribe([stream])
    frames: list[MeshFrame] = []
    ended, elapsed = None, 0.0
    bar = tqdm(total=round(seconds, 2), unit="s", desc="record", disable=not show, file=sys.stderr,
               bar_format="{l_bar}{bar}| {n:.1f}/{total:.1f} s [{elapsed}<{remaining}]")
    try:
        for event in client.events():
            if isinstance(event, StreamEnd):
                if event.stream == stream:
                    ended = event.reason
                    break
                continue
            if stream is None:                     # the first stream that sends is the one recorded
                stream = event.stream
                client.subscribe([stream])
            if event.stream != stream:
                continue
            if frames:
                elapsed += (event.seq - frames[-1].seq) / event.fps
            frames.append(event)
            bar.update(round(min(elapsed, seconds) - bar.n, 2))
            if elapsed >= seconds:
                break
    except KeyboardInterrupt:
        print("record: stopped; writing what came", file=sys.stderr)
    except TimeoutError:
        if not frames:
            raise TimeoutError(f"{client.url}: no frame of {stream or 'any stream'} within {client.timeout:g} s "
                               f"(is it open? `facecast stats` lists the streams)") from None
        ended = "silent"
    finally:
        bar.close()
    seqs = [f.seq for f in frames]
    dropped = sum(b - a - 1 for a, b in zip(seqs, seqs[1:]) if b > a + 1)
    return Take(stream or "", frames, dropped, ended)


def write(take_: Take, out: Path, tolerance_mm: float = 0.01) -> str:
    """Write a take as ``.npz``, ``.glb`` or a folder; returns what was written, in words."""
    if not take_.frames:
        raise ValueError("nothing to write: the take has no frames")
    suffix = out.suffix.lower()
    if suffix == ".npz":
        return _write_npz(take_, out)
    if suffix == ".glb":
        from clients.gltf import write_glb

        first = take_.frames[0]
        report = write_glb(out, take_.vertices(), first.faces, take_.t, take_.weights(), tolerance_mm=tolerance_mm)
        rig = "" if report.weights_rig_error_mm is None else \
            f", ARKit weights channel (fitted rig max error {report.weights_rig_error_mm:.3f} mm)"
        return (f"{out} ({report.bytes / 2 ** 20:.1f} MiB: {report.targets} morph targets, max error "
                f"{report.max_error_mm:.4f} mm{rig})")
    if suffix and not out.is_dir():
        raise ValueError(f"--out {out}: write .npz, .glb or a folder (a path ending in /)")
    return _write_folder(take_, out)


def _write_npz(take_: Take, out: Path) -> str:
    from clients.recording import Recording, save_recording
    from runtime.frames import LandmarkEmbedding, Topology

    first = take_.frames[0]
    topo = first.topology
    landmarks = [f.landmarks for f in take_.frames]
    labels = np.array([f.label or "" for f in take_.frames])
    recording = Recording(
        vertices=take_.vertices(),
        topology=Topology(faces=topo.faces.astype(np.int32), n_vertices=len(topo.template),
                          landmarks=LandmarkEmbedding(topo.landmark_faces.astype(np.int32),
                                                      topo.landmark_bary.astype(np.float32)),
                          name=topo.name, id=topo.id),
        t=take_.t,
        landmarks=None if any(lm is None for lm in landmarks) else np.stack(landmarks).astype(np.float32),
        labels=labels if labels.any() else None,
        subjects=np.full(len(take_.frames), take_.stream),
        weights=take_.weights(),
        fps=first.fps,
        wall=np.array([f.wall_ns for f in take_.frames], dtype=np.int64),
        seq=np.array([f.seq for f in take_.frames], dtype=np.int64),
    )
    save_recording(out, recording)
    return f"{out} ({out.stat().st_size / 2 ** 20:.1f} MiB)"


def _write_folder(take_: Take, out: Path) -> str:
    import trimesh

    out.mkdir(parents=True, exist_ok=True)
    faces = take_.frames[0].faces
    weights = take_.weights()
    with open(out / "frames.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        bs_columns = ["bs_" + n for n in BLENDSHAPE_NAMES] if weights is not None else []
        w.writerow(["file", "seq", "t", "wall_ns", "label"] + bs_columns)
        for i, (f, t) in enumerate(zip(take_.frames, take_.t)):
            name = f"frame_{i:06d}.ply"
            trimesh.Trimesh(f.vertices, faces, process=False).export(out / name)
            w.writerow([name, f.seq, f"{t:.6f}", f.wall_ns, f.label or ""]
                       + ([f"{x:.6f}" for x in weights[i]] if weights is not None else []))
    return f"{out}/ ({len(take_.frames)} PLY files and frames.csv)"


def cmd_record(args: argparse.Namespace) -> int:
    out = Path(args.out)
    if out.suffix and out.suffix.lower() not in FORMATS and not args.out.endswith("/"):
        print(f"facecast record: --out {out}: write .npz, .glb or a folder (a path ending in /)", file=sys.stderr)
        return 2
    if args.seconds <= 0:
        print("facecast record: --seconds must be positive", file=sys.stderr)
        return 2
    start = time.perf_counter()
    try:
        with FacecastClient(args.url, control=args.control or False, token=args.token,
                            timeout=args.timeout) as client:
            recorded = take(client, args.stream, args.seconds, show=not args.quiet)
        what = write(recorded, out, args.tolerance_mm)
    except (FacecastError, TimeoutError, ValueError, OSError) as exc:
        print(f"facecast record: {exc}", file=sys.stderr)
        return 2
    n = len(recorded.frames)
    end = f", stream {recorded.ended}" if recorded.ended else ""
    print(f"record: {n} frames of {recorded.stream} ({recorded.t[-1]:.2f} s, {recorded.dropped} dropped{end}) "
          f"-> {what} in {time.perf_counter() - start:.1f} s")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("record", help="record a live stream to .npz, .glb (glTF) or a folder of PLY files",
                       description="Record the frames of one live stream, with their timestamps.")
    p.add_argument("--url", default=DEFAULT_URL,
                   help=f"the runtime: tcp://HOST:PORT (ZeroMQ data) or ws://HOST:PORT (default {DEFAULT_URL})")
    p.add_argument("--stream", help="stream id to record (default: the first stream that sends)")
    p.add_argument("--seconds", type=float, default=10.0, help="how long, from the first frame (default 10)")
    p.add_argument("--out", required=True, help="take.npz, take.glb, or DIR/ (one PLY per frame + frames.csv)")
    p.add_argument("--control", help="ZeroMQ control endpoint, to check the stream and the protocol version "
                                     "(default: none, the data endpoint alone)")
    p.add_argument("--token", help="the runtime's --token, if it has one")
    p.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT,
                   help=f"seconds to connect, and without frames before giving up (default {DEFAULT_TIMEOUT:g})")
    p.add_argument("--tolerance-mm", type=float, default=0.01,
                   help="glb: largest vertex error of the compressed animation (default 0.01 mm)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_record)
