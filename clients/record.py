"""``facecast record``: a live stream to a file, for offline use.

    facecast record --stream s000001 --seconds 10 --out take.npz   # the facecast recording format
    facecast record --stream s000001 --seconds 10 --out take.glb   # glTF 2.0 binary: mesh + animation
    facecast record --seconds 5 --out takes/                       # a folder: one PLY per frame + frames.csv

It connects like ``clients.python.FacecastClient`` (``--url``, ZeroMQ or
WebSocket), takes every frame of one stream (the named one, or the first
that sends) from its first frame for ``--seconds`` or until the stream
ends, and writes them.

Stopping: SIGINT (Ctrl-C), SIGTERM and SIGHUP alike stop the take early and
write the frames received so far, with a note on stderr that says which
signal stopped it (``StopSignals`` holds them while it records and writes,
and gives the previous handlers back after). A second one aborts: nothing
is written and the output is left as it was.

Every output is written atomically: a temporary file (or folder) beside
``--out``, flushed to disk, then renamed over it. Whenever the process dies,
``--out`` holds the previous take or the complete new one, never a cut one
(a kill -9 mid-write may leave the hidden ``.NAME.*.part`` beside it). A
folder take replaces a previous one in two renames: killed between them,
the previous take is whole in ``.NAME.*.old``. A folder holding anything
but a take is never replaced (refused before recording).

Times: a take's ``t`` is the stream's frame grid from the take's first
frame, ``(seq - seq0) / fps`` summed frame by frame (so it stays right
across a change of rate, and a frame lost on the way leaves its gap);
``wall`` is when the runtime sent each frame (Unix ns). Frames carry their
landmarks and, where the stream has them, the 52 blendshape weights.
"""

from __future__ import annotations

import argparse
import csv
import io
import os
import re
import secrets
import shutil
import signal
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from clients.python import FacecastClient, FacecastError, MeshFrame, StreamEnd
from clients.python.core import DEFAULT_TIMEOUT, DEFAULT_URL
from clients.recording import fsync_folder
from runtime.protocol import BLENDSHAPE_NAMES

FORMATS = (".npz", ".glb")
#: the signals that stop a take early (those this platform has)
STOP_SIGNALS = tuple(getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name))
#: longest wait for a frame between two looks at whether a stop signal came (s)
STOP_POLL_S = 0.1
#: what a folder take holds; a folder holding anything else is not replaced
TAKE_FILES = re.compile(r"^(frames\.csv|frame_\d{6}\.ply)$")


class Stopped(KeyboardInterrupt):
    """A second stop signal (see ``StopSignals``): abort what is under way."""

    def __init__(self, signum: int) -> None:
        self.signum = signum
        self.name = signal.Signals(signum).name
        super().__init__(self.name)


class StopSignals:
    """SIGINT, SIGTERM and SIGHUP held while in its ``with`` block.

    The first one is only noted (``received``: its name; ``take`` looks at it
    between frames and stops); a second raises ``Stopped`` in the main
    thread. The previous handlers come back when the block ends. Outside the
    main thread (where Python cannot set handlers) it does nothing.
    """

    def __init__(self) -> None:
        self.received: str | None = None
        self.signum: int | None = None
        self._previous: dict[int, object] = {}

    def __enter__(self) -> "StopSignals":
        if threading.current_thread() is threading.main_thread():
            self._previous = {s: signal.signal(s, self._handle) for s in STOP_SIGNALS}
        return self

    def __exit__(self, *exc) -> None:
        for s, handler in self._previous.items():
            signal.signal(s, signal.SIG_DFL if handler is None else handler)
        self._previous = {}

    def _handle(self, signum: int, frame) -> None:
        if self.received is not None:
            raise Stopped(signum)
        self.signum, self.received = signum, signal.Signals(signum).name


@dataclass
class Take:
    """The frames of one stream, in order, and how the take ended."""

    stream: str
    frames: list[MeshFrame]
    dropped: int
    ended: str | None = None          #: the stream's end reason, when it ended during the take
    stopped: str | None = None        #: the signal that stopped the take early ("SIGTERM", ...)

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


def take(client: FacecastClient, stream: str | None, seconds: float, show: bool = True,
         stop: StopSignals | None = None) -> Take:
    """Record ``seconds`` of ``stream`` (None: the first stream that sends).

    Stops early, keeping the frames so far, on a signal ``stop`` notes (looked
    at between frames, at least every ``STOP_POLL_S``) or on Ctrl-C.

    Raises:
        TimeoutError: no frame came for the client's timeout.
    """
    if stream is not None:
        client.subscribe([stream])
    frames: list[MeshFrame] = []
    ended, stopped, elapsed = None, None, 0.0
    bar = tqdm(total=round(seconds, 2), unit="s", desc="record", disable=not show, file=sys.stderr,
               bar_format="{l_bar}{bar}| {n:.1f}/{total:.1f} s [{elapsed}<{remaining}]")
    try:
        heard = time.monotonic()
        while True:
            if stop is not None and stop.received:
                stopped = stop.received
                break
            event = client.poll(STOP_POLL_S)
            if event is None:
                if time.monotonic() - heard < client.timeout:
                    continue
                if not frames:
                    raise TimeoutError(f"{client.url}: no frame of {stream or 'any stream'} within "
                                       f"{client.timeout:g} s (is it open? `facecast stats` lists the streams)")
                ended = "silent"
                break
            heard = time.monotonic()
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
    except Stopped:
        raise                                      # a second signal: abort
    except KeyboardInterrupt:                      # Ctrl-C where no StopSignals holds SIGINT
        stopped = "SIGINT"
    finally:
        bar.close()
    if stopped:
        _say(f"record: stopped early by {stopped} after {elapsed:.2f} of {seconds:g} s; "
             + (f"writing the {len(frames)} frames received" if frames else "no frame had come"), sys.stderr)
    seqs = [f.seq for f in frames]
    dropped = sum(b - a - 1 for a, b in zip(seqs, seqs[1:]) if b > a + 1)
    return Take(stream or "", frames, dropped, ended, stopped)


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
    check_folder(out)
    return _write_folder(take_, out)


