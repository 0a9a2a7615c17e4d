"""Text -> Piper phonemes per sentence -> phoneme ids, as Piper does it.

Phonemes: espeak-ng through voxpipe's espeak backends (piper-phonemize's `phonemize_espeak`
itself on Python <= 3.11, espeak-ng of espeakng-loader through ctypes otherwise; see
voxpipe/plugins/tokenizers/espeak_backends.py): one list of single code points per sentence,
clause punctuation kept, a space after `,` `:` `;`. Voices with `phoneme_type: text` use the
NFD code points of the text as one sentence, as Piper does.

Ids, per sentence (piper-phonemize's `phonemes_to_ids`, also piper1-gpl's):
    BOS `^`, PAD `_`, then each phoneme's ids followed by PAD, then EOS `$`.
The voice's `phoneme_map` (symbol -> symbols) is applied first. Piper logs and skips symbols
its `phoneme_id_map` lacks; here they are skipped too (the ids stay Piper's) but reported with
the text they came from: an `UnknownSymbolWarning`, or an `UnknownSymbolError` when strict.
"""

from __future__ import annotations

import unicodedata
import warnings
from dataclasses import dataclass, field

from voxpipe.core.errors import TextError
from voxpipe.plugins.piper.voice_config import BOS, EOS, PAD, PiperVoiceConfig
from voxpipe.plugins.tokenizers.espeak_backends import make_backend
from voxpipe.plugins.tokenizers.vocabulary import (
    Dropped,
    UnknownSymbolError,
    UnknownSymbolWarning,
)


class PiperPhonemizer:
    """Text -> phonemes grouped by sentence, for one voice config."""

    def __init__(self, config: PiperVoiceConfig, backend: str = "auto") -> None:
        self.config = config
        self.backend = make_backend(backend) if config.phoneme_type == "espeak" else None
        if self.backend is not None:  # an unknown espeak voice fails here, not mid-synthesis
            try:
                self.backend.phonemize("", config.espeak_voice)
            except TextError as error:
                raise TextError(f"espeak-ng cannot use voice {config.espeak_voice!r} of this Piper voice: {error}") from None

    @property
    def backend_name(self) -> str:
        return self.backend.name if self.backend is not None else "codepoints"

    def phonemize(self, text: str) -> list[list[str]]:
        """Phonemes (single code points, `phoneme_map` applied) per sentence; empty sentences dropped."""
        if not isinstance(text, str):
            raise TextError(f"text must be a string, got {type(text).__name__}")
        if self.backend is None:
            sentences = [list(unicodedata.normalize("NFD", text))]
        else:
            sentences = self.backend.phonemize(text, self.config.espeak_voice)
        mapping = self.config.phoneme_map
        if mapping:
            sentences = [[out for phoneme in sentence for out in mapping.get(phoneme, [phoneme])]
                         for sentence in sentences]
        return [sentence for sentence in sentences if sentence]


@dataclass
class SentenceIds:
    """Ids of one text, sentence by sentence, and the phonemes that had no id."""

    sentences: list[list[int]] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)

    @property
    def flat(self) -> list[int]:
        return [i for sentence in self.sentences for i in sentence]


class PhonemeIdMapper:
    """Phonemes -> ids with a voice's `phoneme_id_map` (Piper's BOS/PAD/EOS framing)."""

    def __init__(self, id_map: dict[str, list[int]], source: str = "phoneme_id_map", strict: bool = False) -> None:
        self.id_map = id_map
        self.source = source
        self.strict = strict
        self.bos, self.pad, self.eos = id_map[BOS], id_map[PAD], id_map[EOS]

    def sentence_tokens(self, phonemes: list[str]) -> list[str]:
        """The symbols whose ids `sentence_ids` produces, in order (unknown phonemes kept)."""
        tokens = [BOS, PAD]
        for phoneme in phonemes:
            tokens += [phoneme, PAD]
        return tokens + [EOS]

    def sentence_ids(self, phonemes: list[str], missing: list[str]) -> list[int]:
        """Ids of one sentence; phonemes without an id are appended to `missing` and skipped."""
        ids = [*self.bos, *self.pad]
        for phoneme in phonemes:
            known = self.id_map.get(phoneme)
            if known is None:
                missing.append(phoneme)
                continue
            ids += known
            ids += self.pad
        return ids + self.eos

    def encode(self, sentences: list[list[str]], text: str) -> SentenceIds:
        """Ids of each sentence; missing symbols are reported once for `text`."""
        result = SentenceIds()
        for phonemes in sentences:
            result.sentences.append(self.sentence_ids(phonemes, result.missing))
        if result.missing:
            self.report(text, result.missing)
        return result

    def report(self, text: str, missing: list[str]) -> None:
        symbols = ", ".join(f"{s!r} (U+{ord(s):04X})" if len(s) == 1 else repr(s) for s in dict.fromkeys(missing))
        message = (f"phonemes {symbols} of the text {text!r} have no id in {self.source}; "
                   f"{'refused (strict)' if self.strict else 'skipped, as Piper does'}")
        dropped = tuple(Dropped(symbol, 0, len(text), f"not in {self.source}") for symbol in dict.fromkeys(missing))
        if self.strict:
            raise UnknownSymbolError(message, dropped)
        warnings.warn(UnknownSymbolWarning(message, dropped), stacklevel=4)

    def split_sentences(self, ids: list[int]) -> list[list[int]]:
        """Undo the concatenation of sentences: cut after every EOS that a BOS follows (or that
        ends the sequence). A sequence without Piper's framing comes back whole."""
        bos, eos = self.bos, self.eos
        sentences: list[list[int]] = []
        start = 0
        position = 0
        while position < len(ids):
            end = position + len(eos)
            if ids[position:end] == eos and (end == len(ids) or ids[end:end + len(bos)] == bos) and position > start:
                sentences.append(list(ids[start:end]))
                start = position = end
                continue
            position += 1
        if start < len(ids):
            sentences.append(list(ids[start:]))
        return sentences
