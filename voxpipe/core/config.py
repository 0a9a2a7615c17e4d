"""Pipeline files: YAML -> validated configuration, in two phases.

Phase 1 checks the structure `{kind: {type: name, ...params}, settings: {...}}` (the top-level
kinds: normalizer, chunker, tokenizer, transcriber, synthesizer, and any a plugin registers as
top-level); phase 2 asks the registry for the class of each `type` and validates the params
against that class's own pydantic `Params`, recursing into `nested()` sub-component sections
(`synthesizer.solver`). Dotted overrides (`synthesizer.solver.num_steps=8`, or the shorthand
`solver.num_steps=8` for a section of the synthesizer) are applied to the raw mapping first, so
they go through the same validation. Every error names the file, the key path, a bounded excerpt
of the value and what was expected.
"""

from __future__ import annotations

import copy
import difflib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping

import yaml
from pydantic import BaseModel, ValidationError

from voxpipe.core.component import nested_fields
from voxpipe.core.errors import ConfigError, RegistryError, VoxpipeError
from voxpipe.core.settings import PipelineSettings
from voxpipe.core.weights import is_hub_uri, resolve_path
from voxpipe.registry import ComponentInfo, Registry, get_registry

SETTINGS_KEY = "settings"
FAMILY_KIND = "synthesizer"
PIPELINE_SUFFIXES = (".yaml", ".yml")
MAX_FILE_BYTES = 1 << 20
MAX_VALUES = 100_000  # values in a pipeline after YAML aliases are expanded
MAX_SHOWN = 80        # characters of a value quoted in an error message


def short(value: object) -> str:
    """repr(value), cut to MAX_SHOWN characters (messages never echo unbounded values)."""
    text = _bounded_repr(value)
    return text if len(text) <= MAX_SHOWN else text[: MAX_SHOWN - 3] + "..."


def _bounded_repr(value: object) -> str:
    if isinstance(value, (dict, list, tuple)):
        return f"<{type(value).__name__} of {len(value)}>"
    return repr(value)[: MAX_SHOWN + 1]



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
    """One validated component: its registry entry, its params and its built-to-be
    sub-components (`nested()` fields, by field name)."""

    info: ComponentInfo
    params: BaseModel
    children: dict[str, "ComponentConfig"] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        nested = nested_fields(type(self.params))
        values = {key: value for key, value in self.params.model_dump(mode="json").items() if key not in nested}
        return {"type": self.info.name, **{key: child.to_dict() for key, child in self.children.items()}, **values}

    def build(self, where: str):
        """The component, its sub-components built first; errors name where it sits."""
        children = {key: child.build(f"{where}.{key}") for key, child in self.children.items()}
        try:
            return self.info.cls.from_params(self.params, children)
        except VoxpipeError as error:
            raise type(error)(f"{where} {self.info.name!r}: {error}") from None


