"""facecast runtime: the engine, sources, registry, wire protocol, transports,
renderer core and the ``facecast`` command line."""
