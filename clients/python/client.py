"""``FacecastClient``: a blocking client of a running facecast runtime.

    from clients.python import FacecastClient

    with FacecastClient("tcp://127.0.0.1:5555") as fc:      # or "ws://127.0.0.1:8765"
        sid = fc.open(label="high_smile", loop=True)
        for frame in fc.frames():
            print(frame.stream, frame.seq, frame.vertices.shape, f"{frame.latency_ms:.1f} ms")

Over ZeroMQ (``tcp://``) the data come from the runtime's PUB socket and the
commands go to its ROUTER socket (by default the data port + 1); over a
WebSocket (``ws://``) both share one connection. Connecting checks that a
facecast runtime of this protocol version answers (a ``ping``), so a bad
address, a closed port or another version is an error at once, not a wait.

Real-time trade-offs: frames queue in the client until taken (ZeroMQ's
receive queue of ``queue`` messages, or ``queue`` WebSocket messages held
while a command waits for its reply); past that the oldest are lost, and
``dropped`` counts every frame missing from a stream's ``seq``. A reader
that wants the newest state, not every frame, calls ``latest()``.
"""

from __future__ import annotations

import json
import time
from collections import deque
from contextlib import ExitStack
from typing import Iterator

import msgpack
import zmq
import zmq.utils.monitor

from clients.python.core import (
    DEFAULT_QUEUE,
    DEFAULT_TIMEOUT,
    DEFAULT_URL,
    MONITOR_EVENTS,
    Address,
    AddressError,
    ClientFigures,
    ConnectError,
    FacecastError,
    Handshake,
    MeshFrame,
    Requests,
    StreamEnd,
    StreamState,
    check_version,
    parse_address,
    raise_for_reply,
    resubscribe,
    wanted_streams,
    zmq_sockets,
)

__all__ = ["FacecastClient"]

#: the largest WebSocket message accepted (a topology of a large mesh fits)
WS_MAX_SIZE = 64 * 2 ** 20


class _ZmqLink:
    """SUB socket for data, DEALER socket for commands."""

    def __init__(self, addr: Address, queue: int, timeout: float, ctx: zmq.Context) -> None:
        self.addr = addr
        self.sub, self.dealer = zmq_sockets(ctx, addr, queue)
        self.topics: list[bytes] = []
        try:
            self._connect(self.sub, addr.url, "data", timeout)
            if self.dealer is not None:
                self._connect(self.dealer, addr.control, "control", timeout)
        except BaseException:
            self.close()
            raise

    @staticmethod
    def _connect(sock: zmq.Socket, endpoint: str, role: str, timeout: float) -> None:
        monitor = sock.get_monitor_socket(MONITOR_EVENTS)
        watch = Handshake(endpoint, role)
        try:
            try:
                sock.connect(endpoint)
            except zmq.ZMQError as exc:
                raise AddressError(f"{endpoint}: ZeroMQ cannot connect there ({exc.strerror})") from None
            end = time.monotonic() + timeout
            while not watch.done:
                left = end - time.monotonic()
                if left <= 0 or not monitor.poll(left * 1000):
                    raise watch.error(timeout)
                watch.feed(zmq.utils.monitor.recv_monitor_message(monitor)["event"])
        finally:
            sock.disable_monitor()
            monitor.close(linger=0)

    def subscribe(self, streams: set[str] | None) -> None:
        self.topics = resubscribe(self.sub, self.topics, streams)

    def request(self, msg: dict, timeout: float) -> dict | None:
        if self.dealer is None:
            raise FacecastError(f"{self.addr.url}: this client has no control endpoint (control=False)")
        self.dealer.send(msgpack.packb(msg, use_bin_type=True))
        end = time.monotonic() + timeout
        while (left := end - time.monotonic()) > 0:
            if not self.dealer.poll(left * 1000):
                break
            reply = _unpack(self.dealer.recv_multipart()[-1], self.addr.control)
            if reply.get("id") == msg["id"]:
                return reply                   # older replies (of requests that timed out) are dropped
        return None

    def recv(self, timeout: float) -> list[bytes] | None:
        if timeout > 0 and not self.sub.poll(timeout * 1000):
            return None
        try:
            return self.sub.recv_multipart(zmq.NOBLOCK)
        except zmq.Again:
            return None

    def close(self) -> None:
        for sock in (self.sub, self.dealer):
            if sock is not None:
                sock.close(linger=0)


