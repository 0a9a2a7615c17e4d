"""Sub-commands of the `voxpipe` CLI that live in their own modules (see voxpipe.cli.EXTRA_COMMANDS)."""
