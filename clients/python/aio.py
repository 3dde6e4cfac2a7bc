"""``AsyncFacecastClient``: the asyncio twin of ``FacecastClient``.

    from clients.python import AsyncFacecastClient

    async def main():
        async with await AsyncFacecastClient.connect("ws://127.0.0.1:8765") as fc:
            sid = await fc.open(label="mouth_open", loop=True)
            async for frame in fc.frames():
                ...

The same methods as ``FacecastClient``, as coroutines; ``events()`` and
``frames()`` are async iterators. The frame state and the errors are the
blocking client's (``clients.python.core``); only the sockets differ.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import deque
from typing import AsyncIterator

import msgpack
import zmq
import zmq.asyncio
import zmq.utils.monitor

from clients.python.client import WS_MAX_SIZE, _loads, _unpack, ws_connect_error
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

__all__ = ["AsyncFacecastClient"]

#: the shortest wait for a WebSocket message (s): asking for "what is already here"
POLL_S = 1e-3


class _AsyncZmqLink:
    def __init__(self, addr: Address, queue: int) -> None:
        self.addr = addr
        self.sub, self.dealer = zmq_sockets(zmq.asyncio.Context.instance(), addr, queue)
        self.topics: list[bytes] = []

    async def connect(self, timeout: float) -> None:
        await self._connect(self.sub, self.addr.url, "data", timeout)
        if self.dealer is not None:
            await self._connect(self.dealer, self.addr.control, "control", timeout)

    @staticmethod
    async def _connect(sock, endpoint: str, role: str, timeout: float) -> None:
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
                if left <= 0 or not await monitor.poll(left * 1000):
                    raise watch.error(timeout)
                watch.feed(zmq.utils.monitor.parse_monitor_message(await monitor.recv_multipart())["event"])
        finally:
            sock.disable_monitor()
            monitor.close(linger=0)

    def subscribe(self, streams: set[str] | None) -> None:
        self.topics = resubscribe(self.sub, self.topics, streams)

    async def request(self, msg: dict, timeout: float) -> dict | None:
        if self.dealer is None:
            raise FacecastError(f"{self.addr.url}: this client has no control endpoint (control=False)")
        await self.dealer.send(msgpack.packb(msg, use_bin_type=True))
        end = time.monotonic() + timeout
        while (left := end - time.monotonic()) > 0:
            if not await self.dealer.poll(left * 1000):
                break
            reply = _unpack((await self.dealer.recv_multipart())[-1], self.addr.control)
            if reply.get("id") == msg["id"]:
                return reply
        return None

    async def recv(self, timeout: float) -> list[bytes] | None:
        if timeout > 0 and not await self.sub.poll(timeout * 1000):
            return None
        try:
            return await self.sub.recv_multipart(zmq.NOBLOCK)
        except zmq.Again:
            return None

    async def close(self) -> None:
        for sock in (self.sub, self.dealer):
            if sock is not None:
                sock.close(linger=0)


class _AsyncWsLink:
    def __init__(self, addr: Address, queue: int) -> None:
        self.addr = addr
        self.held: deque = deque(maxlen=queue)
        self.ws = None

    async def connect(self, timeout: float) -> None:
        from websockets.asyncio.client import connect

        try:
            self.ws = await connect(self.addr.url, compression=None, open_timeout=timeout, max_size=WS_MAX_SIZE,
                                    close_timeout=1)
        except Exception as exc:
            raise ws_connect_error(self.addr.url, exc, timeout) from None

    async def request(self, msg: dict, timeout: float) -> dict | None:
        await self.ws.send(json.dumps(msg))
        end = time.monotonic() + timeout
        while (left := end - time.monotonic()) > 0:
            raw = await self._recv(left)
            if raw is None:
                break
            if isinstance(raw, str):
                reply = _loads(raw, self.addr.url)
                if reply.get("id") == msg["id"]:
                    return reply
            else:
                self.held.append(raw)
        return None

    async def recv(self, timeout: float) -> bytes | None:
        if self.held:
            return self.held.popleft()
        while True:
            raw = await self._recv(timeout)
            if not isinstance(raw, str):
                return raw
            timeout = 0

    async def _recv(self, timeout: float):
        from websockets.exceptions import ConnectionClosed

        try:
            # a zero timeout would cancel recv() before it looks at what is already received
            return await asyncio.wait_for(self.ws.recv(), timeout=max(timeout, POLL_S))
        except TimeoutError:
            return None
        except ConnectionClosed as exc:
            raise ConnectError(f"{self.addr.url}: the runtime closed the connection ({exc})") from None

    async def close(self) -> None:
        if self.ws is not None:
            await self.ws.close()


class AsyncFacecastClient(ClientFigures):
    """Create with ``await AsyncFacecastClient.connect(url, ...)`` (arguments as ``FacecastClient``)."""

    def __init__(self, address: Address, link, timeout: float, token: str | None) -> None:
        self.address = address
        self.url = address.url
        self.timeout = timeout
        self.state = StreamState(self.url)
        self.info: dict = {}
        self._link = link
        self._requests = Requests(token)

    @classmethod
    async def connect(cls, url: str = DEFAULT_URL, *, control: str | bool = True, token: str | None = None,
                      timeout: float = DEFAULT_TIMEOUT, streams: str | list[str] = "*",
                      queue: int = DEFAULT_QUEUE) -> "AsyncFacecastClient":
        address = parse_address(url, control)
        link = _AsyncZmqLink(address, queue) if address.zmq else _AsyncWsLink(address, queue)
        client = cls(address, link, float(timeout), token)
        try:
            await link.connect(client.timeout)
            if not address.zmq or address.control is not None:
                client.info = check_version(await client.ping(), client.url)
            await client.subscribe([address.stream] if address.stream else streams)
        except BaseException:
            await link.close()
            raise
        return client

    # ------------------------------------------------------------ commands
    async def command(self, cmd: str, **args) -> dict:
        msg = self._requests.make(cmd, args)
        reply = await self._link.request(msg, self.timeout)
        if reply is None:
            raise TimeoutError(f"{self.address.control or self.url}: no reply to {cmd!r} within {self.timeout:g} s")
        return raise_for_reply(reply, self.address.control or self.url)

    async def ping(self) -> dict:
        return await self.command("ping")

    async def open(self, label: str | None = None, *, kind: str = "generate", **args) -> str:
        return (await self.command("open", kind=kind, label=label, **args))["stream"]

    async def close_stream(self, stream: str) -> dict:
        return await self.command("close", stream=stream)

    async def list_streams(self) -> list[dict]:
        return (await self.command("list"))["streams"]

    async def models(self) -> dict:
        return await self.command("models")

    async def set(self, stream: str, **changes) -> dict:
        return await self.command("set", stream=stream, **changes)

    async def stats(self, reset: bool | None = None) -> dict:
        return await self.command("stats", reset=reset)

    async def subscribe(self, streams: str | list[str] = "*") -> None:
        wanted = wanted_streams(streams)
        self.state.only = wanted
        if self.address.zmq:
            self._link.subscribe(wanted)
        else:
            await self.command("subscribe", streams="*" if wanted is None else sorted(wanted))

    # --------------------------------------------------------------- data
    async def events(self, timeout: float | None = None) -> AsyncIterator[MeshFrame | StreamEnd]:
        idle = self.timeout if timeout is None else float(timeout)
        while True:
            event = await self.poll(idle)
            if event is None:
                raise TimeoutError(f"{self.url}: no frame within {idle:g} s")
            yield event

    async def frames(self, timeout: float | None = None) -> AsyncIterator[MeshFrame]:
        async for event in self.events(timeout):
            if isinstance(event, MeshFrame):
                yield event

    async def recv(self, timeout: float | None = None) -> MeshFrame:
        async for frame in self.frames(timeout):
            return frame
        raise AssertionError("unreachable: frames() ends only by raising")

    async def latest(self, timeout: float = 0.0) -> dict[str, MeshFrame]:
        newest: dict[str, MeshFrame] = {}
        wait = float(timeout)
        while (event := await self.poll(wait)) is not None:
            if isinstance(event, MeshFrame):
                newest[event.stream] = event
            wait = 0.0
        return newest

    async def poll(self, timeout: float = 0.0) -> MeshFrame | StreamEnd | None:
        """The next frame or stream end, or None after ``timeout`` seconds without one."""
        end = time.monotonic() + timeout
        while True:
            raw = await self._link.recv(max(end - time.monotonic(), 0.0))
            if raw is None:
                return None
            event = self.state.feed(raw)
            if event is not None:
                return event

    async def close(self) -> None:
        await self._link.close()

    async def __aenter__(self) -> "AsyncFacecastClient":
        return self

    async def __aexit__(self, *exc) -> None:
        await self.close()

