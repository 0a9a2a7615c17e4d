"""ZipVoice's Emilia tokenizer (English espeak phonemes + Chinese pinyin) and its dialog variant.

Pipeline of one text, as officially:
  1. map CJK / typographic punctuation to ASCII ("，" -> ",", "..." -> "…", ...);
  2. cut into language segments (voxpipe.plugins.tokenizers.segmentation);
  3. "en": numbers and abbreviations spelled out (ZipVoice's normalizer), then espeak-ng en-us
     IPA clause by clause with punctuation kept (piper-phonemize's `phonemize_espeak`);
     "zh": Arabic numerals to Chinese (cn2an), jieba + pypinyin initials/finals;
     "pinyin" (`<hao3>`): that syllable; "tag" (`[laugh]`): kept whole as one token;
     "other" (no letters at all): skipped.
"""

from __future__ import annotations

import re
from typing import ClassVar

from pydantic import Field

from voxpipe.core.component import Params
from voxpipe.core.errors import ConfigError, TextError
from voxpipe.plugins.tokenizers.espeak_backends import BACKEND_HELP, EspeakBackendName, make_backend
from voxpipe.plugins.tokenizers.pinyin import chinese_tokens, is_tone3_syllable, split_syllable
from voxpipe.plugins.tokenizers.segmentation import Segment, segment
from voxpipe.plugins.tokenizers.tracked_text import TrackedText
from voxpipe.plugins.tokenizers.vocabulary import Dropped, Tokenization, VocabularyTokenizer
from voxpipe.plugins.tokenizers.zipvoice_normalization import (
    ZipVoiceEnglishNormalization,
    zipvoice_chinese_normalization,
)

# Applied in this order, each to the result of the previous one (so "。。。" becomes "…").
PUNCTUATION_MAP = (
    ("，", ","), ("。", "."), ("！", "!"), ("？", "?"), ("；", ";"), ("：", ":"), ("、", ","),
    ("‘", "'"), ("“", '"'), ("”", '"'), ("’", "'"), ("⋯", "…"), ("···", "…"), ("・・・", "…"),
    ("...", "…"),
)
ENGLISH_VOICE = "en-us"
_SPEAKER_TAG_SPACES = re.compile(r"\s*(\[S[12]\])\s*")


def map_punctuation(text: TrackedText) -> TrackedText:
    for old, new in PUNCTUATION_MAP:
        text = text.replace(old, new)
    return text


class EmiliaParams(Params):
    tokens: str = Field(description="the model's tokens.txt (path or hf:// location)")
    strict: bool = Field(False, description="raise TextError instead of warning when symbols cannot be encoded")
    backend: EspeakBackendName = Field("auto", description=BACKEND_HELP)
    normalize: bool = Field(True, description="spell out numbers and abbreviations as ZipVoice does (official behaviour)")


class EmiliaTokenizer(VocabularyTokenizer):
    """ZipVoice's Emilia tokenizer: espeak en-us phonemes for English, pinyin for Chinese."""

    name: ClassVar[str] = "emilia"
    description: ClassVar[str] = "ZipVoice/LuxTTS text front-end: English espeak-ng IPA + Chinese pinyin, tokens.txt ids"

    Params: ClassVar[type[Params]] = EmiliaParams

    def __init__(self, tokens: str, strict: bool, backend: str, normalize: bool) -> None:
        super().__init__(tokens, strict)
        self.backend = make_backend(backend)
        self.normalize = normalize
        self._english_normalization = ZipVoiceEnglishNormalization()

    def describe(self) -> dict:
        return {**super().describe(), "espeak_backend": self.backend.name}

    # ---- text -> tokens -----------------------------------------------------------------
    def preprocess(self, text: TrackedText) -> TrackedText:
        return map_punctuation(text)

    def analyze(self, text: str) -> Tokenization:
        if not isinstance(text, str):
            raise TextError(f"text must be a string, got {type(text).__name__}")
        result = Tokenization()
        for piece in segment(self.preprocess(TrackedText.of(text))):
            self._add_segment(piece, result)
        return result

    def _add_segment(self, piece: Segment, result: Tokenization) -> None:
        span = piece.text.span()
        if piece.language == "tag":
            result.add([piece.text.text], span)
        elif piece.language == "pinyin":
            syllable = piece.text.text.lstrip("<").rstrip(">")
            if is_tone3_syllable(syllable):
                result.add(split_syllable(syllable), span)
            else:
                result.skipped.append(Dropped(piece.text.text, *span, "not a tone-numbered pinyin syllable"))
        elif piece.language == "en":
            self._guarded(piece, result, self._english)
        elif piece.language == "zh":
            self._guarded(piece, result, self._chinese)
        elif piece.text.text.strip():
            result.skipped.append(Dropped(piece.text.text, *span, "no English or Chinese letters"))

    def _guarded(self, piece: Segment, result: Tokenization, tokenize) -> None:
        # The official code logs and drops a segment whose tokenization raises; so do we,
        # but the drop is reported like any unknown symbol.
        try:
            tokenize(piece, result)
        except TextError as error:
            result.skipped.append(Dropped(piece.text.text, *piece.text.span(), str(error)))
        except Exception as error:  # noqa: BLE001 - third-party front-ends raise anything
            reason = f"{type(error).__name__}: {error}"
            result.skipped.append(Dropped(piece.text.text, *piece.text.span(), reason))

    def _english(self, piece: Segment, result: Tokenization) -> None:
        text = piece.text.text
        if self.normalize:
            text = self._english_normalization(text)
        sentences = self.backend.phonemize(text, ENGLISH_VOICE)
        result.add([phoneme for sentence in sentences for phoneme in sentence], piece.text.span())

    def _chinese(self, piece: Segment, result: Tokenization) -> None:
        text = piece.text.text
        if self.normalize:
            text = zipvoice_chinese_normalization(text)
        tokens = chinese_tokens(text)
        # Tokens that are not syllables are pieces of the text itself: locate them so an
        # unknown one is reported at its own position rather than the whole segment's.
        cursor = 0
        for token in tokens:
            span = piece.text.span()
            if token not in self.vocab:
                found = piece.text.text.find(token, cursor)
                if found >= 0:
                    span = piece.text.span(found, found + len(token))
                    cursor = found + len(token)
            result.add([token], span)


class DialogTokenizer(EmiliaTokenizer):
    """ZipVoice-Dialog's tokenizer: Emilia plus `[S1]`/`[S2]` speaker-turn tokens."""

    name: ClassVar[str] = "dialog"
    description: ClassVar[str] = "ZipVoice-Dialog front-end: Emilia tokens plus [S1]/[S2] speaker-turn tokens"

    SPEAKER_TAGS = ("[S1]", "[S2]")

    def __init__(self, tokens: str, strict: bool, backend: str, normalize: bool) -> None:
        super().__init__(tokens, strict, backend, normalize)
        missing = [tag for tag in self.SPEAKER_TAGS if tag not in self.vocab]
        if missing:
            raise ConfigError(f"{self.tokens_path} has no speaker-turn token(s) {', '.join(missing)}: not a dialog vocabulary")
        self.spk_a_id = self.vocab["[S1]"]
        self.spk_b_id = self.vocab["[S2]"]

    def describe(self) -> dict:
        return {**super().describe(), "spk_a_id": self.spk_a_id, "spk_b_id": self.spk_b_id}

    def preprocess(self, text: TrackedText) -> TrackedText:
        # Whitespace around a speaker tag is removed first, then punctuation is mapped.
        return map_punctuation(text.sub_keep_group(_SPEAKER_TAG_SPACES, 1))
