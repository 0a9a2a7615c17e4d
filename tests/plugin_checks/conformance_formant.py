"""What a family author writes: voxpipe's synthesizer conformance suite on their family.
Run by tests/test_example_family.py with the example family installed."""

from voxpipe.testing import SynthesizerConformance, TokenizerConformance
from voxpipe_formant.family import FormantSynthesizer, LetterTokenizer


class TestFormantConformance(SynthesizerConformance):
    def make_synthesizer(self):
        return FormantSynthesizer.create()


class TestLetterTokenizerConformance(TokenizerConformance):
    def make_tokenizer(self):
        return LetterTokenizer.create()
