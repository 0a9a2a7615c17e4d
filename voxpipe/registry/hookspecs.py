"""The one hook a voxpipe plugin implements."""

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
