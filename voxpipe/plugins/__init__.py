"""Built-in plugins; each subpackage is one entry point of the `voxpipe` group."""
