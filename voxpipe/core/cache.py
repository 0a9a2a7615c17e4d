"""Where voxpipe keeps files it derives on this machine (joined model parts, compiled kernels).

$VOXPIPE_CACHE_DIR, else $XDG_CACHE_HOME/voxpipe, else ~/.cache/voxpipe. Everything there can be
deleted at any time: it is made again on next use.
"""

from __future__ import annotations

import os
from pathlib import Path

CACHE_ENV = "VOXPIPE_CACHE_DIR"


def cache_root() -> Path:
    """The cache directory (not created here)."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg).expanduser() if xdg else Path.home() / ".cache") / "voxpipe"
