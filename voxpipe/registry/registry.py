"""Component registry: discovers plugins through entry points and looks components up by name."""

from __future__ import annotations

import difflib
import os
from dataclasses import dataclass
from importlib import metadata
from typing import Any, Iterable

import pluggy
from pydantic import BaseModel

from voxpipe.core.errors import RegistryError
from voxpipe.registry.hookspecs import ENTRY_POINT_GROUP, PROJECT, VoxpipeSpec

@dataclass(frozen=True)
class Kind:
    """A component kind. top_level: may be a section of its own in a pipeline file (the others
    are nested inside the component that owns them, e.g. a synthesizer's solver)."""

    name: str
    description: str
    top_level: bool = False
    plugin: str = "voxpipe"


BUILTIN_KINDS = (
    Kind("normalizer", "text -> normalized text", top_level=True),
    Kind("chunker", "text -> spans under a token budget", top_level=True),
    Kind("tokenizer", "text -> token ids", top_level=True),
    Kind("transcriber", "prompt audio -> transcript", top_level=True),
    Kind("synthesizer", "a model family: token ids + voice -> waveforms", top_level=True),
    Kind("features", "waveform -> features (e.g. log-mel)"),
    Kind("acoustic_model", "flow matching: conditions and velocity"),
    Kind("guidance", "raw velocity -> guided vector field"),
    Kind("solver", "integrates a vector field"),
    Kind("vocoder", "features -> waveform"),
)
KINDS = tuple(kind.name for kind in BUILTIN_KINDS)
"""The built-in component kinds, in pipeline order (plugins may add more: `Registry.kinds`)."""

PLUGINS_ENV = "VOXPIPE_PLUGINS"


@dataclass(frozen=True)
class ComponentInfo:
    kind: str
    name: str
    cls: type
    params_model: type[BaseModel]
    description: str
    plugin: str
    package: str
    version: str


@dataclass(frozen=True)
class PluginFailure:
    plugin: str
    package: str
    error: str


