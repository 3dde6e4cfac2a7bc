"""facecast clients: the Python client, the viewer window, the recorder and
the browser page (``clients/web``). They speak only the wire protocol
(``runtime.protocol``) and use the renderer core (``runtime.render``)."""

from pathlib import Path


def web_folder() -> Path:
    """The browser page's static folder (the ``facecast.web`` entry point the
    runtime serves over HTTP on its WebSocket port)."""
    return Path(__file__).resolve().parent / "web"
