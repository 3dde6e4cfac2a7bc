"""The transports: thin asyncio adapters around the sans-I/O engine.

One asyncio loop, one thread: a ticker calls ``Engine.tick`` at each
deadline and hands the messages to

* ZeroMQ XPUB (data, ``tcp://127.0.0.1:5555``): multipart ``[topic, header,
  payload]``. The socket runs in manual-subscription mode, so when a
  subscriber joins, its subscription is applied and the topology of every
  stream it matches is published *before* any frame can reach it (the
  late-joiner rule). Sends never block: past ``sndhwm`` messages queued for
  one subscriber, ZeroMQ drops that subscriber's messages (only its own),
  and subscribers count their drops from gaps in ``seq``. The trade-off: a
  subscriber that reads slower than the streams arrive still gets up to
  ``sndhwm`` messages plus the kernel buffers (``sndbuf`` here, its own
  receive buffer and ``RCVHWM``) of backlog, i.e. it lags rather than
  drops until those fill; a real-time subscriber drains its socket and keeps
  the newest frame of each stream (``docs/PROTOCOL.md``).
* ZeroMQ ROUTER (control, ``tcp://127.0.0.1:5556``): msgpack maps; the reply
  goes back with the request's envelope (a DEALER gets it as its last frame).
* WebSocket (``127.0.0.1:8765``): the same data messages as one binary
  message each, JSON text control messages, and the static web client
  over plain HTTP on the same port. Per client: a queue holding at most the
  newest frame of each stream (an older one still queued is replaced and
  counted as dropped for that client), control replies, topology and end
  messages that are never dropped, and one writer task. A client that stops
  reading stalls only its own writer; the engine and every other client go
  on. Compression is off: per-message deflate costs about a hundredfold in
  mesh throughput.

Binding beyond loopback needs a token (refused otherwise), and then every
control command must carry it.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import mimetypes
import re
import signal
import time
from collections import OrderedDict, deque
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable
from urllib.parse import unquote, urlsplit

import zmq
import zmq.asyncio

from runtime import protocol as P
from runtime.engine import Engine
from runtime.render.lighting import SKIN, LightRig
from runtime.render.scene import BACKGROUND
from runtime.render.shaders import SHADER_DIR

DEFAULT_ZMQ = "tcp://127.0.0.1:5555"
DEFAULT_CONTROL = "tcp://127.0.0.1:5556"
DEFAULT_WS = "127.0.0.1:8765"
#: a WebSocket client whose unread control replies exceed this is disconnected
MAX_PENDING_REPLIES = 256
#: the ticker never sleeps longer than this (s), so new streams start promptly
MAX_IDLE_SLEEP = 0.02
#: a ZeroMQ control socket gives up on messages above this size (bytes); the
#: engine answers anything up to ``protocol.MAX_CONTROL_BYTES`` with an error
ZMQ_MAX_MESSAGE = 8 * P.MAX_CONTROL_BYTES
#: ``GET /shaders/NAME.glsl`` serves ``shaders/NAME.glsl`` (a plain name: no folders, no dots)
SHADER_PATH = re.compile(r"shaders/([A-Za-z0-9_-]+)\.glsl")


class ServeError(Exception):
    """The runtime cannot start as asked (a busy port, an unsafe bind); the message says which."""


@dataclass(frozen=True)
class ServeConfig:
    zmq: str | None = DEFAULT_ZMQ            #: data endpoint (None: no ZeroMQ data)
    control: str | None = DEFAULT_CONTROL    #: control endpoint (None: no ZeroMQ control)
    ws: str | None = DEFAULT_WS              #: HOST:PORT of the WebSocket + HTTP server (None: none)
    web: Path | None = None                  #: the static folder served over HTTP
    token: str | None = None
    sndhwm: int = 256                        #: ZeroMQ messages queued per subscriber before drops
    sndbuf: int = 2 * 2 ** 20                #: kernel send buffer per ZeroMQ connection (bytes)
    ws_write_limit: int = 256 * 1024         #: bytes buffered per WebSocket client before its writer waits


def is_loopback(host: str) -> bool:
    if host in ("localhost", "ip6-localhost"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False                          # "*", "0.0.0.0" style wildcards and names


def tcp_host(endpoint: str) -> str:
    """``tcp://HOST:PORT`` -> HOST (other transports, e.g. ``ipc://``, are local)."""
    if not endpoint.startswith("tcp://"):
        return "127.0.0.1" if endpoint.startswith(("ipc://", "inproc://")) else endpoint
    return endpoint[len("tcp://"):].rsplit(":", 1)[0]


