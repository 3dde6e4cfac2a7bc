"""The sans-I/O half of the Python client: addresses, errors, frames, and the
per-stream state that turns data messages into frames.

Nothing here touches a socket; ``client.py`` (blocking) and ``aio.py``
(asyncio) feed it what their sockets receive. The wire format is
``runtime.protocol`` (``docs/PROTOCOL.md``).
"""

from __future__ import annotations

import itertools
import socket
import time
from dataclasses import dataclass, field
from functools import cached_property
from urllib.parse import urlsplit

import numpy as np
import zmq

from runtime import protocol as P

#: seconds to connect, and to wait for a command's reply
DEFAULT_TIMEOUT = 5.0
#: data messages a client holds that its user has not taken yet (beyond: the oldest are dropped, counted)
DEFAULT_QUEUE = 1024
#: the runtime's default data endpoint; its control endpoint is the next port
DEFAULT_URL = "tcp://127.0.0.1:5555"
SCHEMES = ("tcp", "ws", "wss")


# ----------------------------------------------------------------- errors
class FacecastError(Exception):
    """Anything the client reports; the message names the endpoint."""


class AddressError(FacecastError, ValueError):
    """A URL the client cannot use (malformed, unknown scheme, unresolvable host)."""


class ConnectError(FacecastError, ConnectionError):
    """Nothing (or not a facecast runtime) answers at the address in time."""


class VersionError(FacecastError):
    """The runtime speaks another protocol version than this client (``theirs``, ``ours``)."""

    def __init__(self, message: str, theirs) -> None:
        super().__init__(message)
        self.theirs, self.ours = theirs, P.VERSION


class CommandError(FacecastError):
    """A control command the runtime refused: ``code`` (``runtime.protocol.ERROR_CODES``),
    ``message`` and the whole ``reply``. Each code has its subclass below."""

    code = "error"

    def __init__(self, message: str, reply: dict) -> None:
        super().__init__(message)
        self.message, self.reply = message, reply


def _command_error(code: str) -> type[CommandError]:
    name = "".join(part.title() for part in code.split("_")) + "Error"
    return type(name, (CommandError,), {"code": code, "__doc__": f"The runtime replied ``{code}``."})


#: error code -> its ``CommandError`` subclass (``NotFoundError``, ``BadArgumentError``, ...)
COMMAND_ERRORS: dict[str, type[CommandError]] = {code: _command_error(code) for code in P.ERROR_CODES}


def raise_for_reply(reply, endpoint: str) -> dict:
    """A reply map -> itself when ``ok``; raises the ``CommandError`` subclass of its code otherwise."""
    if not isinstance(reply, dict) or "ok" not in reply:
        raise ConnectError(f"{endpoint}: the reply is not a facecast control reply: {str(reply)[:200]}")
    if reply["ok"] is True:
        return reply
    err = reply.get("error") if isinstance(reply.get("error"), dict) else {}
    code, message = str(err.get("code", "error")), str(err.get("message", reply))
    raise COMMAND_ERRORS.get(code, CommandError)(f"{endpoint}: {code}: {message}", reply)


def check_version(reply: dict, endpoint: str) -> dict:
    """A ``ping`` reply -> itself when the runtime speaks our version."""
    theirs = reply.get("v")
    if theirs != P.VERSION:
        said = "does not say its protocol version" if theirs is None else f"speaks facecast protocol v{theirs}"
        raise VersionError(f"{endpoint}: the runtime {said}; this client speaks v{P.VERSION} "
                           f"(upgrade the one that is older)", theirs)
    return reply


# -------------------------------------------------------------- addresses
@dataclass(frozen=True)
class Address:
    """Where a client connects: ``scheme`` tcp (ZeroMQ) or ws/wss (WebSocket),
    the data ``url``, the ZeroMQ ``control`` endpoint (None: none), and the
    stream named in the URL's path (None: every stream)."""

    scheme: str
    url: str
    host: str
    port: int
    control: str | None
    stream: str | None

    @property
    def zmq(self) -> bool:
        return self.scheme == "tcp"