def check_folder(out: Path) -> None:
    """A folder take replaces ``out`` whole: it must be new, empty, or a previous
    take (``frames.csv`` and ``frame_NNNNNN.ply`` files), never a folder of other files.

    Raises:
        ValueError: ``out`` is a file, or holds something else (the message names it).
    """
    if not out.name or out.resolve() == Path.cwd().resolve():
        raise ValueError(f"--out {out}/: a folder take replaces its folder whole; name a new one (e.g. take/)")
    if not out.exists():
        return
    if not out.is_dir():
        raise ValueError(f"--out {out}/: a file, not a folder")
    foreign = sorted(p.name for p in out.iterdir() if not (TAKE_FILES.match(p.name) and p.is_file()))
    if foreign:
        raise ValueError(f"--out {out}/ holds {', '.join(foreign[:3])}{' ...' if len(foreign) > 3 else ''}, "
                         f"not a facecast take (frames.csv + frame_NNNNNN.ply); "
                         f"a folder take replaces the whole folder, so choose a new or empty one")


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
    """Write the take into a temporary folder beside ``out``, then rename it to
    ``out`` (a previous take there is moved aside first, then removed)."""
    import trimesh

    out.parent.mkdir(parents=True, exist_ok=True)
    part = out.with_name(f".{out.name}.{secrets.token_hex(4)}.part")
    part.mkdir()
    try:
        faces = take_.frames[0].faces
        weights = take_.weights()
        text = io.StringIO(newline="")
        w = csv.writer(text)
        bs_columns = ["bs_" + n for n in BLENDSHAPE_NAMES] if weights is not None else []
        w.writerow(["file", "seq", "t", "wall_ns", "label"] + bs_columns)
        for i, (f, t) in enumerate(zip(take_.frames, take_.t)):
            name = f"frame_{i:06d}.ply"
            _write_synced(part / name, trimesh.Trimesh(f.vertices, faces, process=False).export(file_type="ply"))
            w.writerow([name, f.seq, f"{t:.6f}", f.wall_ns, f.label or ""]
                       + ([f"{x:.6f}" for x in weights[i]] if weights is not None else []))
        _write_synced(part / "frames.csv", text.getvalue().encode())
        fsync_folder(part)
        if out.is_dir() and any(out.iterdir()):            # a previous take (check_folder): move it aside
            old = out.with_name(f".{out.name}.{secrets.token_hex(4)}.old")
            os.rename(out, old)
            os.rename(part, out)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(part, out)                          # onto nothing, or onto an empty folder
        fsync_folder(out.parent)
    except BaseException:
        shutil.rmtree(part, ignore_errors=True)
        raise
    return f"{out}/ ({len(take_.frames)} PLY files and frames.csv)"


def _write_synced(path: Path, data: bytes) -> None:
    with open(path, "xb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())


def _say(line: str, file) -> None:
    """Print ``line``; a terminal gone with SIGHUP (EIO) does not stop the take."""
    try:
        print(line, file=file, flush=True)
    except OSError:
        pass


def cmd_record(args: argparse.Namespace) -> int:
    out = Path(args.out)
    if out.suffix and out.suffix.lower() not in FORMATS and not args.out.endswith("/"):
        print(f"facecast record: --out {out}: write .npz, .glb or a folder (a path ending in /)", file=sys.stderr)
        return 2
    if args.seconds <= 0:
        print("facecast record: --seconds must be positive", file=sys.stderr)
        return 2
    start = time.perf_counter()
    with StopSignals() as stop:
        try:
            if out.suffix.lower() not in FORMATS:
                check_folder(out)                          # before recording, not after
            with FacecastClient(args.url, control=args.control or False, token=args.token,
                                timeout=args.timeout) as client:
                recorded = take(client, args.stream, args.seconds, show=not args.quiet, stop=stop)
            if recorded.stopped and not recorded.frames:
                print(f"facecast record: stopped by {recorded.stopped} before the first frame; nothing written",
                      file=sys.stderr)
                return 128 + (stop.signum or signal.SIGINT)
            what = write(recorded, out, args.tolerance_mm)
            during = stop.received if not recorded.stopped else None
        except Stopped as exc:
            _say(f"facecast record: a second signal ({exc.name}): aborted; nothing written, "
                 f"{out} left as it was", sys.stderr)
            return 128 + exc.signum
        except (FacecastError, TimeoutError, ValueError, OSError) as exc:
            print(f"facecast record: {exc}", file=sys.stderr)
            return 2
    if during:
        _say(f"record: {during} came while writing; the take was written first", sys.stderr)
    n = len(recorded.frames)
    end = f", stream {recorded.ended}" if recorded.ended else ""
    end += f", stopped early by {recorded.stopped}" if recorded.stopped else ""
    _say(f"record: {n} frames of {recorded.stream} ({recorded.t[-1]:.2f} s, {recorded.dropped} dropped{end}) "
         f"-> {what} in {time.perf_counter() - start:.1f} s", sys.stdout)
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
