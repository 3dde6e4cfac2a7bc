"""Live streams: a running runtime's ZeroMQ data endpoint as a frame source.

``facecast view tcp://127.0.0.1:5555`` shows what ``facecast serve`` (or
``facecast demo``) publishes. The URI is the runtime's data endpoint, with
an optional stream id:

    ``tcp://HOST:PORT``           every stream; shows the first one that sends
                                  a frame (and, when it ends, the next one)
    ``tcp://HOST:PORT/s000001``   that stream only (subscribes to ``frame/s000001``)

``LiveSource`` connects a ZeroMQ SUB socket to the endpoint and reads the
messages of ``runtime.protocol`` (``docs/PROTOCOL.md``): a stream's
``topology`` (faces, template, landmark embedding) comes before its first
frame (the runtime sends it to each new subscriber), then ``frame``
messages, then an ``end`` message when the stream stops. Frames that arrive
before their topology are ignored.

Reading:
    ``poll(clock)``  never blocks: takes every message waiting, and returns the
                     NEWEST frame of the shown stream as a ``runtime.frames.Frame``
                     (None when no new frame came since the last poll). ``clock``
                     is ignored: a live stream is shown as it arrives, never
                     delayed or replayed. ZeroMQ connects lazily and in the
                     background, so ``poll`` also returns None while the runtime
                     is not (yet) there: a wrong port looks like an idle stream.
    ``frames()``     every frame of the shown stream in order as it arrives
                     (blocking); ends at the stream's ``end`` message, or after
                     ``idle`` seconds without a message.

The receive queue is short (``RCVHWM``, 64 messages) and each poll drains it,
so a window that draws slowly shows the newest frame, not a backlog.
``received`` counts the frames taken (with their topology), ``dropped`` the
frames missing from gaps in each stream's ``seq`` (lost on the way: the
runtime's queue for this subscriber was full, or the runtime itself skipped
a deadline). ``subjects()`` lists the stream ids seen and not ended, and
``select(subject=ID)`` switches to one of them; frames carry the stream id
as their ``subject`` and the expression as their ``label``. ``fps`` is the
shown stream's rate from its frame headers once one has arrived.

A message of another protocol version (or one that is not a facecast data
message at all) raises ``SourceError`` from ``poll`` / ``frames``, naming
the endpoint. ``opener`` is this module's ``facecast.sources`` entry: it
takes ``tcp://`` URIs and leaves everything else (``ws://`` included) to
other openers.
"""

from __future__ import annotations

import re
from typing import Iterator
from urllib.parse import urlsplit

import numpy as np
import zmq

from runtime import protocol as P
from runtime.frames import Frame, FrameSource, LandmarkEmbedding, SourceError, Topology

__all__ = ["LiveSource", "opener", "parse_uri"]

SCHEME = "tcp"
#: messages ZeroMQ queues for this subscriber before it drops them
RCVHWM = 64
#: ``frames()`` ends after this long without a message (s)
IDLE_SECONDS = 3.0
#: most messages one ``poll`` takes, so a flood cannot keep it from returning
MAX_DRAIN = 4096
#: what a stream id in a URI may look like (the runtime's are ``s000001``)
STREAM_ID = re.compile(r"[A-Za-z0-9_.\-]{1,128}")


def parse_uri(uri: str) -> tuple[str, str | None]:
    """``tcp://HOST:PORT[/STREAM]`` -> (``tcp://HOST:PORT``, STREAM or None).

    Raises:
        SourceError: not of that form (the message names the URI).
    """
    expected = "expected tcp://HOST:PORT or tcp://HOST:PORT/STREAM, e.g. tcp://127.0.0.1:5555/s000001"
    try:
        parts = urlsplit(uri)
        port = parts.port
    except ValueError as exc:
        raise SourceError(f"{uri}: not a data endpoint ({exc}); {expected}") from exc
    if parts.scheme.lower() != SCHEME or not parts.hostname or port is None or port == 0:
        raise SourceError(f"{uri}: not a data endpoint; {expected}")
    if parts.query or parts.fragment or parts.username or parts.password:
        raise SourceError(f"{uri}: a data endpoint has no query, fragment or user; {expected}")
    path = parts.path.strip("/")
    if path and not STREAM_ID.fullmatch(path):
        raise SourceError(f"{uri}: {path!r} is not a stream id; {expected}")
    return f"{SCHEME}://{parts.netloc}", path or None


