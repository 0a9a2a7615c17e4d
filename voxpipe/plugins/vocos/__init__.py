"""Vocoders: Vocos 24 kHz, LuxTTS's 48 kHz dual-head Vocos, and a weight-free Griffin-Lim."""

from voxpipe.registry import hookimpl


@hookimpl
def register_components(register):
    from voxpipe.plugins.vocos.griffin_lim import GriffinLim
    from voxpipe.plugins.vocos.vocos24k import Vocos24k
    from voxpipe.plugins.vocos.vocos48k import LuxVocos48k

    register(Vocos24k)
    register(LuxVocos48k)
    register(GriffinLim)
