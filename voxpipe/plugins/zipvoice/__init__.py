"""ZipVoice acoustic models (k2-fsa/ZipVoice) re-implemented in plain torch.

Importing this package is cheap; torch and the model code load when components register.
"""

from voxpipe.registry import hookimpl


@hookimpl
def register_components(register):
    from voxpipe.plugins.zipvoice.acoustic import COMPONENTS

    for component in COMPONENTS:
        register(component)