class _WsLink:
    """One WebSocket for data and commands."""

    def __init__(self, addr: Address, queue: int, timeout: float) -> None:
        from websockets.sync.client import connect

        self.addr = addr
        self.held: deque = deque(maxlen=queue)     # data messages received while a command waited
        self._exit = ExitStack()          # websockets wants connect() used as a context manager
        try:
            self.ws = self._exit.enter_context(connect(addr.url, compression=None, open_timeout=timeout,
                                                       max_size=WS_MAX_SIZE, close_timeout=1))
        except Exception as exc:
            raise ws_connect_error(addr.url, exc, timeout) from None

    def request(self, msg: dict, timeout: float) -> dict | None:
        self.ws.send(json.dumps(msg))
        end = time.monotonic() + timeout
        while (left := end - time.monotonic()) > 0:
            raw = self._recv(left)
            if raw is None:
                break
            if isinstance(raw, str):
                reply = _loads(raw, self.addr.url)
                if reply.get("id") == msg["id"]:
                    return reply
            else:
                self.held.append(raw)          # past `queue`, the oldest go (seq gaps count them)
        return None

    def recv(self, timeout: float) -> bytes | None:
        if self.held:
            return self.held.popleft()
        while True:
            raw = self._recv(timeout)
            if not isinstance(raw, str):
                return raw                     # binary data, or None on timeout
            timeout = 0                        # a stray reply: look for data already here

    def _recv(self, timeout: float):
        from websockets.exceptions import ConnectionClosed

        try:
            return self.ws.recv(timeout=max(timeout, 0))
        except TimeoutError:
            return None
        except ConnectionClosed as exc:
            raise ConnectError(f"{self.addr.url}: the runtime closed the connection ({exc})") from None

    def close(self) -> None:
        self._exit.close()


def ws_connect_error(url: str, exc: BaseException, timeout: float) -> ConnectError:
    """What went wrong opening a WebSocket, in words that name the fix."""
    from websockets.exceptions import InvalidHandshake, InvalidStatus

    if isinstance(exc, ConnectionRefusedError):
        why = "connection refused: nothing is listening there (is `facecast serve` running, with --ws on this port?)"
    elif isinstance(exc, TimeoutError):
        why = (f"the server accepted the connection but made no WebSocket handshake within {timeout:g} s "
               f"(a ZeroMQ port? use tcp://HOST:PORT for the runtime's ZeroMQ data endpoint)")
    elif isinstance(exc, InvalidStatus):
        why = f"the server answered HTTP {exc.response.status_code} instead of a WebSocket: not a facecast runtime"
    elif isinstance(exc, (InvalidHandshake, EOFError)):
        why = ("the peer does not speak WebSocket (a ZeroMQ port? use tcp://HOST:PORT for the runtime's "
               "ZeroMQ data endpoint)")
    else:
        why = f"{type(exc).__name__}: {exc}"
    return ConnectError(f"{url}: cannot connect: {why}")


def _unpack(raw: bytes, endpoint: str) -> dict:
    try:
        reply = msgpack.unpackb(raw, raw=False, strict_map_key=False)
    except Exception:
        reply = None
    if not isinstance(reply, dict):
        raise ConnectError(f"{endpoint}: the answer is not a facecast control reply (not a msgpack map)")
    return reply


def _loads(raw: str, endpoint: str) -> dict:
    try:
        reply = json.loads(raw)
    except ValueError:
        reply = None
    if not isinstance(reply, dict):
        raise ConnectError(f"{endpoint}: the answer is not a facecast control reply (not a JSON object)")
    return reply