def split_hostport(value: str) -> tuple[str, int]:
    host, _, port = value.rpartition(":")
    if not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ServeError(f"{value!r}: expected HOST:PORT")
    return host.strip("[]"), int(port)


def check_binds(config: ServeConfig) -> None:
    """Refuse binding beyond loopback without a token."""
    hosts = [(name, tcp_host(ep)) for name, ep in (("--zmq", config.zmq), ("--control", config.control)) if ep]
    if config.ws:
        hosts.append(("--ws", split_hostport(config.ws)[0]))
    wide = [f"{flag} {host}" for flag, host in hosts if not is_loopback(host)]
    if wide and not config.token:
        raise ServeError(f"binding beyond loopback ({', '.join(wide)}) needs --token: anyone who can reach "
                         f"the port could otherwise drive this runtime")


@dataclass(eq=False)
class WsClient:
    """One WebSocket client's queue and counters."""

    conn: object
    streams: set[str] | None = None           #: None: every stream
    pending: OrderedDict = field(default_factory=OrderedDict)   #: stream -> newest frame bytes
    control: deque = field(default_factory=deque)               #: replies, topology, end: never dropped
    topologies: set[str] = field(default_factory=set)           #: streams whose topology it has
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    sent: int = 0
    dropped: int = 0

    def wants(self, stream: str) -> bool:
        return self.streams is None or stream in self.streams

    def offer(self, msg: P.Message, data: bytes, topology: Callable[[str], P.Message]) -> None:
        kind = msg.header["type"]
        if kind == "frame":
            if msg.stream not in self.topologies:
                self.control.append(topology(msg.stream).ws_bytes())
                self.topologies.add(msg.stream)
            if msg.stream in self.pending:
                self.dropped += 1
            self.pending[msg.stream] = data
        elif kind == "topology":
            self.control.append(data)
            self.topologies.add(msg.stream)
        else:                                              # end
            self.pending.pop(msg.stream, None)
            self.topologies.discard(msg.stream)
            self.control.append(data)
        self.wake.set()

    def reply(self, text: str) -> bool:
        """Queue a control reply; False when the client has stopped reading them."""
        if len(self.control) >= MAX_PENDING_REPLIES:
            return False
        self.control.append(text)
        self.wake.set()
        return True

    async def write(self) -> None:
        while True:
            await self.wake.wait()
            self.wake.clear()
            while self.control or self.pending:
                data = self.control.popleft() if self.control else self.pending.popitem(last=False)[1]
                await self.conn.send(data)
                self.sent += 1


