"""Plugin discovery, lookup errors, duplicates and failures."""

import types

import pytest
from pydantic import Field

from voxpipe.core.component import Params
from voxpipe.core.errors import RegistryError
from voxpipe.core.solver import Solver
from voxpipe.registry import Registry, hookimpl

BUILT_IN = {
    ("solver", "euler"), ("guidance", "classifier-free"), ("guidance", "distilled"), ("guidance", "none"),
    ("acoustic_model", "zipvoice"), ("acoustic_model", "zipvoice-distill"), ("acoustic_model", "zipvoice-dialog"),
    ("acoustic_model", "zipvoice-dialog-stereo"), ("vocoder", "vocos-24k"), ("vocoder", "vocos-48k"),
    ("vocoder", "griffin-lim"), ("features", "vocos-mel"), ("tokenizer", "emilia"), ("tokenizer", "espeak"),
    ("tokenizer", "dialog"), ("tokenizer", "simple"), ("chunker", "punctuation"), ("transcriber", "faster-whisper"),
    ("synthesizer", "flow-matching"), ("synthesizer", "kokoro"), ("synthesizer", "piper"), ("tokenizer", "kokoro"),
    ("tokenizer", "piper"), ("recognizer", "whisper"), ("speaker_encoder", "resemblyzer"), ("quality", "dnsmos"),
}
BUILT_IN_KINDS = ("normalizer", "chunker", "tokenizer", "transcriber", "synthesizer", "features", "acoustic_model",
                  "guidance", "solver", "vocoder")
TOP_LEVEL_KINDS = ["normalizer", "chunker", "tokenizer", "transcriber", "synthesizer"]
BUILT_IN_COMMANDS = {"serve", "export", "batch", "eval", "train", "data"}


class MidpointParams(Params):
    num_steps: int = Field(4, ge=1)


class MidpointSolver(Solver):
    """A test solver."""

    name = "midpoint"
    Params = MidpointParams

    def __init__(self, num_steps: int = 4):
        self.num_steps = num_steps


def plugin_registering(*classes):
    module = types.SimpleNamespace()

    @hookimpl
    def register_components(register):
        for cls in classes:
            register(cls)

    module.register_components = register_components
    return module


def test_built_in_components_come_through_entry_points(fresh_registry):
    found = {(i.kind, i.name) for i in fresh_registry.components()}
    assert BUILT_IN <= found, BUILT_IN - found
    assert not fresh_registry.failures, fresh_registry.failures
    info = fresh_registry.get("solver", "euler")
    assert info.package == "voxpipe" and info.plugin == "flow" and info.description


def test_built_in_kinds_and_those_plugins_add(fresh_registry):
    assert tuple(fresh_registry.kinds)[: len(BUILT_IN_KINDS)] == BUILT_IN_KINDS  # in pipeline order
    assert fresh_registry.top_level_kinds()[: len(TOP_LEVEL_KINDS)] == TOP_LEVEL_KINDS
    for kind in ("recognizer", "speaker_encoder", "quality"):  # registered by the `evaluation` plugin
        assert fresh_registry.kinds[kind].plugin == "evaluation" and not fresh_registry.kinds[kind].top_level


def test_built_in_commands_come_through_the_commands_hook(fresh_registry):
    import argparse

    subparsers = argparse.ArgumentParser().add_subparsers(dest="command")
    fresh_registry.register_commands(subparsers)
    assert BUILT_IN_COMMANDS <= set(subparsers.choices), BUILT_IN_COMMANDS - set(subparsers.choices)
    assert not fresh_registry.failures, fresh_registry.failures


def test_a_kind_cannot_be_taken_over_by_another_plugin():
    registry = Registry()
    registry.add_plugin(types.SimpleNamespace(register_kinds=hookimpl(lambda register: register("meter", "a"))), "one")
    registry.add_plugin(types.SimpleNamespace(register_kinds=hookimpl(lambda register: register("meter", "b"))), "two")
    registry.add_plugin(types.SimpleNamespace(register_kinds=hookimpl(lambda register: register("no good"))), "three")
    assert registry.kinds["meter"].plugin == "one" and registry.kinds["meter"].description == "a"
    assert [f.plugin for f in registry.failures] == ["two", "three"]
    assert "already registered by plugin 'one'" in registry.failures[0].error
    assert "identifiers" in registry.failures[1].error


def test_unknown_name_suggests_close_matches_and_lists_all(fresh_registry):
    with pytest.raises(RegistryError) as caught:
        fresh_registry.get("solver", "eulr")
    message = str(caught.value)
    assert "'euler'" in message and "did you mean" in message and "Available solver types" in message


def test_duplicate_registration_names_both_providers():
    registry = Registry()
    registry.add_plugin(plugin_registering(MidpointSolver), "first", package="pkg-a", version="1")
    registry.add_plugin(plugin_registering(MidpointSolver), "second", package="pkg-b", version="2")
    assert any("first" in f.error and "second" in f.error for f in registry.failures)
    with pytest.raises(RegistryError, match="pkg-a.*pkg-b"):
        registry.get("solver", "midpoint")


def test_failing_plugin_does_not_stop_the_others():
    registry = Registry()

    @hookimpl
    def register_components(register):
        raise ImportError("needs a library that is not installed")

    registry.add_plugin(types.SimpleNamespace(register_components=register_components), "broken", package="bad")
    registry.add_plugin(plugin_registering(MidpointSolver), "good")
    assert registry.get("solver", "midpoint").cls is MidpointSolver
    assert [f.plugin for f in registry.failures] == ["broken"]
    assert "not installed" in registry.failures[0].error


def test_registering_a_class_without_params_model_fails():
    class NoParams(Solver):
        name = "bad"
        Params = dict

    registry = Registry()
    registry.add_plugin(plugin_registering(NoParams), "p")
    assert "pydantic" in registry.failures[0].error


def test_restricting_plugins_by_environment(monkeypatch):
    from voxpipe.registry import get_registry, reset_registry

    monkeypatch.setenv("VOXPIPE_PLUGINS", "flow")
    reset_registry()
    try:
        registry = get_registry()
        assert {i.plugin for i in registry.components()} == {"flow"}
        with pytest.raises(RegistryError):
            registry.get("vocoder", "vocos-24k")
    finally:
        reset_registry()
