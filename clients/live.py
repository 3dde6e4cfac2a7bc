"""Live streams: a running runtime as a frame source for the viewer.

``facecast view tcp://127.0.0.1:5555`` (ZeroMQ) or ``facecast view
ws://127.0.0.1:8765`` (WebSocket) shows what ``facecast serve`` (or
``facecast demo``) sends. The URI is the runtime's data endpoint, with an
optional stream id:

    ``tcp://HOST:PORT``, ``ws://HOST:PORT``
        every stream; shows the first one that sends a frame (and, when it
        ends, the next one)
    ``tcp://HOST:PORT/s000001``, ``ws://HOST:PORT/s000001``
        that stream only

``LiveSource`` reads through a ``clients.python.FacecastClient`` (over
ZeroMQ it uses the data endpoint alone, so a runtime started with
``--control off`` can be watched too). Opening checks that something
answers: a bad address, a closed port or a runtime of another protocol
version is a ``SourceError`` naming it, at once.

Reading:
    ``poll(clock)``  never blocks: takes every message waiting, and returns the
                     NEWEST frame of the shown stream as a ``runtime.frames.Frame``
                     (None when no new frame came since the last poll). ``clock``
                     is ignored: a live stream is shown as it arrives, never
                     delayed or replayed.
    ``frames()``     every frame of the shown stream in order as it arrives
                     (blocking); ends at the stream's ``end`` message, or after
                     ``idle`` seconds without a message.

The receive queue is short (``RCVHWM``, 64 messages) and each poll drains it,
so a window that draws slowly shows the newest frame, not a backlog.
``received`` counts the frames taken (with their topology), ``dropped`` the
frames missing from gaps in each stream's ``seq``. ``subjects()`` lists the
stream ids seen and not ended, and ``select(subject=ID)`` switches to one of
them; frames carry the stream id as their ``subject`` and the expression as
their ``label``. ``fps`` is the shown stream's rate from its frame headers.
A message of another protocol version raises ``SourceError`` from ``poll`` /
``frames``. ``opener`` is this module's ``facecast.sources`` entry: it takes
``tcp://`` and ``ws://`` URIs and leaves everything else to other openers.
"""

from __future__ import annotations

from typing import Iterator

import numpy as np

from clients.python import FacecastClient, FacecastError, MeshFrame, StreamEnd
from runtime import protocol as P
from runtime.frames import Frame, FrameSource, LandmarkEmbedding, SourceError, Topology

__all__ = ["LiveSource", "opener"]

SCHEMES = ("tcp://", "ws://", "wss://")
#: messages queued for this viewer before the oldest are dropped
RCVHWM = 64
#: ``frames()`` ends after this long without a message (s)
IDLE_SECONDS = 3.0
#: how long opening waits for the runtime to answer (s)
CONNECT_TIMEOUT = 5.0
#: most messages one ``poll`` takes, so a flood cannot keep it from returning
MAX_DRAIN = 4096


