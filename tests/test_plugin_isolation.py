"""A plugin that calls sys.exit() or raises a BaseException (KeyboardInterrupt, SystemExit, ...)
while it is imported or registers is isolated like one that raises: recorded in `failures`,
named by `voxpipe plugins`, and the other plugins and commands keep working."""

from __future__ import annotations

import sys
import textwrap
import types

import pytest

from voxpipe.cli import main as cli_main
from voxpipe.core.solver import Solver
from voxpipe.registry import Registry, hookimpl, reset_registry


class Interrupt(BaseException):
    """A BaseException that is neither SystemExit nor KeyboardInterrupt."""


def plugin_raising(error: BaseException):
    @hookimpl
    def register_components(register):
        raise error

    return types.SimpleNamespace(register_components=register_components)


class TinySolver(Solver):
    """A solver registered by a well-behaved plugin."""

    name = "tiny-isolation"

    def __init__(self) -> None:
        pass


def good_plugin():
    @hookimpl
    def register_components(register):
        register(TinySolver)

    return types.SimpleNamespace(register_components=register_components)


@pytest.mark.parametrize("error, words", [
    (SystemExit(3), "SystemExit: 3"),
    (KeyboardInterrupt(), "KeyboardInterrupt"),
    (Interrupt("stop"), "Interrupt: stop"),
])
def test_a_hook_that_exits_is_recorded_and_the_others_load(error, words):
    registry = Registry()
    registry.add_plugin(plugin_raising(error), "exiting", package="exiting-pkg")
    registry.add_plugin(good_plugin(), "good")
    assert registry.get("solver", "tiny-isolation").cls is TinySolver
    assert [(f.plugin, f.package) for f in registry.failures] == [("exiting", "exiting-pkg")]
    assert words in registry.failures[0].error


def test_a_plugin_with_an_invalid_hook_is_recorded_not_fatal():
    @hookimpl
    def register_components(wrong_argument):
        pass

    registry = Registry()
    registry.add_plugin(types.SimpleNamespace(register_components=register_components), "invalid", package="bad")
    registry.add_plugin(good_plugin(), "good")
    assert [f.plugin for f in registry.failures] == ["invalid"]
    assert registry.get("solver", "tiny-isolation").cls is TinySolver


@pytest.fixture
def exiting_distribution(tmp_path, monkeypatch):
    """An installed distribution whose `voxpipe` entry point calls sys.exit(3) when imported."""
    (tmp_path / "exiting_plugin.py").write_text("import sys\nsys.exit(3)\n", encoding="utf-8")
    info = tmp_path / "exiting_plugin-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: exiting-plugin\nVersion: 0.1\n", encoding="utf-8")
    (info / "entry_points.txt").write_text(textwrap.dedent("""
        [voxpipe]
        exiting = exiting_plugin
    """), encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    yield
    sys.modules.pop("exiting_plugin", None)
    reset_registry()


def test_an_entry_point_that_exits_on_import_is_named_by_voxpipe_plugins(exiting_distribution, monkeypatch, capsys):
    registry = Registry()
    registry.load_entry_points(["exiting", "flow"])
    assert [(f.plugin, f.package) for f in registry.failures] == [("exiting", "exiting-plugin")]
    assert "SystemExit: 3" in registry.failures[0].error
    assert registry.components()  # the flow plugin still loaded

    monkeypatch.setenv("VOXPIPE_PLUGINS", "exiting,flow")
    reset_registry()
    assert cli_main(["plugins"]) == 0
    out = capsys.readouterr().out
    assert "plugins that failed to load" in out and "exiting (exiting-plugin): SystemExit: 3" in out
    assert "euler" in out
