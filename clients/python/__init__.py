"""The Python client of a facecast runtime: ``FacecastClient`` (blocking) and
``AsyncFacecastClient`` (asyncio), over ZeroMQ (``tcp://``) or WebSocket
(``ws://``). Frames are ``MeshFrame``s (numpy arrays and their metadata);
control commands are methods that return the reply or raise a typed
``CommandError``. See ``docs/CLIENTS.md`` and ``clients/examples/``."""

from clients.python.aio import AsyncFacecastClient
from clients.python.client import FacecastClient
from clients.python.core import (
                                 COMMAND_ERRORS,
                                 AddressError,
                                 CommandError,
                                 ConnectError,
                                 FacecastError,
                                 MeshFrame,
                                 StreamEnd,
                                 StreamState,
                                 VersionError,
                                 parse_address,
)

__all__ = ["AddressError", "AsyncFacecastClient", "COMMAND_ERRORS", "CommandError", "ConnectError",
           "FacecastClient", "FacecastError", "MeshFrame", "StreamEnd", "StreamState", "VersionError",
           "parse_address"]
