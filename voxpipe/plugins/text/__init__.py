"""Text front-end components: normalizers (english, chinese, auto, none) and chunkers
(punctuation, zipvoice).

Importing this package is cheap; num2words and cn2an load when text is normalized.
"""

from voxpipe.registry import hookimpl


@hookimpl
def register_components(register):
    from voxpipe.plugins.text.chinese import ChineseNormalizer
    from voxpipe.plugins.text.chunking import PunctuationChunker
    from voxpipe.plugins.text.english import EnglishNormalizer
    from voxpipe.plugins.text.normalizers import AutoNormalizer, NoNormalizer
    from voxpipe.plugins.text.zipvoice_chunking import ZipVoiceChunker

    for component in (EnglishNormalizer, ChineseNormalizer, AutoNormalizer, NoNormalizer, PunctuationChunker, ZipVoiceChunker):
        register(component)
