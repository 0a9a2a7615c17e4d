"""StyleTTS2 family in torch, with Kokoro-82M as one of its configurations. See docs/styletts2.md."""

from voxpipe.registry.hookspecs import hookimpl

KINDS = {
    "plbert": "phoneme ids -> PL-BERT hidden states and their projection (StyleTTS2)",
    "text_encoder": "phoneme ids -> acoustic text features (StyleTTS2)",
    "prosody_predictor": "text states + style -> durations, F0 and energy (StyleTTS2)",
    "decoder": "aligned text features, F0, energy, style -> waveform (StyleTTS2)",
    "style_encoder": "reference audio -> acoustic + prosodic style vectors (StyleTTS2)",
    "style_denoiser": "noisy style + text states (+ reference style) -> denoised style (StyleTTS2 style diffusion)",
    "style_sampler": "draws a style from a denoiser over a noise schedule (StyleTTS2 style diffusion)",
}


@hookimpl
def register_kinds(register):
    for name, description in KINDS.items():
        register(name, description)


@hookimpl
def register_components(register):
    from voxpipe.plugins.styletts2.diffusion import StyleDenoiser, TextStyleDenoiser
    from voxpipe.plugins.styletts2.hifigan import HifiGanDecoder
    from voxpipe.plugins.styletts2.istftnet import StyleDecoder
    from voxpipe.plugins.styletts2.prosody import ProsodyPredictor
    from voxpipe.plugins.styletts2.sampler import ADPM2Sampler
    from voxpipe.plugins.styletts2.style_encoder import StyleEncoder
    from voxpipe.plugins.styletts2.synthesizer import StyleTTS2Synthesizer
    from voxpipe.plugins.styletts2.text import PLBert, TextEncoder
    from voxpipe.plugins.styletts2.tokenizer import StyleTTS2Tokenizer

    for cls in (PLBert, TextEncoder, ProsodyPredictor, StyleDecoder, HifiGanDecoder, StyleEncoder, StyleDenoiser,
                TextStyleDenoiser, ADPM2Sampler, StyleTTS2Tokenizer, StyleTTS2Synthesizer):
        register(cls)
