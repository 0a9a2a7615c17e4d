"""Chinese text to ZipVoice's pinyin tokens: jieba words, pypinyin TONE3 syllables (with tone
sandhi, neutral tone written 5), each split into its initial (suffixed "0" so it never equals
an espeak phoneme) and its tone-numbered final."""

from __future__ import annotations

import logging
import threading

_TONES = ("1", "2", "3", "4", "5")
_jieba_lock = threading.Lock()
_jieba_ready = False


def is_tone3_syllable(text: str) -> bool:
    """Letters followed by one tone digit 1-5, e.g. "hao3" (as the official check)."""
    return bool(text) and text[:-1].isalpha() and text[-1] in _TONES


def split_syllable(syllable: str) -> list[str]:
    """"hao3" -> ["h0", "ao3"]; "er4" -> ["er4"] (no initial)."""
    from pypinyin.contrib.tone_convert import to_finals_tone3, to_initials

    initial = to_initials(syllable, strict=False)
    final = to_finals_tone3(syllable, strict=False, neutral_tone_with_five=True)
    return ([initial + "0"] if initial else []) + ([final] if final else [])


def _words(text: str) -> list[str]:
    global _jieba_ready
    import jieba

    with _jieba_lock:
        if not _jieba_ready:
            # jieba announces building its dictionary on stderr at DEBUG level; keep it quiet.
            logger = logging.getLogger("jieba")
            level = logger.level
            jieba.setLogLevel(logging.WARNING)
            try:
                jieba.initialize()
            finally:
                jieba.setLogLevel(level)
            _jieba_ready = True
    return list(jieba.cut(text))


def chinese_tokens(text: str) -> list[str]:
    """Tokens of already normalized Chinese text. Anything pypinyin does not turn into a
    syllable (punctuation, spaces, Latin letters, other symbols) is passed through as one token."""
    from pypinyin import Style, lazy_pinyin

    syllables = lazy_pinyin(_words(text), style=Style.TONE3, tone_sandhi=True, neutral_tone_with_five=True)
    tokens: list[str] = []
    for syllable in syllables:
        if is_tone3_syllable(syllable):
            tokens.extend(split_syllable(syllable))
        else:
            tokens.append(syllable)
    return tokens
