"""The hooks a voxpipe plugin implements (each optional): components, kinds, CLI commands."""

import pluggy

PROJECT = "voxpipe"
ENTRY_POINT_GROUP = "voxpipe"

hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


class VoxpipeSpec:
    @hookspec
    def register_components(self, register):
        """Call `register(ComponentClass)` once per component this plugin provides.

        A component class names its `kind`, `name`, `Params` model and `description`
        (see voxpipe.core.component.Component).
        """

    @hookspec
    def register_kinds(self, register):
        """Call `register(name, description, top_level=False)` once per new component kind this
        plugin introduces (e.g. a family's own sub-component kind, or `recognizer`). A
        `top_level` kind may appear as a section of its own in pipeline files."""

    @hookspec
    def register_commands(self, subparsers):
        """Add `voxpipe` sub-commands: `parser = subparsers.add_parser(NAME, help=...)`, its
        arguments, and `parser.set_defaults(handler=function)`; `function(args)` returns the
        exit code (as llm's `register_commands`, for argparse)."""
