"""espeak-ng phonemization, clause by clause, as piper-phonemize's `phonemize_espeak` returns it
(a list of sentences, each a list of phoneme code points with clause punctuation kept; see
espeak_clauses.py). The official ZipVoice front-end calls `phonemize_espeak(text, voice)`.

Two backends produce that list of sentences:

- `PiperBackend`: piper-phonemize itself (wheels for CPython 3.9-3.11 only). Exact by definition.
- `EspeakNGBackend`: the espeak-ng 1.52 library bundled with `espeakng-loader`, through ctypes.
  Stock espeak-ng does not report which punctuation ended a clause (piper uses a patched
  `espeak_TextToPhonemesWithTerminator`), so it is read back from the text that espeak consumed
  for the clause. See docs/text.md for where the two differ.
"""

from __future__ import annotations

import threading
from typing import Literal, Protocol

from voxpipe.core.errors import ConfigError, TextError
from voxpipe.plugins.tokenizers.espeak_clauses import (
    SENTENCE_END,
    clause_ending,
    ends_sentence_silently,
    piper_vowels,
    split_phonemes,
)
from voxpipe.plugins.tokenizers.espeakng_library import EspeakLibrary

Sentences = list[list[str]]
"""Phonemes (single code points) per sentence."""

BACKENDS = ("auto", "piper", "espeakng")
EspeakBackendName = Literal["auto", "piper", "espeakng"]
BACKEND_HELP = "espeak-ng binding: piper (piper-phonemize, exact), espeakng (espeakng-loader), auto = piper if importable"


class EspeakBackend(Protocol):
    name: str

    def phonemize(self, text: str, voice: str) -> Sentences: ...


class PiperBackend:
    """piper-phonemize's `phonemize_espeak` (its own patched espeak-ng and data)."""

    name = "piper"
    _lock = threading.Lock()  # espeak-ng keeps global state: one text at a time

    def __init__(self) -> None:
        try:
            from piper_phonemize import phonemize_espeak
        except ImportError as error:
            raise ConfigError(
                f"espeak backend 'piper' needs piper-phonemize==1.1.0 (wheels for CPython 3.9-3.11): {error}; "
                "use backend 'espeakng' (espeakng-loader) instead"
            ) from None
        self._phonemize = phonemize_espeak

    def phonemize(self, text: str, voice: str) -> Sentences:
        try:
            with self._lock:
                # espeak keeps the character it read past the previous text (e.g. after ".."):
                # an empty text first makes the result independent of what came before.
                self._phonemize("", voice)
                return self._phonemize(text, voice)
        except RuntimeError as error:
            raise TextError(f"espeak-ng (piper) could not phonemize {text!r} with voice {voice!r}: {error}") from None


class EspeakNGBackend:
    """espeak-ng 1.52 of espeakng-loader through ctypes, reproducing piper's clause handling."""

    name = "espeakng"

    def __init__(self) -> None:
        self._library = EspeakLibrary.get()

    def phonemize(self, text: str, voice: str) -> Sentences:
        separator = self._library.SEPARATOR
        sentences: Sentences = []
        current: list[str] | None = None
        for source, ipa, ascii_ in self._library.clauses(text, voice):
            if current is None:
                current = []
                sentences.append(current)
            phonemes = split_phonemes(piper_vowels(ipa, ascii_, separator))
            current.extend(phonemes)
            ending = clause_ending(source) if phonemes else ""
            current.extend(ending)
            if ending in SENTENCE_END or ends_sentence_silently(source):
                current = None
        return sentences


def make_backend(choice: str = "auto") -> EspeakBackend:
    """'piper' | 'espeakng' | 'auto' (piper when importable, else espeakng)."""
    if choice not in BACKENDS:
        raise ConfigError(f"unknown espeak backend {choice!r}; expected one of {', '.join(BACKENDS)}")
    if choice == "piper":
        return PiperBackend()
    if choice == "espeakng":
        return EspeakNGBackend()
    try:
        return PiperBackend()
    except ConfigError:
        return EspeakNGBackend()


def make_voice_backend(choice: str, language: str) -> EspeakBackend:
    """`make_backend(choice)`, checked to have the espeak-ng voice `language` (a ConfigError
    naming it), so an unknown voice fails when the tokenizer is built, not mid-synthesis."""
    backend = make_backend(choice)
    try:
        backend.phonemize("", language)
    except TextError as error:
        raise ConfigError(f"espeak-ng has no voice {language!r} (see `espeak-ng --voices`): {error}") from None
    return backend
