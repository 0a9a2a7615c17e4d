"""VibeVoice family (microsoft/VibeVoice, VibeVoice-Realtime-0.5B): sigma-VAE acoustic codec,
diffusion head with DPM-Solver++ and negative-prompt guidance, streaming loop over Qwen2.

Importing this package is cheap; the components (and torch/transformers) load when they register.
"""

from voxpipe.registry.hookspecs import hookimpl


@hookimpl
def register_kinds(register):
    register("codec", "audio <-> latents (encode prompt audio, decode generated latents, streamed)")


@hookimpl
def register_components(register):
    from voxpipe.plugins.vibevoice.codec import AcousticCodec
    from voxpipe.plugins.vibevoice.denoiser import NegativePromptGuidance
    from voxpipe.plugins.vibevoice.family import VibeVoiceRealtime
    from voxpipe.plugins.vibevoice.schedule import DPMSolver
    from voxpipe.plugins.vibevoice.text import VibeVoiceTextTokenizer

    for component in (VibeVoiceRealtime, AcousticCodec, DPMSolver, NegativePromptGuidance, VibeVoiceTextTokenizer):
        register(component)


@hookimpl
def register_commands(subparsers):
    from voxpipe.plugins.vibevoice.commands import register

    register(subparsers)
