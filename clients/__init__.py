"""facecast clients: the Python client, the viewer window, the recorder and
the browser page (``clients/web``). They speak only the wire protocol
(``runtime.protocol``) and use the renderer core (``runtime.render``)."""
