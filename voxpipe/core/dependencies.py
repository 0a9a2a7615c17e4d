"""Optional dependencies: is a package there, without importing it (imports can be slow)."""

from __future__ import annotations

import importlib.util
import sys


def is_installed(module: str) -> bool:
    """True when `module` can be imported (checked without importing it)."""
    if module in sys.modules:
        return sys.modules[module] is not None
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False