class FacecastClient(ClientFigures):
    """A connection to a running runtime (see the module docstring).

    Args:
        url: ``tcp://HOST:PORT`` (ZeroMQ data endpoint) or ``ws://HOST:PORT``,
            optionally ``/STREAM`` to receive one stream only.
        control: ZeroMQ only: the control endpoint (default: data port + 1),
            or False to connect to the data endpoint alone (no commands, and
            the protocol version is then checked on the first message).
        token: sent with every command when the runtime runs with ``--token``.
        timeout: seconds to connect, and to wait for each reply.
        streams: ``"*"`` (default) or a list of stream ids to receive.
        queue: data messages held until taken.

    Raises:
        AddressError: a malformed URL or a host that does not resolve.
        ConnectError: nothing answers, or not a facecast runtime.
        VersionError: a runtime of another protocol version.
    """

    def __init__(self, url: str = DEFAULT_URL, *, control: str | bool = True, token: str | None = None,
                 timeout: float = DEFAULT_TIMEOUT, streams: str | list[str] = "*", queue: int = DEFAULT_QUEUE,
                 context: zmq.Context | None = None) -> None:
        self.address = parse_address(url, control)
        self.url = self.address.url
        self.timeout = float(timeout)
        self._requests = Requests(token)
        self.state = StreamState(self.url)
        if self.address.zmq:
            self._link: _ZmqLink | _WsLink = _ZmqLink(self.address, queue, self.timeout,
                                                      context or zmq.Context.instance())
        else:
            self._link = _WsLink(self.address, queue, self.timeout)
        try:
            self.info = check_version(self.ping(), self.url) if self._can_command else {}
            self.subscribe([self.address.stream] if self.address.stream else streams)
        except BaseException:
            self._link.close()
            raise

    @property
    def _can_command(self) -> bool:
        return not self.address.zmq or self.address.control is not None

    # ------------------------------------------------------------ commands
    def command(self, cmd: str, **args) -> dict:
        """Send one control command; returns the reply (``{"ok": True, ...}``).

        Raises:
            CommandError: the runtime refused it (a subclass per error code,
                e.g. ``NotFoundError``; ``.code``, ``.message``, ``.reply``).
            TimeoutError: no reply within ``timeout``.
        """
        msg = self._requests.make(cmd, args)
        reply = self._link.request(msg, self.timeout)
        if reply is None:
            endpoint = self.address.control or self.url
            raise TimeoutError(f"{endpoint}: no reply to {cmd!r} within {self.timeout:g} s")
        return raise_for_reply(reply, self.address.control or self.url)

    def ping(self) -> dict:
        return self.command("ping")

    def open(self, label: str | None = None, *, kind: str = "generate", **args) -> str:
        """Open a stream (``generate`` with ``label``, or another ``kind``); returns its id.

        Other arguments as in ``docs/PROTOCOL.md``: ``identity``, ``fps``,
        ``loop``, ``duration``, ``enc``, ``mode``, ``items`` (playlist), ...
        """
        return self.command("open", kind=kind, label=label, **args)["stream"]

    def close_stream(self, stream: str) -> dict:
        return self.command("close", stream=stream)

    def list_streams(self) -> list[dict]:
        return self.command("list")["streams"]

    def models(self) -> dict:
        return self.command("models")

    def set(self, stream: str, **changes) -> dict:
        """Change a stream: ``label``, ``identity``, ``fps``, ``enc``."""
        return self.command("set", stream=stream, **changes)

    def stats(self, reset: bool | None = None) -> dict:
        return self.command("stats", reset=reset)

    def subscribe(self, streams: str | list[str] = "*") -> None:
        """Receive every stream (``"*"``) or the ones listed (replaces the previous choice)."""
        wanted = wanted_streams(streams)
        self.state.only = wanted
        if self.address.zmq:
            self._link.subscribe(wanted)
        else:
            self.command("subscribe", streams="*" if wanted is None else sorted(wanted))

    # --------------------------------------------------------------- data
    def events(self, timeout: float | None = None) -> Iterator[MeshFrame | StreamEnd]:
        """Frames and stream ends in arrival order, forever.

        Raises:
            TimeoutError: nothing came for ``timeout`` seconds (default: the client's).
        """
        idle = self.timeout if timeout is None else float(timeout)
        while True:
            event = self.poll(idle)
            if event is None:
                raise TimeoutError(f"{self.url}: no frame within {idle:g} s")
            yield event

    def frames(self, timeout: float | None = None) -> Iterator[MeshFrame]:
        """Every frame in arrival order (stream ends are noted in ``ended``)."""
        for event in self.events(timeout):
            if isinstance(event, MeshFrame):
                yield event

    def recv(self, timeout: float | None = None) -> MeshFrame:
        """The next frame (TimeoutError after ``timeout`` seconds without one)."""
        return next(self.frames(timeout))

    def latest(self, timeout: float = 0.0) -> dict[str, MeshFrame]:
        """Everything waiting now (after up to ``timeout`` s for the first message):
        the newest frame of each stream that sent one."""
        newest: dict[str, MeshFrame] = {}
        wait = float(timeout)
        while (event := self.poll(wait)) is not None:
            if isinstance(event, MeshFrame):
                newest[event.stream] = event
            wait = 0.0
        return newest

    def poll(self, timeout: float = 0.0) -> MeshFrame | StreamEnd | None:
        """The next frame or stream end, or None after ``timeout`` seconds without one."""
        end = time.monotonic() + timeout
        while True:
            raw = self._link.recv(max(end - time.monotonic(), 0.0))
            if raw is None:
                return None
            event = self.state.feed(raw)
            if event is not None:
                return event

    def close(self) -> None:
        self._link.close()

    def __enter__(self) -> "FacecastClient":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
