"""Built-in plugin `commands`: the `voxpipe` sub-commands that live in their own modules.

They come in through the same `register_commands` hook a third-party plugin implements, so the
path a plugin's command takes is tested every day. Each module has `register(subparsers)`.
"""

from voxpipe.registry import hookimpl

COMMAND_MODULES = ("serve", "export", "batch", "eval", "train")


@hookimpl
def register_commands(subparsers):
    import importlib

    for name in COMMAND_MODULES:
        importlib.import_module(f"voxpipe.commands.{name}").register(subparsers)