def parse_address(url: str, control: str | None | bool = True) -> Address:
    """``tcp://HOST:PORT[/STREAM]`` or ``ws://HOST:PORT[/STREAM]`` -> ``Address``.

    ``control`` (ZeroMQ only): True for the runtime's convention (the data
    port + 1), an endpoint ``tcp://HOST:PORT``, or False/None for none.
    The host must resolve.
    """
    expected = ("expected tcp://HOST:PORT (ZeroMQ data endpoint) or ws://HOST:PORT (WebSocket), optionally "
                "followed by /STREAM, e.g. tcp://127.0.0.1:5555 or ws://127.0.0.1:8765/s000001")
    if not isinstance(url, str):
        raise AddressError(f"{url!r}: not a URL; {expected}")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise AddressError(f"{url}: malformed ({exc}); {expected}") from None
    scheme = parts.scheme.lower()
    if scheme not in SCHEMES or not parts.hostname or not port:
        raise AddressError(f"{url}: not a facecast address; {expected}")
    if parts.query or parts.fragment or parts.username or parts.password:
        raise AddressError(f"{url}: a facecast address has no query, fragment or user; {expected}")
    stream = parts.path.strip("/") or None
    if stream is not None and not P.STREAM_ID.fullmatch(stream):
        raise AddressError(f"{url}: {stream!r} is not a stream id; {expected}")
    host = parts.hostname
    if host in ("*", "0.0.0.0", "::"):
        raise AddressError(f"{url}: {host} is a bind address; connect to the runtime's host, e.g. 127.0.0.1")
    try:
        socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise AddressError(f"{url}: cannot resolve host {host!r} ({exc.strerror})") from None
    netloc = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    if scheme != "tcp":
        return Address(scheme, f"{scheme}://{netloc}/", host, port, None, stream)
    if control is True:
        if port >= 65535:
            raise AddressError(f"{url}: the control port would be {port + 1}; pass control= explicitly")
        ctl = f"tcp://[{host}]:{port + 1}" if ":" in host else f"tcp://{host}:{port + 1}"
    elif control:
        ctl = parse_address(control, control=False).url
    else:
        ctl = None
    return Address(scheme, f"tcp://{netloc}", host, port, ctl, stream)


# ------------------------------------------------------------- ZeroMQ links
#: the socket-monitor events that tell whether a ZeroMQ connection reached a ZeroMQ peer
MONITOR_EVENTS = (zmq.EVENT_CONNECTED | zmq.EVENT_HANDSHAKE_SUCCEEDED | zmq.EVENT_CONNECT_RETRIED
                  | zmq.EVENT_DISCONNECTED
                  | zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL | zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL)


class Handshake:
    """Follows a ZeroMQ socket's monitor events until its connection is up (sans I/O).

    ZeroMQ connects in the background and retries forever, so a client
    watches the handshake to tell "connected" from "nothing listening" or
    "not a ZeroMQ peer" within its timeout, instead of waiting silently.
    """

    def __init__(self, endpoint: str, role: str) -> None:
        self.endpoint, self.role = endpoint, role
        self.done = False
        self.accepted = False       #: a TCP connection was made (something listens there)
        self.refused = 0
        self.foreign = 0

    def feed(self, event: int) -> None:
        if event == zmq.EVENT_HANDSHAKE_SUCCEEDED:
            self.done = True
        elif event == zmq.EVENT_CONNECTED:
            self.accepted = True
        elif event == zmq.EVENT_CONNECT_RETRIED:
            self.refused += 1
        elif event in (zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL, zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL,
                       zmq.EVENT_DISCONNECTED):
            self.foreign += 1

    def error(self, timeout: float) -> ConnectError:
        if self.foreign or self.accepted:
            why = ("the peer does not speak ZeroMQ (a WebSocket or HTTP port? use ws://HOST:PORT for the "
                   "runtime's WebSocket)")
        elif self.refused:
            why = "connection refused: nothing is listening there (is `facecast serve` running, on this port?)"
        else:
            why = "no answer (a firewall, or a host that is down?)"
        return ConnectError(f"{self.endpoint}: cannot reach the runtime's {self.role} endpoint within "
                            f"{timeout:g} s: {why}")


