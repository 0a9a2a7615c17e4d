"""Pipeline files: YAML -> validated configuration, in two phases.

Phase 1 checks the structure `{kind: {type: name, ...params}, settings: {...}}`; phase 2 asks the
registry for the class of each `type` and validates the params against that class's own pydantic
`Params`. Dotted overrides (`solver.num_steps=8`) are applied to the raw mapping first, so they go
through the same validation. Every error names the file, the key path, the value and what was
expected.
"""

from __future__ import annotations

import copy
import difflib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping

import yaml
from pydantic import BaseModel, ValidationError

from voxpipe.core.errors import ConfigError, RegistryError
from voxpipe.core.settings import PipelineSettings
from voxpipe.core.weights import is_hub_uri, resolve_path
from voxpipe.registry import KINDS, ComponentInfo, Registry, get_registry

SETTINGS_KEY = "settings"
TOP_LEVEL_KEYS = (*KINDS, SETTINGS_KEY)



def _config_dirs() -> list[Path]:
    """Bundled pipeline files: the repository's `configs/` (source / editable install), else the
    copy a wheel installs under `<prefix>/share/voxpipe/configs`."""
    import sys

    return [Path(__file__).resolve().parents[2] / "configs", Path(sys.prefix) / "share" / "voxpipe" / "configs"]


def bundled_configs() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for directory in reversed(_config_dirs()):
        found.update({p.stem: p for p in directory.glob("*.yaml")})
    return found


@dataclass
class ComponentConfig:
    info: ComponentInfo
    params: BaseModel

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.info.name, **self.params.model_dump(mode="json")}


