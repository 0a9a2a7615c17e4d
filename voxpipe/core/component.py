"""The base every registered component derives from, and nested sub-component fields."""

from __future__ import annotations

import functools
import inspect
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field
from pydantic_core import PydanticUndefined

NESTED_KIND = "voxpipe_kind"


class Params(BaseModel):
    """Base of every component's parameter model: unknown keys are errors."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def nested(kind: str, default: dict[str, Any] | None = ..., description: str = "") -> Any:
    """A `Params` field holding a sub-component of `kind` as its own YAML section
    (`{type: name, ...params}`), validated against that component's `Params` and built before
    its owner: the owner's `__init__` receives the built component. `default`: the section used
    when the YAML has none (`...` = required, None = optional and absent)."""
    return Field(default, description=description or f"a {kind} component: {{type: NAME, ...params}}",
                 json_schema_extra={NESTED_KIND: kind})


def nested_fields(params_model: type[BaseModel]) -> dict[str, str]:
    """field name -> component kind, for the `nested()` fields of a `Params` model."""
    found = {}
    for name, info in params_model.model_fields.items():
        extra = info.json_schema_extra
        if isinstance(extra, dict) and NESTED_KIND in extra:
            found[name] = str(extra[NESTED_KIND])
    return found


class Component:
    """A pipeline part of one `kind` (tokenizer, solver, ...) registered under a `name`.

    Subclasses declare `Params` (a pydantic model, ``extra="forbid"``) whose fields are the
    keyword arguments of ``__init__``, so ``Cls(**params)`` and a YAML entry
    ``{type: name, **params}`` build the same object. `Params` is the single source of the
    defaults: `__init__` takes the validated values and declares none of its own.
    """

    kind: ClassVar[str] = ""
    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    Params: ClassVar[type[BaseModel]] = Params

    def __init_subclass__(cls, **kwargs) -> None:
        super().__init_subclass__(**kwargs)
        init = cls.__dict__.get("__init__")
        if init is not None and not getattr(init, "_fills_params_defaults", False):
            cls.__init__ = _filling_params_defaults(init)

    @classmethod
    def from_params(cls, params: BaseModel, children: dict[str, "Component"] | None = None) -> "Component":
        """Build from validated params; `children` are the built `nested()` sub-components."""
        children = children or {}
        return cls(**{field: children.get(field, getattr(params, field)) for field in type(params).model_fields})

    @classmethod
    def create(cls, **values: Any) -> "Component":
        """Build from keyword values validated by `Params` (defaults filled in from it)."""
        return cls.from_params(cls.Params.model_validate(values))

    @classmethod
    def summary(cls) -> str:
        """One-line description: `description`, else the docstring's first line."""
        if cls.description:
            return cls.description
        doc = (cls.__doc__ or "").strip().splitlines()
        return doc[0] if doc else ""

    def describe(self) -> dict[str, Any]:
        """Capabilities checked when a pipeline is built (sample rate, hop, dims)."""
        return {}


def _filling_params_defaults(init):
    """Wrap a component's `__init__` so keyword arguments it is not given take their defaults
    from the class's `Params` (declared there only): `EulerSolver(num_steps=4)` works without
    `__init__` repeating a default."""
    names = [p.name for p in inspect.signature(init).parameters.values()
             if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and p.name != "self"]

    @functools.wraps(init)
    def __init__(self, *args, **kwargs):
        fields = type(self).Params.model_fields
        for name in names[len(args):]:
            if name not in kwargs and name in fields:
                default = fields[name].get_default(call_default_factory=True)
                if default is not PydanticUndefined and default is not Ellipsis:
                    kwargs[name] = default
        init(self, *args, **kwargs)

    __init__._fills_params_defaults = True
    return __init__
