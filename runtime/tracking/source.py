"""The runtime's ``track`` source: frames tracked on a thread, streamed by the engine's clock.

Reading a camera blocks and tracking takes tens of milliseconds, so both
run on their own thread (``TrackSource``), at the input's own pace (a video
or an image folder is played at its frame rate, a camera as it delivers).
The engine's tick never waits: ``step`` returns the newest tracked frame
(the mesh in model space, its ARKit weights, and ``meta``: status
"tracking" / "held" / "none", the problem when held, the head pose in
degrees, the input frame's index). A camera's newest frame wins; a video's
or folder's frames are all streamed (the thread waits until the engine has
sent one before publishing the next, so a slow tick never skips one).
Before the first face it shows the
template's neutral face with status "none". When a video or folder ends the
stream ends after its last frame; a camera never ends by itself.
"""

from __future__ import annotations

import threading
import time

import numpy as np

from runtime.animation import Identity
from runtime.sources import Pose, Source


class TrackSource(Source):
    kind = "track"

    def __init__(self, frames, tracker, template, realtime: bool = True):
        self.frames = frames
        self.tracker = tracker
        self.identity = Identity("track", np.asarray(template.vertices, np.float32),
                                 np.asarray(template.landmark_points(), np.float32))
        self.realtime = realtime
        self._lock = threading.Lock()
        self._latest = None
        self._index = -1
        self._stop = threading.Event()
        self._done = threading.Event()
        self._taken = threading.Event()          #: the engine has sent the newest frame
        self._shown = -2                         #: the input index the last step showed
        self.error: str | None = None
        self.counts = {"frames": 0, "tracking": 0, "held": 0, "none": 0}
        self._ms: dict[str, float] = {}
        self._thread = threading.Thread(target=self._run, name="facecast-track", daemon=True)
        self._thread.start()

    # ---- the tracking thread -----------------------------------------------------------------
    def _run(self) -> None:
        start = time.monotonic()
        try:
            for frame in self.frames:
                if self._stop.is_set():
                    break
                if self.realtime and self.frames.kind != "camera":          # play files at their own rate
                    wait = frame.t - (time.monotonic() - start)
                    if wait > 0 and self._stop.wait(wait):
                        break
                out = self.tracker.process(frame.image, frame.t, frame.problem)
                with self._lock:
                    self._latest, self._index = out, frame.index
                    self._taken.clear()
                    self.counts["frames"] += 1
                    self.counts[out.status] += 1
                    for k, v in out.ms.items():
                        self._ms[k] = self._ms.get(k, 0.0) + v
                if self.frames.kind != "camera":                   # a file's frames are all streamed: wait
                    while not self._taken.wait(0.05):              # until the engine has sent this one
                        if self._stop.is_set():
                            return
        except Exception as exc:                    # a reader or tracker fault ends this stream only
            self.error = f"{type(exc).__name__}: {exc}"
        finally:
            self._done.set()

    # ---- the engine's side ----------------------------------------------------------------------
    def step(self, t: float) -> Pose | None:
        with self._lock:                             # read and mark taken together: a frame published
            latest, index = self._latest, self._index    # meanwhile waits for the next step
            self._taken.set()
        if self._done.is_set() and (latest is None or index == self._shown):
            return None
        self._shown = index
        if latest is None or latest.mesh is None:
            meta = {"status": "none", "problem": latest.problem if latest else "waiting for the first frame"}
            if index >= 0:
                meta["frame"] = index
            return Pose(self.identity, label="tracked", meta=meta)
        meta = {"status": latest.status, "frame": index, "pose": list(latest.pose)}
        if latest.problem:
            meta["problem"] = latest.problem
        return Pose(self.identity, label="tracked", mesh=latest.mesh, weights=latest.weights, meta=meta)


    def describe(self) -> dict:
        with self._lock:
            counts = dict(self.counts)
            ms = {k: round(v / max(counts["frames"], 1), 2) for k, v in self._ms.items()}
        out = {"input": self.frames.describe(), **counts, "ms": ms}
        if self.error:
            out["error"] = self.error
        return out

    def close(self) -> None:
        self._stop.set()
        self.frames.close()
        self._thread.join(timeout=2.0)