@dataclass
class PipelineConfig:
    """A validated pipeline: one entry per present kind, plus settings."""

    components: dict[str, ComponentConfig]
    settings: PipelineSettings
    source: str = "<dict>"
    raw: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Fully resolved (defaults included), in pipeline order."""
        out: dict[str, Any] = {kind: self.components[kind].to_dict() for kind in KINDS if kind in self.components}
        out[SETTINGS_KEY] = self.settings.model_dump(mode="json")
        return out

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False, allow_unicode=True)


def find_config(name_or_path: str | Path) -> Path:
    """A path, or the name of a bundled config (`luxtts`, `kokoro.yaml`)."""
    path = Path(name_or_path)
    if path.is_file():
        return path
    available = bundled_configs()
    if path.parent == Path(".") and path.stem in available and path.suffix in ("", ".yaml"):
        return available[path.stem]
    bundled = sorted(available)
    close = difflib.get_close_matches(path.stem, bundled, n=3, cutoff=0.5)
    hint = f" Did you mean {' or '.join(close)}?" if close else ""
    raise ConfigError(f"pipeline file not found: {path}.{hint} Bundled pipelines: {', '.join(bundled) or '(none)'}")


def read_yaml(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as error:
        raise ConfigError(f"{path}: not valid YAML: {error}") from None
    except OSError as error:
        raise ConfigError(f"{path}: cannot read: {error}") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of component kinds at the top level, got {type(data).__name__}")
    return data


def parse_override(text: str) -> tuple[list[str], Any]:
    """`a.b.c=value` -> (["a","b","c"], YAML-typed value)."""
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"override {text!r} is not of the form key.path=value (e.g. solver.num_steps=8)")
    try:
        parsed = yaml.safe_load(value) if value.strip() else ""
    except yaml.YAMLError:
        parsed = value
    return [part for part in key.strip().split(".")], parsed


def apply_overrides(data: dict[str, Any], overrides: Iterable[str] | Mapping[str, Any], source: str) -> dict[str, Any]:
    data = copy.deepcopy(data)
    items = overrides.items() if isinstance(overrides, Mapping) else (parse_override(o) for o in overrides)
    for key, value in items:
        path = key.split(".") if isinstance(key, str) else list(key)
        if path[0] not in TOP_LEVEL_KEYS:
            raise ConfigError(_unknown_key_message(source, path[0], TOP_LEVEL_KEYS, "override " + ".".join(path)))
        if path[0] in KINDS and data.get(path[0]) is None and path[1:] != ["type"]:
            raise ConfigError(
                f"{source}: override {'.'.join(path)}: this pipeline has no {path[0]}; "
                f"add one with {path[0]}.type=NAME (sections present: {', '.join(k for k in data if data[k] is not None)})"
            )
        node = data
        for part in path[:-1]:
            child = node.get(part)
            if child is None:
                child = node[part] = {}
            if not isinstance(child, dict):
                raise ConfigError(f"{source}: override {'.'.join(path)}: {part} is {child!r}, not a mapping")
            node = child
        node[path[-1]] = value
    return data


def _unknown_key_message(source: str, key: str, allowed: Iterable[str], where: str) -> str:
    allowed = list(allowed)
    close = difflib.get_close_matches(str(key), allowed, n=3, cutoff=0.5)
    hint = f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
    return f"{source}: {where}: unknown key {key!r}{hint} Allowed keys: {', '.join(allowed)}"


def _validation_message(source: str, prefix: str, error: ValidationError, model: type[BaseModel], owner: str) -> str:
    lines = []
    for item in error.errors():
        loc = ".".join(str(p) for p in (prefix, *item["loc"]) if p != "")
        if item["type"] == "extra_forbidden":
            lines.append(_unknown_key_message(source, item["loc"][-1], model.model_fields, f"{loc} ({owner})"))
        else:
            expected = item["msg"]
            lines.append(f"{source}: {loc}: {expected}; got {item.get('input')!r} ({owner})")
    return "\n".join(lines)


def _localize_weights(params: dict[str, Any], weights_dir: str) -> dict[str, Any]:
    """Map every `hf://` string param to its local copy under `weights_dir`."""
    return {
        key: str(resolve_path(value, local_root=weights_dir)) if isinstance(value, str) and is_hub_uri(value) else value
        for key, value in params.items()
    }


def build_config(
    source: str | Path | Mapping[str, Any],
    overrides: Iterable[str] | Mapping[str, Any] = (),
    *,
    registry: Registry | None = None,
    weights_dir: str | None = None,
) -> PipelineConfig:
    """Validate a pipeline file (path or bundled name) or mapping, with overrides."""
    registry = registry or get_registry()
    if isinstance(source, Mapping):
        name, data = "<dict>", dict(source)
    else:
        path = find_config(source)
        name, data = str(path), read_yaml(path)
    data = apply_overrides(data, overrides, name)

    # Phase 1: structure.
    for key in data:
        if key not in TOP_LEVEL_KEYS:
            raise ConfigError(_unknown_key_message(name, key, TOP_LEVEL_KEYS, "top level"))
    try:
        settings = PipelineSettings.model_validate(data.get(SETTINGS_KEY) or {})
    except ValidationError as error:
        raise ConfigError(_validation_message(name, SETTINGS_KEY, error, PipelineSettings, "pipeline settings")) from None
    if weights_dir is not None:
        settings = settings.model_copy(update={"weights_dir": weights_dir})

    # Phase 2: each component against its own Params.
    components: dict[str, ComponentConfig] = {}
    for kind in KINDS:
        entry = data.get(kind)
        if entry is None:
            continue
        if isinstance(entry, str):
            entry = {"type": entry}
        if not isinstance(entry, dict):
            raise ConfigError(f"{name}: {kind}: expected a mapping with a 'type' key, got {entry!r}")
        params = dict(entry)
        type_name = params.pop("type", None)
        if type_name is None:
            raise ConfigError(
                f"{name}: {kind}: missing 'type'; available {kind} types: {', '.join(registry.names(kind)) or '(none)'}"
            )
        try:
            info = registry.get(kind, str(type_name))
        except RegistryError as error:
            raise ConfigError(f"{name}: {kind}.type: {error}") from None
        if settings.weights_dir:
            params = _localize_weights(params, settings.weights_dir)
        try:
            validated = info.params_model.model_validate(params)
        except ValidationError as error:
            raise ConfigError(_validation_message(name, kind, error, info.params_model, f"{kind} {info.name!r}")) from None
        components[kind] = ComponentConfig(info, validated)
    return PipelineConfig(components, settings, name, data)
