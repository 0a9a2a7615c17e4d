"""CosyVoice family (FunAudioLLM/CosyVoice: CosyVoice2-0.5B and Fun-CosyVoice3-0.5B, picked by the
model folder's hyper-parameter file): Qwen2 speech-token LM -> causal flow matching -> HiFT
vocoder, zero-shot cloning, official streaming token-to-wave.

Importing this package is cheap; the components (and torch/transformers/onnxruntime) load when
they register or are built.
"""

from voxpipe.registry.hookspecs import hookimpl


@hookimpl
def register_kinds(register):
    register("speech_lm", "text ids + prompt speech tokens -> discrete speech tokens (CosyVoice LM)")
    register("flow", "speech tokens + prompt mel + x-vector -> mel frames (CosyVoice flow)")
    register("speech_tokenizer", "16 kHz audio -> discrete speech tokens (CosyVoice front-end)")
    register("speaker_embedding", "16 kHz audio -> speaker x-vector (CosyVoice front-end)")


@hookimpl
def register_components(register):
    from voxpipe.plugins.cosyvoice.family import CosyVoice
    from voxpipe.plugins.cosyvoice.frontend import (
        CampPlusSpeakerEncoder,
        CosyVoiceSpeechTokenizer,
    )
    from voxpipe.plugins.cosyvoice.lm import CosyVoiceLM
    from voxpipe.plugins.cosyvoice.text import CosyVoiceTextTokenizer

    for component in (CosyVoice, CosyVoiceLM, CosyVoiceTextTokenizer, CosyVoiceSpeechTokenizer,
                      CampPlusSpeakerEncoder):
        register(component)
    from voxpipe.plugins.cosyvoice.components import register_flow_and_hift

    register_flow_and_hift(register)  # cosyvoice-flow (+ its solver, guidance), cosyvoice-hift
