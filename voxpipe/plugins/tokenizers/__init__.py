"""Tokenizers reading an official `tokens.txt`: emilia, dialog, espeak, simple.

Importing this package is cheap; espeak, jieba and pypinyin load when a tokenizer is built.
"""

from voxpipe.registry import hookimpl


@hookimpl
def register_components(register):
    from voxpipe.plugins.tokenizers.emilia import DialogTokenizer, EmiliaTokenizer
    from voxpipe.plugins.tokenizers.espeak import EspeakTokenizer
    from voxpipe.plugins.tokenizers.simple import SimpleTokenizer

    for component in (EmiliaTokenizer, DialogTokenizer, EspeakTokenizer, SimpleTokenizer):
        register(component)
