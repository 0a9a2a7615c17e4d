"""Imports point down: the core imports no plugin and none of the layers above it."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "voxpipe"
ABOVE_CORE = ("voxpipe.plugins", "voxpipe.streaming", "voxpipe.audio", "voxpipe.server", "voxpipe.cli",
              "voxpipe.commands", "voxpipe.batch", "voxpipe.eval", "voxpipe.export")
def imports(path: Path) -> list[tuple[str, bool]]:
    """(module, at module level?) for every import in a file."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    top = set(map(id, tree.body))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(alias.name, id(node) in top) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.module, id(node) in top))
    return found


@pytest.mark.parametrize("path", sorted((PACKAGE / "core").glob("*.py")), ids=lambda p: p.name)
def test_core_imports_nothing_above_it(path):
    wrong = [module for module, _ in imports(path) if module.startswith(ABOVE_CORE)]
    assert not wrong, f"voxpipe/{path.relative_to(PACKAGE)} imports {wrong}"


@pytest.mark.parametrize("layer", ["dsp", "registry"])
def test_lowest_layers_import_only_errors_and_component(layer):
    for path in (PACKAGE / layer).glob("*.py"):
        wrong = [m for m, _ in imports(path) if m.startswith("voxpipe.")
                 and not m.startswith((f"voxpipe.{layer}", "voxpipe.core.errors", "voxpipe.core.component"))]
        assert not wrong, f"voxpipe/{layer}/{path.name} imports {wrong}"


def test_streaming_does_not_reach_into_plugins():
    for path in (PACKAGE / "streaming").glob("*.py"):
        wrong = [m for m, _ in imports(path) if m.startswith("voxpipe.plugins")]
        assert not wrong, f"voxpipe/streaming/{path.name} imports {wrong}"