class Server:
    """The runtime's transports around one engine."""

    def __init__(self, engine: Engine, config: ServeConfig = ServeConfig(),
                 clock: Callable[[], float] = time.monotonic) -> None:
        check_binds(config)
        self.engine = engine
        self.config = config
        self.clock = clock
        self.clients: set[WsClient] = set()
        self.ws_clients_total = 0
        self.published = 0
        self.subscriptions = 0
        self.ready = asyncio.Event()
        self._ctx: zmq.asyncio.Context | None = None
        self._pub = self._router = None
        engine.transport_stats = self.transport_stats

    # ---- life cycle -------------------------------------------------------
    async def run(self, stop: asyncio.Event | None = None) -> None:
        """Serve until ``stop`` is set (or the task is cancelled); closes everything."""
        stop = stop or asyncio.Event()
        self._ctx = zmq.asyncio.Context()
        tasks: list[asyncio.Task] = []
        ws_server = None
        try:
            if self.config.zmq:
                self._pub = self._bind(zmq.XPUB, self.config.zmq, "--zmq")
                self._pub.setsockopt(zmq.XPUB_MANUAL, 1)
                tasks.append(asyncio.create_task(self._subscriptions()))
            if self.config.control:
                self._router = self._bind(zmq.ROUTER, self.config.control, "--control")
                tasks.append(asyncio.create_task(self._control()))
            if self.config.ws:
                ws_server = await self._start_ws()
            tasks.append(asyncio.create_task(self._ticker()))
            self.ready.set()
            waiter = asyncio.create_task(stop.wait())
            done, _ = await asyncio.wait([waiter, *tasks], return_when=asyncio.FIRST_COMPLETED)
            for t in done:
                if t is not waiter and t.exception() is not None:
                    raise t.exception()
            waiter.cancel()
        finally:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            if ws_server is not None:
                ws_server.close()
                await ws_server.wait_closed()
            for sock in (self._pub, self._router):
                if sock is not None:
                    sock.close(linger=0)
            self._ctx.term()

    def _bind(self, kind: int, endpoint: str, flag: str):
        sock = self._ctx.socket(kind)
        sock.setsockopt(zmq.LINGER, 0)
        if kind == zmq.XPUB:
            sock.setsockopt(zmq.SNDHWM, self.config.sndhwm)
            sock.setsockopt(zmq.SNDBUF, self.config.sndbuf)
        else:
            sock.setsockopt(zmq.MAXMSGSIZE, ZMQ_MAX_MESSAGE)
        try:
            sock.bind(endpoint)
        except zmq.ZMQError as exc:
            sock.close(linger=0)
            raise ServeError(f"cannot bind {flag} {endpoint}: {exc.strerror} (another facecast serve? "
                             f"choose another {flag})") from exc
        return sock

    async def _start_ws(self):
        from websockets.asyncio.server import serve

        host, port = split_hostport(self.config.ws)
        try:
            # max_size above the control limit, so an oversized command gets a too_large reply
            server = await serve(self._ws_handler, host, port, compression=None, max_size=2 * P.MAX_CONTROL_BYTES,
                                 process_request=self._http, close_timeout=0.5, ping_interval=5, ping_timeout=10,
                                 write_limit=self.config.ws_write_limit)
        except OSError as exc:
            raise ServeError(f"cannot serve --ws {self.config.ws}: {exc.strerror or exc} (another facecast "
                             f"serve? choose another --ws)") from exc
        return server

    # ---- ticking ----------------------------------------------------------
    async def _ticker(self) -> None:
        while True:
            deadline = self.engine.next_deadline()
            now = self.clock()
            if deadline is None or deadline > now:
                wait = MAX_IDLE_SLEEP if deadline is None else min(deadline - now, MAX_IDLE_SLEEP)
                await asyncio.sleep(wait)
                continue
            messages = self.engine.tick(now)
            t0 = time.perf_counter()
            await self.publish(messages)
            if messages:
                self.engine.record_send((time.perf_counter() - t0) * 1e3)
            # let the writers and the control plane run even when the engine is
            # behind and the next deadline has already passed
            await asyncio.sleep(0)

    async def publish(self, messages: list[P.Message]) -> None:
        for m in messages:
            if self._pub is not None:
                await self._pub.send_multipart(m.zmq_parts(), copy=False)
                self.published += 1
            wanting = [c for c in self.clients if c.wants(m.stream)]
            if wanting:
                data = m.ws_bytes()
                for c in wanting:
                    c.offer(m, data, self.engine.topology)

    # ---- ZeroMQ -----------------------------------------------------------
    async def _subscriptions(self) -> None:
        """Apply each subscription, then publish the topologies it matches (late joiners).

        In manual mode ``setsockopt(SUBSCRIBE)`` applies to the pipe of the
        last message received, and libzmq forgets that pipe whenever another
        subscriber's pipe terminates. So each subscription is received and
        applied in one synchronous step on a shadow of the socket, with no
        other socket operation (a send from the ticker) in between; awaiting
        the asyncio ``recv()`` and applying it afterwards loses a subscription
        now and then while subscribers churn.
        """
        sync = zmq.Socket.shadow(self._pub.underlying)
        while True:
            await self._pub.poll(flags=zmq.POLLIN)
            joined = []
            while True:
                try:
                    msg = sync.recv(zmq.NOBLOCK)
                except zmq.Again:
                    break
                if not msg:
                    continue
                prefix = bytes(msg[1:])
                if msg[0] == 1:
                    sync.setsockopt(zmq.SUBSCRIBE, prefix)
                    self.subscriptions += 1
                    joined.append(prefix)
                elif msg[0] == 0:
                    sync.setsockopt(zmq.UNSUBSCRIBE, prefix)
            for prefix in joined:
                for sid in list(self.engine.sessions):
                    if P.topic(sid).startswith(prefix):
                        await self._pub.send_multipart(self.engine.topology(sid).zmq_parts(), copy=False)
                        self.published += 1

    async def _control(self) -> None:
        while True:
            frames = await self._router.recv_multipart(copy=True)
            if len(frames) < 2:
                continue
            reply = self.engine.handle_raw(frames[-1], "msgpack", self.clock())
            try:
                await self._router.send_multipart(frames[:-1] + [reply], flags=zmq.NOBLOCK)
            except zmq.ZMQError:              # the client went away before its reply: nothing to do
                pass

    # ---- WebSocket --------------------------------------------------------
    async def _ws_handler(self, conn) -> None:
        client = WsClient(conn)
        self.clients.add(client)
        self.ws_clients_total += 1
        writer = asyncio.create_task(client.write())
        try:
            async for raw in conn:
                if isinstance(raw, bytes):
                    reply = P.error(P.BAD_REQUEST, "control messages over WebSocket are JSON text, not binary")
                    text = json.dumps(reply)
                else:
                    text = self._ws_command(client, raw)
                if not client.reply(text):
                    await conn.close(1008, "too many unread replies")
                    break
        except Exception:                     # a connection that breaks mid-message: drop the client only
            pass
        finally:
            self.clients.discard(client)
            writer.cancel()
            await asyncio.gather(writer, return_exceptions=True)

    def _ws_command(self, client: WsClient, raw: str) -> str:
        try:
            msg = P.parse_command(raw, "json")
        except P.ProtocolError as exc:
            return json.dumps(P.error(exc.code, exc.message))
        if msg.get("cmd") == "subscribe":
            return P.pack_reply(self.engine.refuse(msg) or self._subscribe(client, msg), "json")
        return P.pack_reply(self.engine.handle(msg, self.clock()), "json")

    def _subscribe(self, client: WsClient, msg: dict) -> dict:
        streams = msg.get("streams", "*")
        if streams == "*":
            client.streams = None
        elif isinstance(streams, list) and all(isinstance(s, str) for s in streams) and len(streams) <= 4096:
            client.streams = set(streams)
            for sid in list(client.pending):
                if sid not in client.streams:
                    client.pending.pop(sid)
        else:
            return P.error(P.BAD_ARGUMENT, "'streams' must be \"*\" or a list of stream ids", msg)
        return P.ok(msg, streams="*" if client.streams is None else sorted(client.streams))

    def _http(self, conn, request):
        """Plain HTTP on the WebSocket port: the static web client, plus the
        shaders and the light rig it draws with (``/shaders/NAME.glsl``,
        ``/shaders/lighting.json``), so the page keeps no copy of them."""
        if request.headers.get("Upgrade", "").lower() == "websocket":
            return None
        path = unquote(urlsplit(request.path).path).lstrip("/") or "index.html"
        if path == "shaders/lighting.json":
            return _ok(json.dumps(lighting()).encode(), "application/json")
        if path.startswith("shaders/"):
            match = SHADER_PATH.fullmatch(path)
            target = SHADER_DIR / f"{match[1]}.glsl" if match else None
            if target is None or not target.is_file():
                return conn.respond(404, f"not found: /{path}\n")
            return _ok(target.read_bytes(), "text/plain; charset=utf-8")
        root = self.config.web
        if root is None or not Path(root).is_dir():
            return conn.respond(404, "no web client is installed with this runtime "
                                     "(facecast serve --web DIR serves one)\n")
        base = Path(root).resolve()
        target = (base / path).resolve()
        if base not in target.parents and target != base or not target.is_file():
            return conn.respond(404, f"not found: /{path}\n")
        return _ok(target.read_bytes(), mimetypes.guess_type(target.name)[0] or "application/octet-stream")

    # ---- figures ----------------------------------------------------------
    def transport_stats(self) -> dict:
        return {
            "zmq": {"endpoint": self.config.zmq, "published": self.published, "subscriptions": self.subscriptions}
            if self.config.zmq else None,
            "ws": {"endpoint": self.config.ws, "clients": len(self.clients), "clients_total": self.ws_clients_total,
                   "per_client": [{"sent": c.sent, "dropped": c.dropped, "queued": len(c.pending) + len(c.control)}
                                  for c in list(self.clients)[:64]]}
            if self.config.ws else None,
        }


