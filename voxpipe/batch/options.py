"""Per-item synthesis options, checked against the pipeline family's options before any work.

The family's class is known from the resolved configuration (no weights are loaded) and
validates options by itself (`Synthesizer.parse_options`: unknown names and bad values are
errors; null means "as configured"). Limits that depend on the loaded configuration are checked
again per item by `Pipeline.synthesize`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

OptionsCheck = Callable[[dict[str, Any]], "str | None"]


def family_class(resolved):
    """The synthesizer (model family) class of a resolved `PipelineConfig`."""
    from voxpipe.core.config import FAMILY_KIND

    return resolved.components[FAMILY_KIND].info.cls


def options_check(resolved) -> OptionsCheck:
    """A function: options -> None when the family takes them, else a one-line reason naming the
    option, the value and what is expected."""
    from voxpipe.core.errors import ConfigError

    family = family_class(resolved)

    def check(options: dict[str, Any]) -> str | None:
        try:
            family.parse_options(options)
        except ConfigError as error:
            return "; ".join(str(error).splitlines())
        return None

    return check
