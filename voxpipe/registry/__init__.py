"""Plugin registry: pluggy hook spec + `importlib.metadata` entry points (group `voxpipe`)."""

from voxpipe.registry.hookspecs import ENTRY_POINT_GROUP, hookimpl, hookspec
from voxpipe.registry.registry import (
    KINDS,
    Kind,
    ComponentInfo,
    PluginFailure,
    Registry,
    get_registry,
    reset_registry,
)

__all__ = [
    "ENTRY_POINT_GROUP", "KINDS", "Kind", "ComponentInfo", "PluginFailure", "Registry",
    "get_registry", "hookimpl", "hookspec", "reset_registry",
]
