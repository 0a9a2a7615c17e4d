"""The base every registered component derives from."""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict


class Params(BaseModel):
    """Base of every component's parameter model: unknown keys are errors."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class Component:
    """A pipeline part of one `kind` (tokenizer, solver, ...) registered under a `name`.

    Subclasses declare `Params` (a pydantic model, ``extra="forbid"``) whose fields are the
    keyword arguments of ``__init__``, so ``Cls(**params)`` and a YAML entry
    ``{type: name, **params}`` build the same object.
    """

    kind: ClassVar[str] = ""
    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    Params: ClassVar[type[BaseModel]] = Params

    @classmethod
    def from_params(cls, params: BaseModel) -> "Component":
        """Build from validated params (shallow: nested models stay models)."""
        return cls(**{field: getattr(params, field) for field in type(params).model_fields})

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