def lighting() -> dict:
    """What ``shaders/mesh.glsl`` is drawn with on the desktop: the light rig,
    the skin material and the background (sRGB + alpha), for the web page."""
    return {"rig": asdict(LightRig()), "material": asdict(SKIN), "background": list(BACKGROUND)}


def _ok(body: bytes, ctype: str):
    """A 200 response that browsers revalidate (the files change with the runtime)."""
    from websockets.datastructures import Headers
    from websockets.http11 import Response

    return Response(200, "OK", Headers([("Content-Type", ctype), ("Content-Length", str(len(body))),
                                        ("Cache-Control", "no-cache")]), body)


def serve_forever(engine: Engine, config: ServeConfig, on_ready: Callable[[Server], None] | None = None,
                  until: Callable[[Server], "asyncio.Future | None"] | None = None) -> None:
    """Run the server in this thread until SIGTERM / Ctrl-C (or ``until`` finishes)."""

    async def main() -> None:
        server = Server(engine, config)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        runner = asyncio.create_task(server.run(stop))
        ready = asyncio.create_task(server.ready.wait())
        await asyncio.wait([runner, ready], return_when=asyncio.FIRST_COMPLETED)
        if runner.done():
            ready.cancel()
            return runner.result()
        if on_ready is not None:
            on_ready(server)
        if until is not None:
            extra = asyncio.create_task(until(server))
            extra.add_done_callback(lambda _: stop.set())
        await runner

    asyncio.run(main())
