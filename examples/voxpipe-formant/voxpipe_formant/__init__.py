"""voxpipe-formant: an example model family from a third-party package.

It adds a tokenizer (`formant-letters`) and a synthesizer (`formant`) through voxpipe's
`register_components` hook; nothing in voxpipe knows it exists. See README.md.
"""

from voxpipe.registry import hookimpl


@hookimpl
def register_components(register):
    from voxpipe_formant.family import FormantSynthesizer, LetterTokenizer

    register(LetterTokenizer)
    register(FormantSynthesizer)