# ------------------------------------------------------------------ frames
@dataclass(frozen=True, eq=False)
class MeshFrame:
    """One frame of one stream, as received.

    ``vertices`` (``float32 [N, 3]``, metres) are decoded from the payload
    on first access. ``landmarks`` (``float32 [68, 3]``) and ``weights``
    (``float32 [52]``, ARKit order: ``runtime.protocol.BLENDSHAPE_NAMES``)
    are None when the stream does not send them. Times: ``t`` media time
    (s), ``wall_ns`` when the runtime sent it, ``tick_ns`` when its engine
    tick began, ``received_ns`` when this client took it (Unix ns).
    """

    stream: str
    seq: int
    t: float
    fps: float
    enc: str
    topology: P.TopologyData
    header: dict = field(repr=False)
    payload: bytes = field(repr=False)
    received_ns: int = 0

    @cached_property
    def vertices(self) -> np.ndarray:
        return P.decode_vertices(self.payload, self.header, self.topology.template)

    @property
    def faces(self) -> np.ndarray:
        return self.topology.faces

    @cached_property
    def landmarks(self) -> np.ndarray | None:
        return P.header_array(self.header, "lm", 3)

    @cached_property
    def weights(self) -> np.ndarray | None:
        return P.header_array(self.header, "bs", 1)

    @property
    def blendshapes(self) -> dict[str, float] | None:
        """The weights by ARKit name."""
        w = self.weights
        return None if w is None else dict(zip(P.BLENDSHAPE_NAMES, map(float, w)))

    @property
    def label(self) -> str | None:
        return self.header.get("label")

    @property
    def identity(self) -> str | None:
        return self.header.get("identity")

    @property
    def wall_ns(self) -> int:
        return int(self.header.get("wall", 0))

    @property
    def tick_ns(self) -> int:
        return int(self.header.get("tick", 0))

    @property
    def latency_ms(self) -> float:
        """From the start of the engine tick that made it to its arrival here."""
        return (self.received_ns - self.tick_ns) / 1e6


@dataclass(frozen=True)
class StreamEnd:
    """A stream stopped: its clip ``finished``, or it was ``closed``."""

    stream: str
    reason: str
    seq: int


class StreamState:
    """Turns a client's data messages into ``MeshFrame``s (sans I/O).

    Keeps each stream's topology (a frame before its topology is ignored and
    counted in ``ignored``), counts the frames missing from gaps in each
    stream's ``seq`` in ``dropped`` (lost on the way, or skipped by a late
    engine), and the streams that ended. ``feed`` raises ``VersionError``
    for a message of another protocol version and ``FacecastError`` for one
    that is not a facecast data message.
    """

    def __init__(self, endpoint: str, only: set[str] | None = None) -> None:
        self.endpoint = endpoint
        self.only = only                    #: stream ids to keep (None: every stream)
        self.topologies: dict[str, P.TopologyData] = {}
        self.ended: dict[str, StreamEnd] = {}
        self.received = 0
        self.dropped = 0
        self.ignored = 0
        self._seq: dict[str, int] = {}
        self._dropped: dict[str, int] = {}

    def dropped_in(self, stream: str) -> int:
        return self._dropped.get(stream, 0)

    def feed(self, raw, received_ns: int | None = None) -> MeshFrame | StreamEnd | None:
        """One data message (ZeroMQ parts, or a WebSocket binary message)."""
        try:
            header, payload = P.parse_data(raw)
        except P.VersionMismatch as exc:
            raise VersionError(f"{self.endpoint}: {exc.message}", exc.version) from None
        except P.ProtocolError as exc:
            raise FacecastError(f"{self.endpoint}: not a facecast data message ({exc.message})") from None
        stream, kind = header.get("stream"), header.get("type")
        if not isinstance(stream, str):
            return None
        if kind == "topology":               # kept for every stream: a later subscribe may want it
            self._topology(stream, header, payload)
        elif self.only is not None and stream not in self.only:
            return None
        elif kind == "end":
            end = StreamEnd(stream, str(header.get("reason", "")), int(header.get("seq", 0)))
            self.ended[stream] = end
            return end
        elif kind == "frame":
            topology = self.topologies.get(stream)
            if topology is None or header.get("topology") != topology.id:
                self.ignored += 1
                return None
            try:
                seq, t, fps, enc = int(header["seq"]), float(header["t"]), float(header["fps"]), str(header["enc"])
            except (KeyError, TypeError, ValueError) as exc:
                raise FacecastError(f"{self.endpoint}: stream {stream}: malformed frame header ({exc!r})") from None
            last = self._seq.get(stream)
            if last is not None and seq > last + 1:
                self.dropped += seq - last - 1
                self._dropped[stream] = self._dropped.get(stream, 0) + seq - last - 1
            self._seq[stream] = seq                   # a seq that goes back (a restart) starts afresh
            self.received += 1
            self.ended.pop(stream, None)
            return MeshFrame(stream, seq, t, fps, enc, topology, header, bytes(payload),
                             time.time_ns() if received_ns is None else received_ns)
        return None

    def _topology(self, stream: str, header: dict, payload) -> None:
        old = self.topologies.get(stream)
        if old is not None and old.id == header.get("topology"):
            return                                     # sent again for a later subscriber
        try:
            data = P.decode_topology(header, bytes(payload))
        except P.ProtocolError as exc:
            raise FacecastError(f"{self.endpoint}: stream {stream}: {exc.message}") from None
        self.topologies[stream] = data
        self._seq.pop(stream, None)