class Registry:
    """Components by (kind, name), filled by plugins' `register_components` hooks."""

    def __init__(self) -> None:
        self._manager = pluggy.PluginManager(PROJECT)
        self._manager.add_hookspecs(VoxpipeSpec)
        self.kinds: dict[str, Kind] = {kind.name: kind for kind in BUILTIN_KINDS}
        self._components: dict[tuple[str, str], ComponentInfo] = {}
        self._conflicts: dict[tuple[str, str], list[ComponentInfo]] = {}
        self.failures: list[PluginFailure] = []

    # ---- discovery -------------------------------------------------------------------------
    def load_entry_points(self, only: Iterable[str] | None = None) -> None:
        """Load every plugin of the `voxpipe` entry-point group (or only the named ones).

        A plugin that fails to import or register is recorded in `failures`; others still load.
        """
        selected = set(only) if only is not None else None
        for entry_point in sorted(metadata.entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
            if selected is not None and entry_point.name not in selected:
                continue
            dist = entry_point.dist
            package = dist.metadata["Name"] if dist is not None else "?"
            version = dist.version if dist is not None else "?"
            try:
                plugin = entry_point.load()
            except BaseException as error:  # a broken plugin must not break the others, even one that
                # calls sys.exit() or raises KeyboardInterrupt at import: it is recorded, never fatal
                self.failures.append(PluginFailure(entry_point.name, package, f"{type(error).__name__}: {error}"))
                continue
            self.add_plugin(plugin, entry_point.name, package=package, version=version)

    def add_plugin(self, plugin: Any, name: str, *, package: str = "?", version: str = "?") -> None:
        """Register one plugin object (a module or instance with a `register_components` hookimpl)."""
        if self._manager.has_plugin(name):
            self.failures.append(PluginFailure(name, package, f"a plugin named {name!r} is already loaded"))
            return
        try:
            self._manager.register(plugin, name=name)
        except BaseException as error:  # e.g. a hook implementation with the wrong arguments
            self.failures.append(PluginFailure(name, package, f"{type(error).__name__}: {error}"))
            if self._manager.has_plugin(name):  # pluggy may have kept part of it
                self._manager.unregister(name=name)
            return
        # kinds first: the plugin's own components may be of a kind it introduces
        for hook, callback in ((self._manager.hook.register_kinds, self._kind_callback(name)),
                               (self._manager.hook.register_components, self._register_callback(name, package, version))):
            for impl in hook.get_hookimpls():
                if impl.plugin_name != name:
                    continue
                try:
                    impl.function(register=callback)
                except BaseException as error:  # incl. SystemExit/KeyboardInterrupt raised by the hook
                    self.failures.append(PluginFailure(name, package, f"{type(error).__name__}: {error}"))

    def _kind_callback(self, plugin: str):
        def register(name: str, description: str = "", top_level: bool = False) -> None:
            if not isinstance(name, str) or not name.isidentifier():
                raise RegistryError(f"kind names are identifiers such as 'speaker_encoder'; got {name!r}")
            known = self.kinds.get(name)
            if known is not None and known.plugin != plugin:
                raise RegistryError(f"kind {name!r} is already registered by plugin {known.plugin!r}")
            self.kinds[name] = Kind(name, description, top_level, plugin)

        return register

    def register_commands(self, subparsers) -> None:
        """Let every loaded plugin add its `voxpipe` sub-commands (a failing one is recorded)."""
        for impl in self._manager.hook.register_commands.get_hookimpls():
            try:
                impl.function(subparsers=subparsers)
            except BaseException as error:  # incl. SystemExit/KeyboardInterrupt raised by the hook
                self.failures.append(PluginFailure(impl.plugin_name, "?", f"register_commands: {type(error).__name__}: {error}"))

    def _register_callback(self, plugin: str, package: str, version: str):
        def register(cls: type) -> None:
            kind, name = getattr(cls, "kind", ""), getattr(cls, "name", "")
            if kind not in self.kinds:
                raise RegistryError(f"{cls.__qualname__} has kind {kind!r}; expected one of {', '.join(self.kinds)} "
                                    "(a plugin adds kinds with the register_kinds hook)")
            if not name:
                raise RegistryError(f"{cls.__qualname__} has no `name`")
            params_model = getattr(cls, "Params", None)
            if not (isinstance(params_model, type) and issubclass(params_model, BaseModel)):
                raise RegistryError(f"{cls.__qualname__}.Params must be a pydantic model")
            summary = cls.summary() if hasattr(cls, "summary") else (cls.__doc__ or "").strip().split("\n")[0]
            info = ComponentInfo(kind, name, cls, params_model, summary, plugin, package, version)
            key = (kind, name)
            if key in self._components:
                self._conflicts.setdefault(key, [self._components[key]]).append(info)
                first = self._components[key]
                raise RegistryError(
                    f"{kind} {name!r} is registered twice: by plugin {first.plugin!r} ({first.package} "
                    f"{first.version}) and by plugin {plugin!r} ({package} {version})"
                )
            self._components[key] = info

        return register

    # ---- lookup ----------------------------------------------------------------------------
    def top_level_kinds(self) -> list[str]:
        """Kinds that may be sections of a pipeline file, in pipeline order."""
        return [name for name, kind in self.kinds.items() if kind.top_level]

    def names(self, kind: str) -> list[str]:
        return sorted(name for (k, name) in self._components if k == kind)

    def components(self) -> list[ComponentInfo]:
        order = {kind: index for index, kind in enumerate(self.kinds)}
        return sorted(self._components.values(), key=lambda info: (order[info.kind], info.name))

    def get(self, kind: str, name: str) -> ComponentInfo:
        """The component `name` of `kind`; unknown names list close matches and all names."""
        if kind not in self.kinds:
            raise RegistryError(f"unknown component kind {kind!r}; expected one of {', '.join(self.kinds)}")
        key = (kind, name)
        if key in self._conflicts:
            providers = " and ".join(f"plugin {i.plugin!r} ({i.package} {i.version})" for i in self._conflicts[key])
            raise RegistryError(f"{kind} {name!r} is provided by both {providers}; uninstall one or restrict "
                                f"plugins with {PLUGINS_ENV}")
        if key not in self._components:
            raise RegistryError(unknown_name_message(kind, name, self.names(kind)))
        return self._components[key]


def unknown_name_message(kind: str, name: object, available: list[str]) -> str:
    close = difflib.get_close_matches(str(name), available, n=3, cutoff=0.5)
    hint = f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
    listing = ", ".join(available) if available else "(none registered)"
    return f"unknown {kind} {name!r}{hint} Available {kind} types: {listing}"


_registry: Registry | None = None


def get_registry() -> Registry:
    """The process-wide registry, loaded from entry points on first use.

    `VOXPIPE_PLUGINS=a,b` restricts loading to the named entry points.
    """
    global _registry
    if _registry is None:
        registry = Registry()
        restrict = os.environ.get(PLUGINS_ENV)
        only = [p.strip() for p in restrict.split(",") if p.strip()] if restrict else None
        registry.load_entry_points(only)
        _registry = registry
    return _registry


def reset_registry() -> None:
    """Forget the loaded registry (tests; after installing a plugin in-process)."""
    global _registry
    _registry = None