@dataclass
class PipelineConfig:
    """A validated pipeline: one entry per present top-level kind, plus settings."""

    components: dict[str, ComponentConfig]
    settings: PipelineSettings
    source: str = "<dict>"
    raw: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Fully resolved (defaults included), in pipeline order."""
        out: dict[str, Any] = {kind: component.to_dict() for kind, component in self.components.items()}
        out[SETTINGS_KEY] = self.settings.model_dump(mode="json")
        return out

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False, allow_unicode=True)


def find_config(name_or_path: str | Path) -> Path:
    """A path, or the name of a bundled config (`luxtts`, `kokoro.yaml`)."""
    path = Path(name_or_path)
    if path.is_file():
        if path.suffix.lower() not in PIPELINE_SUFFIXES:
            raise ConfigError(f"{path} is not a pipeline file: pipeline files are YAML ({', '.join(PIPELINE_SUFFIXES)})")
        return path
    available = bundled_configs()
    if path.parent == Path(".") and path.stem in available and path.suffix in ("", ".yaml"):
        return available[path.stem]
    bundled = sorted(available)
    close = difflib.get_close_matches(path.stem, bundled, n=3, cutoff=0.5)
    hint = f" Did you mean {' or '.join(close)}?" if close else ""
    raise ConfigError(f"pipeline file not found: {path}.{hint} Bundled pipelines: {', '.join(bundled) or '(none)'}")


def read_yaml(path: Path) -> dict[str, Any]:
    """A pipeline file as a mapping. Bounded: at most MAX_FILE_BYTES, at most MAX_VALUES values
    once aliases are expanded; errors give the position, never the file's text."""
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise ConfigError(f"{path}: {size} bytes; a pipeline file has at most {MAX_FILE_BYTES}")
        text = path.read_bytes().decode("utf-8")
        data = yaml.safe_load(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(error, "problem", None) or "malformed"
        raise ConfigError(f"{path}: not valid YAML{where}: {str(problem)[:MAX_SHOWN]}") from None
    except UnicodeDecodeError as error:
        raise ConfigError(f"{path}: not UTF-8 text (byte {error.start}); pipeline files are YAML") from None
    except OSError as error:
        raise ConfigError(f"{path}: cannot read: {error.strerror or error}") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of component kinds at the top level, got {type(data).__name__}")
    check_size(data, str(path))
    return data


def check_size(data: Any, source: str, limit: int = MAX_VALUES) -> None:
    """ConfigError if `data` holds more than `limit` values counted as expanded (YAML aliases
    share nodes, so a 400-byte file can stand for billions of values); stops counting early."""
    count, stack = 0, [data]
    while stack:
        node = stack.pop()
        count += 1
        if count > limit:
            raise ConfigError(f"{source}: more than {limit} values once YAML aliases are expanded; "
                              "a pipeline file is a few dozen")
        if isinstance(node, dict):
            stack.extend(node.keys())
            stack.extend(node.values())
        elif isinstance(node, (list, tuple)):
            stack.extend(node)


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


def _family_sections(data: dict[str, Any], registry: Registry) -> dict[str, str]:
    """Nested section name -> kind of the synthesizer named in `data` ({} if none or unknown)."""
    entry = data.get(FAMILY_KIND)
    name = entry.get("type") if isinstance(entry, dict) else entry
    try:
        return nested_fields(registry.get(FAMILY_KIND, str(name)).params_model) if name is not None else {}
    except RegistryError:
        return {}


def _section_default(data: dict[str, Any], registry: Registry, section: str) -> dict[str, Any] | None:
    """A copy of the default mapping of the synthesizer's nested `section`, or None."""
    entry = data.get(FAMILY_KIND)
    name = entry.get("type") if isinstance(entry, dict) else entry
    try:
        field_info = registry.get(FAMILY_KIND, str(name)).params_model.model_fields.get(section)
    except RegistryError:
        return None
    default = None if field_info is None else field_info.default
    return copy.deepcopy(default) if isinstance(default, dict) else None


def apply_overrides(data: dict[str, Any], overrides: Iterable[str] | Mapping[str, Any], source: str,
                    registry: Registry | None = None) -> dict[str, Any]:
    registry = registry or get_registry()
    top_level = (*registry.top_level_kinds(), SETTINGS_KEY)
    data = copy.deepcopy(data)
    items = overrides.items() if isinstance(overrides, Mapping) else (parse_override(o) for o in overrides)
    for key, value in items:
        path = key.split(".") if isinstance(key, str) else list(key)
        if path[0] not in top_level and path[0] in _family_sections(data, registry):
            path = [FAMILY_KIND, *path]  # shorthand: solver.num_steps=8 -> synthesizer.solver.num_steps=8
        family = data.get(FAMILY_KIND)
        if (path[0] == FAMILY_KIND and len(path) > 2 and path[2] != "type" and isinstance(family, dict)
                and family.get(path[1]) is None):
            default = _section_default(data, registry, path[1])
            if default is not None:
                family[path[1]] = default  # solver.num_steps=8 on a left-out solver starts from its default
        if path[0] not in top_level:
            allowed = [*top_level, *_family_sections(data, registry)]
            raise ConfigError(_unknown_key_message(source, path[0], allowed, "override " + ".".join(path)))
        if path[0] != SETTINGS_KEY and data.get(path[0]) is None and path[1:] != ["type"]:
            raise ConfigError(
                f"{source}: override {'.'.join(path)}: this pipeline has no {path[0]}; "
                f"add one with {path[0]}.type=NAME (sections present: {', '.join(k for k in data if data[k] is not None)})"
            )
        node = data
        for part in path[:-1]:
            child = node.get(part)
            if child is None:
                child = node[part] = {}
            if isinstance(child, str) and part != SETTINGS_KEY:
                child = node[part] = {"type": child}  # `solver: euler` is short for {type: euler}
            if not isinstance(child, dict):
                raise ConfigError(f"{source}: override {'.'.join(path)}: {part} is {short(child)}, not a mapping")
            node = child
        node[path[-1]] = value
    return data


def _unknown_key_message(source: str, key: str, allowed: Iterable[str], where: str) -> str:
    allowed = list(allowed)
    close = difflib.get_close_matches(str(key), allowed, n=3, cutoff=0.5)
    hint = f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
    return f"{source}: {where}: unknown key {short(key)}{hint} Allowed keys: {', '.join(allowed)}"


def _validation_message(source: str, prefix: str, error: ValidationError, model: type[BaseModel], owner: str) -> str:
    lines = []
    for item in error.errors():
        loc = ".".join(str(p) for p in (prefix, *item["loc"]) if p != "")
        if item["type"] == "extra_forbidden":
            lines.append(_unknown_key_message(source, item["loc"][-1], model.model_fields, f"{loc} ({owner})"))
        elif item["type"] == "missing":
            lines.append(f"{source}: {loc}: missing required key ({owner})")
        else:
            lines.append(f"{source}: {loc}: {item['msg']}; got {short(item.get('input'))} ({owner})")
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
    if isinstance(source, Mapping):
        check_size(data, name)
    data = apply_overrides(data, overrides, name, registry)

    # Phase 1: structure.
    top_level = registry.top_level_kinds()
    for key in data:
        if key not in (*top_level, SETTINGS_KEY):
            raise ConfigError(_unknown_key_message(name, key, (*top_level, SETTINGS_KEY), "top level"))
    try:
        settings = PipelineSettings.model_validate(data.get(SETTINGS_KEY) or {})
    except ValidationError as error:
        raise ConfigError(_validation_message(name, SETTINGS_KEY, error, PipelineSettings, "pipeline settings")) from None
    if weights_dir is not None:
        settings = settings.model_copy(update={"weights_dir": weights_dir})
    if data.get(FAMILY_KIND) is None:
        raise ConfigError(f"{name}: missing required section {FAMILY_KIND!r} (the model family); available "
                          f"{FAMILY_KIND} types: {', '.join(registry.names(FAMILY_KIND)) or '(none)'}")

    # Phase 2: each component against its own Params, sub-components recursively.
    components: dict[str, ComponentConfig] = {}
    for kind in top_level:
        entry = data.get(kind)
        if entry is not None:
            components[kind] = validate_component(kind, entry, kind, name, registry, settings.weights_dir)
    family = components[FAMILY_KIND].info.cls
    if "tokenizer" not in components and getattr(family, "needs_tokenizer", True):
        raise ConfigError(f"{name}: missing required section 'tokenizer': synthesizer {components[FAMILY_KIND].info.name!r} "
                          f"has no tokenizer of its own; available tokenizer types: {', '.join(registry.names('tokenizer'))}")
    return PipelineConfig(components, settings, name, data)


def validate_component(kind: str, entry: Any, where: str, source: str, registry: Registry,
                       weights_dir: str | None) -> ComponentConfig:
    """`{type: name, ...params}` (or just `name`) at key path `where` -> ComponentConfig."""
    if isinstance(entry, str):
        entry = {"type": entry}
    if not isinstance(entry, dict):
        raise ConfigError(f"{source}: {where}: expected a mapping with a 'type' key, got {short(entry)}")
    params = dict(entry)
    type_name = params.pop("type", None)
    if type_name is None:
        close = difflib.get_close_matches("type", [str(k) for k in params], n=1, cutoff=0.6)
        hint = f" ({short(close[0])} looks like a misspelt 'type')" if close else ""
        raise ConfigError(f"{source}: {where}: missing 'type'{hint}; available {kind} types: "
                          f"{', '.join(registry.names(kind)) or '(none)'}")
    try:
        info = registry.get(kind, str(type_name))
    except RegistryError as error:
        raise ConfigError(f"{source}: {where}.type: {error}") from None
    if weights_dir:
        params = _localize_weights(params, weights_dir)
    try:
        validated = info.params_model.model_validate(params)
    except ValidationError as error:
        raise ConfigError(_validation_message(source, where, error, info.params_model, f"{kind} {info.name!r}")) from None
    children = {}
    for key, child_kind in nested_fields(info.params_model).items():
        value = getattr(validated, key)
        if value is not None:
            children[key] = validate_component(child_kind, value, f"{where}.{key}", source, registry, weights_dir)
    return ComponentConfig(info, validated, children)