def wanted_streams(streams) -> set[str] | None:
    """``"*"`` -> None (every stream); a list of stream ids -> their set."""
    if streams == "*":
        return None
    wanted = {str(s) for s in streams}
    if not all(P.STREAM_ID.fullmatch(s) for s in wanted):
        raise ValueError(f"streams must be '*' or a list of stream ids, got {streams!r}")
    return wanted


def zmq_sockets(ctx: zmq.Context, addr: Address, queue: int) -> tuple:
    """A ZeroMQ client's SUB socket (data, ``queue`` messages deep) and DEALER
    socket (commands; None without a control endpoint), set up, not connected."""
    sub = ctx.socket(zmq.SUB)
    dealer = ctx.socket(zmq.DEALER) if addr.control else None
    for sock in (sub, dealer):
        if sock is not None:
            sock.setsockopt(zmq.LINGER, 0)
            sock.setsockopt(zmq.IPV6, int(":" in addr.host))
    sub.setsockopt(zmq.RCVHWM, queue)
    return sub, dealer


def resubscribe(sub: zmq.Socket, old: list[bytes], streams: set[str] | None) -> list[bytes]:
    """Replace a SUB socket's subscriptions ``old`` with those receiving
    ``streams`` (None: every stream); returns the new ones."""
    for t in old:
        sub.setsockopt(zmq.UNSUBSCRIBE, t)
    new = [P.TOPIC_PREFIX.encode()] if streams is None else [P.topic(s) for s in sorted(streams)]
    for t in new:
        sub.setsockopt(zmq.SUBSCRIBE, t)
    return new


class ClientFigures:
    """What both clients report from their ``state`` (a ``StreamState``)."""

    url: str
    state: StreamState

    @property
    def received(self) -> int:
        return self.state.received

    @property
    def dropped(self) -> int:
        """Frames missing from gaps in their stream's ``seq`` (lost anywhere on the way)."""
        return self.state.dropped

    @property
    def ended(self) -> dict[str, StreamEnd]:
        return self.state.ended

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.url!r})"


class Requests:
    """Numbers control requests and adds the token (sans I/O)."""

    def __init__(self, token: str | None) -> None:
        self.token = token
        self._ids = itertools.count(1)

    def make(self, cmd: str, args: dict) -> dict:
        msg = {"cmd": cmd, **{k: v for k, v in args.items() if v is not None}, "id": next(self._ids)}
        if self.token is not None:
            msg["token"] = self.token
        return msg
