"""StyleTTS2 family in torch, with Kokoro-82M as one of its configurations. See docs/styletts2.md."""

from voxpipe.registry.hookspecs import hookimpl

KINDS = {
    "plbert": "phoneme ids -> PL-BERT hidden states and their projection (StyleTTS2)",
    "text_encoder": "phoneme ids -> acoustic text features (StyleTTS2)",
    "prosody_predictor": "text states + style -> durations, F0 and energy (StyleTTS2)",
    "decoder": "aligned text features, F0, energy, style -> waveform (StyleTTS2)",
}


@hookimpl
def register_kinds(register):
    for name, description in KINDS.items():
        register(name, description)


@hookimpl
def register_components(register):
    from voxpipe.plugins.styletts2.istftnet import StyleDecoder
    from voxpipe.plugins.styletts2.prosody import ProsodyPredictor
    from voxpipe.plugins.styletts2.synthesizer import StyleTTS2Synthesizer
    from voxpipe.plugins.styletts2.text import PLBert, TextEncoder

    for cls in (PLBert, TextEncoder, ProsodyPredictor, StyleDecoder, StyleTTS2Synthesizer):
        register(cls)
