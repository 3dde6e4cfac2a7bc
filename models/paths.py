"""Where facecast keeps data by default.

``FACECAST_DATA`` wins; otherwise ``data/`` in the source checkout when
facecast runs from one, else ``~/.local/share/facecast``. Every command takes
explicit paths too; these are only the defaults.
"""

from __future__ import annotations

import os
from pathlib import Path

ENV_DATA = "FACECAST_DATA"


def checkout_root() -> Path | None:
    """The source checkout facecast runs from, if any (holds ``pyproject.toml``)."""
    root = Path(__file__).resolve().parent.parent
    return root if (root / "pyproject.toml").is_file() else None


#: the shipped checkpoints, inside the package (``models/checkpoints``)
CHECKPOINTS = Path(__file__).resolve().parent / "checkpoints"
S2D_SYNTHFACE = CHECKPOINTS / "s2d_synthface.safetensors"
TRACKER_SYNTHFACE = CHECKPOINTS / "tracker_synthface.safetensors"


def data_dir() -> Path:
    """The default folder for generated data, caches and training runs."""
    if os.environ.get(ENV_DATA):
        return Path(os.environ[ENV_DATA]).expanduser()
    root = checkout_root()
    if root is not None:
        return root / "data"
    return Path.home() / ".local" / "share" / "facecast"
