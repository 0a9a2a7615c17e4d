"""The text normalization built into ZipVoice's Emilia tokenizer, reproduced for parity.

English (inflect's number words, see inflect_numbers.py; tacotron-cleaner style): a fixed list of abbreviations matched as whole
words in any case ("mr" -> "mister", "st" -> "saint", ...), then numbers: thousands commas
removed, £/$ amounts, fractions, decimals ("point"), percent, ordinals, and integers (1001-2999
read as years: "twenty twenty-four", "nineteen oh five"). inflect's own output is kept as is,
commas included ("one thousand, two hundred thirty-four"): espeak then pauses there, as
officially. Chinese: `cn2an.transform(text, "an2cn")`.

This is not voxpipe's general-purpose normalizer (see voxpipe.plugins.text): it exists so that
the Emilia tokenizer produces the official ids. Its oddities are the official ones.
"""

from __future__ import annotations

import re

from voxpipe.plugins.tokenizers.inflect_numbers import number_to_words, ordinal_words

_ABBREVIATIONS = (
    ("mrs", "misess"), ("mr", "mister"), ("dr", "doctor"), ("st", "saint"), ("co", "company"),
    ("jr", "junior"), ("maj", "major"), ("gen", "general"), ("drs", "doctors"), ("rev", "reverend"),
    ("lt", "lieutenant"), ("hon", "honorable"), ("sgt", "sergeant"), ("capt", "captain"),
    ("esq", "esquire"), ("ltd", "limited"), ("col", "colonel"), ("ft", "fort"), ("etc", "et cetera"),
    ("btw", "by the way"),
)
_ABBREVIATION_RES = tuple((re.compile(rf"\b{short}\b", re.IGNORECASE), long) for short, long in _ABBREVIATIONS)

_COMMA_NUMBER = re.compile(r"([0-9][0-9,]+[0-9])")
_DECIMAL_NUMBER = re.compile(r"([0-9]+\.[0-9]+)")
_PERCENT_NUMBER = re.compile(r"([0-9.,]*[0-9]+%)")
_POUNDS = re.compile(r"£([0-9,]*[0-9]+)")
_DOLLARS = re.compile(r"\$([0-9.,]*[0-9]+)")
_FRACTION = re.compile(r"([0-9]+)/([0-9]+)")
_ORDINAL = re.compile(r"[0-9]+(st|nd|rd|th)")
_NUMBER = re.compile(r"[0-9]+")


class ZipVoiceEnglishNormalization:
    """ZipVoice's `EnglishTextNormalizer.normalize`."""

    def __call__(self, text: str) -> str:
        for pattern, replacement in _ABBREVIATION_RES:
            text = pattern.sub(replacement, text)
        return self._numbers(text)

    def _numbers(self, text: str) -> str:
        text = _COMMA_NUMBER.sub(lambda m: m.group(1).replace(",", ""), text)
        text = _POUNDS.sub(r"\1 pounds", text)
        text = _DOLLARS.sub(self._dollars, text)
        text = _FRACTION.sub(self._fraction, text)
        text = _DECIMAL_NUMBER.sub(lambda m: m.group(1).replace(".", " point "), text)
        text = _PERCENT_NUMBER.sub(lambda m: m.group(1).replace("%", " percent "), text)
        text = _ORDINAL.sub(lambda m: " " + number_to_words(m.group(0)) + " ", text)
        return _NUMBER.sub(self._integer, text)

    @staticmethod
    def _dollars(match: re.Match[str]) -> str:
        amount = match.group(1)
        parts = amount.split(".")
        if len(parts) > 2:
            return " " + amount + " dollars "
        dollars = int(parts[0]) if parts[0] else 0
        cents = int(parts[1]) if len(parts) > 1 and parts[1] else 0
        dollar_unit = "dollar" if dollars == 1 else "dollars"
        cent_unit = "cent" if cents == 1 else "cents"
        if dollars and cents:
            return f" {dollars} {dollar_unit}, {cents} {cent_unit} "
        if dollars:
            return f" {dollars} {dollar_unit} "
        if cents:
            return f" {cents} {cent_unit} "
        return " zero dollars "

    @staticmethod
    def _fraction(match: re.Match[str]) -> str:
        numerator, denominator = int(match.group(1)), int(match.group(2))
        words = number_to_words
        if numerator == 1 and denominator == 2:
            return " one half "
        if numerator == 1 and denominator == 4:
            return " one quarter "
        if denominator == 2:
            return " " + words(numerator) + " halves "
        if denominator == 4:
            return " " + words(numerator) + " quarters "
        return " " + words(numerator) + " " + ordinal_words(words(denominator)) + " "

    @staticmethod
    def _integer(match: re.Match[str]) -> str:
        number = int(match.group(0))
        words = number_to_words
        if 1000 < number < 3000:
            if number == 2000:
                return " two thousand "
            if 2000 < number < 2010:
                return " two thousand " + words(number % 100) + " "
            if number % 100 == 0:
                return " " + words(number // 100) + " hundred "
            return " " + words(number, andword="", zero="oh", group=2).replace(", ", " ") + " "
        return " " + words(number, andword="") + " "


def zipvoice_chinese_normalization(text: str) -> str:
    """ZipVoice's `ChineseTextNormalizer.normalize`: Arabic numerals to Chinese with cn2an."""
    import cn2an

    return cn2an.transform(text, "an2cn")
