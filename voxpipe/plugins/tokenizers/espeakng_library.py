"""The espeak-ng 1.52 library bundled with espeakng-loader, through ctypes (any CPython).

espeak keeps global state (voice, the character read past the last clause), so one process-wide
instance serializes all calls.
"""

from __future__ import annotations

import ctypes
import threading

from voxpipe.core.errors import ConfigError


class EspeakLibrary:
    """The process-wide espeak-ng library of espeakng-loader (espeak keeps global state)."""

    _instance: "EspeakLibrary | None" = None
    _create_lock = threading.Lock()

    AUDIO_OUTPUT_SYNCHRONOUS = 2
    CHARS_UTF8 = 1
    PHONEMES_ASCII = 0x00
    PHONEMES_IPA = 0x02
    SEPARATOR = "\ue000"  # a private-use code point between phonemes (bits 8-23 of the mode)

    def __init__(self) -> None:
        try:
            import espeakng_loader
        except ImportError as error:
            raise ConfigError(f"espeak backend 'espeakng' needs espeakng-loader: {error}") from None
        self.lock = threading.Lock()
        lib = ctypes.CDLL(espeakng_loader.get_library_path())
        lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        lib.espeak_Initialize.restype = ctypes.c_int
        lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        lib.espeak_SetVoiceByName.restype = ctypes.c_int
        lib.espeak_TextToPhonemes.argtypes = [ctypes.POINTER(ctypes.c_void_p), ctypes.c_int, ctypes.c_int]
        lib.espeak_TextToPhonemes.restype = ctypes.c_char_p
        data_path = espeakng_loader.get_data_path().encode()
        if lib.espeak_Initialize(self.AUDIO_OUTPUT_SYNCHRONOUS, 0, data_path, 0) <= 0:
            raise ConfigError(f"espeak-ng could not be initialised with data at {data_path.decode()}")
        self.lib = lib
        self.voice: str | None = None

    @classmethod
    def get(cls) -> "EspeakLibrary":
        with cls._create_lock:
            if cls._instance is None:
                cls._instance = cls()
            return cls._instance

    def _set_voice(self, voice: str) -> None:
        if voice != self.voice:
            if self.lib.espeak_SetVoiceByName(voice.encode()) != 0:
                raise ConfigError(f"espeak-ng has no voice {voice!r} (see `espeak-ng --voices`)")
            self.voice = voice

    def _read_clauses(self, raw: bytes, mode: int) -> tuple[list[tuple[int, int]], list[str]]:
        """One espeak_TextToPhonemes call per clause: (consumed byte ranges, phoneme strings)."""
        # espeak keeps the character it read past the previous text (e.g. after "..") and would
        # read it into this one: flush it with an empty text first (piper-phonemize does not).
        self._call(b"", mode)
        buffer = ctypes.create_string_buffer(raw)
        base = ctypes.addressof(buffer)
        pointer = ctypes.c_void_p(base)
        consumed: list[tuple[int, int]] = []
        phonemes: list[str] = []
        while pointer.value is not None:
            start = pointer.value - base
            result = self.lib.espeak_TextToPhonemes(ctypes.byref(pointer), self.CHARS_UTF8, mode)
            end = len(raw) if pointer.value is None else pointer.value - base
            consumed.append((start, end))
            phonemes.append((result or b"").decode("utf-8", errors="replace"))
        return consumed, phonemes

    def _call(self, raw: bytes, mode: int) -> None:
        buffer = ctypes.create_string_buffer(raw)
        pointer = ctypes.c_void_p(ctypes.addressof(buffer))
        while pointer.value is not None:
            self.lib.espeak_TextToPhonemes(ctypes.byref(pointer), self.CHARS_UTF8, mode)

    def clauses(self, text: str, voice: str) -> list[tuple[str, str, str]]:
        """[(clause source text, IPA phonemes, ASCII phonemes)], phonemes separated by SEPARATOR."""
        raw = text.encode("utf-8")
        separator = ord(self.SEPARATOR) << 8
        with self.lock:
            self._set_voice(voice)
            consumed, ipa = self._read_clauses(raw, self.PHONEMES_IPA | separator)
            consumed_ascii, ascii_ = self._read_clauses(raw, self.PHONEMES_ASCII | separator)
        if consumed_ascii != consumed:  # never seen; keep the IPA without the vowel fix
            ascii_ = [""] * len(ipa)
        return [(_clause_source(raw, consumed, i), ipa[i], ascii_[i]) for i in range(len(ipa))]


def _clause_source(raw: bytes, consumed: list[tuple[int, int]], index: int) -> str:
    """Source text of clause `index`.

    espeak reads one character past a clause (the first character of the next one) before it
    returns, so every clause but the last ends one character early and starts one early.
    """
    start, end = consumed[index]
    last = index == len(consumed) - 1
    text = raw[start:end].decode("utf-8", errors="replace")
    if not last and text:
        text = text[:-1]
    if index > 0:
        previous = raw[consumed[index - 1][0]:consumed[index - 1][1]].decode("utf-8", errors="replace")
        if previous:
            text = previous[-1] + text
    return text