class LiveSource(FrameSource):
    """The frames a runtime sends (see the module docstring)."""

    def __init__(self, uri: str, hwm: int = RCVHWM, idle: float = IDLE_SECONDS,
                 timeout: float = CONNECT_TIMEOUT) -> None:
        self.name = uri
        self.idle = float(idle)
        try:
            self._client: FacecastClient | None = FacecastClient(uri, control=False, queue=hwm, timeout=timeout)
        except FacecastError as exc:
            raise SourceError(str(exc)) from None
        self._state = self._client.state                    # its counters outlive the connection
        self.endpoint = self._client.url.rstrip("/")
        self.only = self._client.address.stream
        self._topologies: dict[str, Topology] = {}          # topology id -> the viewer's form of it
        self._latest: dict[str, MeshFrame] = {}             # stream -> newest frame not yet shown
        self._live: dict[str, None] = {}                    # streams seen and not ended, in order
        self._shown: str | None = self.only
        self._label: str | None = None

    # ------------------------------------------------------------- reading
    def poll(self, clock: float) -> Frame | None:
        client = self._open()
        for _ in range(MAX_DRAIN):
            event = self._event(client, 0.0)
            if event is None:
                break
            self._take(event)
        frame = self._latest.pop(self._shown, None) if self._shown is not None else None
        return None if frame is None else self._frame(frame)

    def frames(self) -> Iterator[Frame]:
        client = self._open()
        while True:
            event = self._event(client, self.idle)
            if event is None:
                return                                     # nothing for `idle` seconds
            shown = self._shown
            self._take(event)
            if isinstance(event, MeshFrame) and event.stream == self._shown:
                del self._latest[event.stream]
                yield self._frame(event)
            elif isinstance(event, StreamEnd) and event.stream == shown:
                return

    def _event(self, client: FacecastClient, timeout: float) -> MeshFrame | StreamEnd | None:
        try:
            return client.poll(timeout)
        except FacecastError as exc:
            raise SourceError(str(exc)) from None

    @property
    def ended(self) -> bool:
        """The shown stream sent its ``end`` message."""
        return self._shown is not None and self._shown in self._state.ended

    @property
    def received(self) -> int:
        return self._state.received

    @property
    def dropped(self) -> int:
        return self._state.dropped

    @property
    def ignored(self) -> int:
        """Frames that came before their topology."""
        return self._state.ignored

    # ------------------------------------------------------------ selection
    def subjects(self) -> list[str]:
        """The stream ids seen and not ended."""
        return list(self._live)

    def current(self) -> dict:
        return {"label": self._label, "subject": self._shown}

    def select(self, label: str | None = None, subject: str | None = None) -> None:
        if label is not None:
            raise SourceError(f"{self.name}: a live stream's label is set by the runtime (facecast control "
                              f"'set'), not by the viewer")
        if subject is None:
            return
        if subject not in self._live:
            raise SourceError(f"{self.name}: no stream {subject!r} seen; streams: "
                              f"{', '.join(self._live) or 'none yet'} (to show one stream from the start, "
                              f"open {self.endpoint}/{subject})")
        if subject != self._shown:
            self._shown = subject
            self._label = None

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    # ------------------------------------------------------------- messages
    def _open(self) -> FacecastClient:
        if self._client is None:
            raise SourceError(f"{self.name}: the source is closed")
        return self._client

    def _take(self, event: MeshFrame | StreamEnd) -> None:
        if isinstance(event, StreamEnd):
            self._live.pop(event.stream, None)
            self._latest.pop(event.stream, None)
            if event.stream == self._shown and self.only is None:
                self._shown = None                         # show the next stream that sends
            return
        self._live[event.stream] = None
        self._latest[event.stream] = event
        if self._shown is None:
            self._shown = event.stream

    def _frame(self, f: MeshFrame) -> Frame:
        try:
            frame = Frame(vertices=f.vertices, topology=self._topology(f.topology), t=f.t, index=f.seq,
                          landmarks=None if f.landmarks is None else f.landmarks.copy(), label=f.label,
                          subject=f.stream)
        except (P.ProtocolError, ValueError) as exc:
            raise SourceError(f"{self.name}: stream {f.stream}: bad frame ({getattr(exc, 'message', exc)})") from None
        self.fps = f.fps
        self._label = frame.label
        return frame

    def _topology(self, data: P.TopologyData) -> Topology:
        topology = self._topologies.get(data.id)
        if topology is None:
            try:
                topology = Topology(faces=data.faces.astype(np.int32), n_vertices=len(data.template),
                                    landmarks=LandmarkEmbedding(data.landmark_faces.astype(np.int32),
                                                                data.landmark_bary.astype(np.float32)),
                                    name=data.name, id=data.id)
            except ValueError as exc:
                raise SourceError(f"{self.name}: bad topology {data.id!r} ({exc})") from None
            self._topologies[data.id] = topology
        return topology


def opener(uri: str) -> LiveSource | None:
    """``facecast.sources`` entry: a ``tcp://`` or ``ws://`` URI becomes a ``LiveSource``."""
    if not uri.lower().startswith(SCHEMES):
        return None
    return LiveSource(uri)