class LiveSource(FrameSource):
    """The frames a runtime publishes on a ZeroMQ data endpoint (see the module docstring)."""

    def __init__(self, uri: str, hwm: int = RCVHWM, idle: float = IDLE_SECONDS,
                 context: zmq.Context | None = None) -> None:
        self.endpoint, self.only = parse_uri(uri)
        self.name = uri
        self.idle = float(idle)
        self.received = 0          #: frames taken (their topology known)
        self.dropped = 0           #: frames missing from seq gaps
        self.ignored = 0           #: frames that came before their topology
        self._topologies: dict[str, Topology] = {}      # stream -> its topology (with the template beside)
        self._templates: dict[str, np.ndarray] = {}
        self._seq: dict[str, int] = {}                  # stream -> last seq taken
        self._latest: dict[str, tuple[dict, memoryview]] = {}   # stream -> newest frame not yet shown
        self._live: dict[str, None] = {}                # streams seen and not ended, in order
        self._ended: set[str] = set()
        self._shown: str | None = self.only
        self._label: str | None = None
        self._sock = (context or zmq.Context.instance()).socket(zmq.SUB)
        try:
            self._sock.setsockopt(zmq.LINGER, 0)
            self._sock.setsockopt(zmq.RCVHWM, hwm)
            if ":" in urlsplit(self.endpoint).hostname:               # an IPv6 address
                self._sock.setsockopt(zmq.IPV6, 1)
            self._sock.setsockopt(zmq.SUBSCRIBE, P.topic(self.only) if self.only else P.TOPIC_PREFIX.encode())
            self._sock.connect(self.endpoint)
        except zmq.ZMQError as exc:
            self._sock.close(linger=0)
            raise SourceError(f"{uri}: cannot connect to {self.endpoint}: {exc.strerror}") from exc

    # ------------------------------------------------------------- reading
    def poll(self, clock: float) -> Frame | None:
        for parts in self._waiting():
            self._take(parts)
        if self._shown is None or self._shown not in self._latest:
            return None
        header, payload = self._latest.pop(self._shown)
        return self._frame(self._shown, header, payload)

    def frames(self) -> Iterator[Frame]:
        sock = self._socket()
        while True:
            if not sock.poll(int(self.idle * 1000)):
                return                                     # nothing for `idle` seconds
            ended = False
            for parts in self._waiting():
                shown = self._shown
                frame = self._take(parts)
                if frame is not None:
                    del self._latest[frame[0]]
                    yield self._frame(*frame)
                elif shown is not None and shown in self._ended:
                    ended = True
                    break
            if ended:
                return

    @property
    def ended(self) -> bool:
        """The shown stream sent its ``end`` message."""
        return self._shown is not None and self._shown in self._ended

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
        if self._sock is not None:
            self._sock.close(linger=0)
            self._sock = None

    # ------------------------------------------------------------- messages
    def _waiting(self) -> Iterator[list[bytes]]:
        """The messages waiting now (at most ``MAX_DRAIN``), without blocking."""
        sock = self._socket()
        for _ in range(MAX_DRAIN):
            try:
                yield sock.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                return

    def _socket(self) -> zmq.Socket:
        if self._sock is None:
            raise SourceError(f"{self.name}: the source is closed")
        return self._sock

    def _take(self, parts: list[bytes]) -> tuple[str, dict, memoryview] | None:
        """Account for one message; a frame of the shown stream comes back as (stream, header, payload)."""
        try:
            header, payload = P.parse_data(parts)
        except P.ProtocolError as exc:
            raise SourceError(f"{self.name}: {exc.message}") from exc
        stream, kind = header.get("stream"), header.get("type")
        if not isinstance(stream, str) or (self.only is not None and stream != self.only):
            return None
        if kind == "topology":
            self._topology(stream, header, payload)
        elif kind == "end":
            self._ended.add(stream)
            self._live.pop(stream, None)
            self._latest.pop(stream, None)
            if stream == self._shown and self.only is None:
                self._shown = None                         # show the next stream that sends
        elif kind == "frame":
            topology = self._topologies.get(stream)
            if topology is None or header.get("topology") != topology.id:
                self.ignored += 1
                return None
            seq = int(header.get("seq", 0))
            last = self._seq.get(stream)
            if last is not None and seq > last + 1:
                self.dropped += seq - last - 1
            self._seq[stream] = seq                        # a seq that goes back (a restart) starts afresh
            self.received += 1
            self._ended.discard(stream)
            self._live[stream] = None
            self._latest[stream] = (header, payload)
            if self._shown is None:
                self._shown = stream
            if stream == self._shown:
                return stream, header, payload
        return None

    def _topology(self, stream: str, header: dict, payload: memoryview) -> None:
        old = self._topologies.get(stream)
        if old is not None and old.id == header.get("topology"):
            return                                          # sent again for a later subscriber
        try:
            data = P.decode_topology(header, payload)
            topology = Topology(faces=data.faces.astype(np.int32), n_vertices=len(data.template),
                                landmarks=LandmarkEmbedding(data.landmark_faces.astype(np.int32),
                                                            data.landmark_bary.astype(np.float32)),
                                name=data.name, id=data.id)
        except (P.ProtocolError, ValueError) as exc:
            raise SourceError(f"{self.name}: stream {stream}: bad topology ({exc})") from exc
        self._topologies[stream] = topology
        self._templates[stream] = np.asarray(data.template, dtype=np.float32)
        self._seq.pop(stream, None)

    def _frame(self, stream: str, header: dict, payload: memoryview) -> Frame:
        try:
            vertices = P.decode_vertices(payload, header, self._templates[stream])
            landmarks = P.header_array(header, "lm", 3)
            frame = Frame(vertices=vertices, topology=self._topologies[stream], t=float(header.get("t", 0.0)),
                          index=int(header.get("seq", 0)),
                          landmarks=None if landmarks is None else landmarks.copy(),
                          label=header.get("label"), subject=stream)
        except (P.ProtocolError, ValueError) as exc:
            raise SourceError(f"{self.name}: stream {stream}: bad frame ({exc})") from exc
        if "fps" in header:
            self.fps = float(header["fps"])
        self._label = frame.label
        return frame


def opener(uri: str) -> LiveSource | None:
    """``facecast.sources`` entry: a ``tcp://`` URI becomes a ``LiveSource``."""
    if not uri.lower().startswith(SCHEME + "://"):
        return None
    return LiveSource(uri)

