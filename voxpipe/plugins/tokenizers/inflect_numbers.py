"""The number words of `inflect.engine().number_to_words` / `.ordinal`, for the calls ZipVoice's
English normalizer makes (non-negative integers, optionally with an ordinal suffix; grouping
0 or 2).

inflect itself is not used: importing inflect 7 takes about 6 s (typeguard re-parses the module
for each of its 23 type-checked methods). Its output quirks are kept, because they reach espeak:
"one thousand, two hundred thirty-four" (the comma makes a pause), "one hundred and one" with
the default "and", grouping by two for years ("nineteen, oh five").
"""

from __future__ import annotations

import re

_UNITS = ("", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
_TEENS = ("ten", "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen")
_TENS = ("", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety")
# inflect's scale words; the first is a lone space (it separates a final group from ", ").
_SCALES = (" ", " thousand", " million", " billion", " trillion", " quadrillion", " quintillion",
           " sextillion", " septillion", " octillion", " nonillion", " decillion")
_ORDINAL_ENDINGS = {"ty": "tieth", "one": "first", "two": "second", "three": "third", "five": "fifth",
                    "eight": "eighth", "nine": "ninth", "twelve": "twelfth"}
_ORDINAL_SUFFIXES = ("st", "nd", "rd", "th")
_ORDINAL_ENDING_RE = re.compile(rf"({'|'.join(_ORDINAL_ENDINGS)})\Z")
_SPACE_COMMA_RE = re.compile(r"\s+,")
_LAST_WORD_RE = re.compile(r", (\S+)\s+\Z")
_SPACES_RE = re.compile(r"\s+")


def _scale(index: int) -> str:
    if index >= len(_SCALES):
        raise ValueError("number too large for inflect's scale words")
    return _SCALES[index]


def _tens(tens: int, units: int, scale: int = 0) -> str:
    if tens == 1:
        return _TEENS[units] + _scale(scale)
    hyphen = "-" if tens and units else ""
    return _TENS[tens] + hyphen + _UNITS[units] + _scale(scale)


def _hundreds(hundreds: int, tens: int, units: int, scale: int, andword: str) -> str:
    if hundreds:
        joiner = f" {andword} " if tens or units else ""
        return f"{_UNITS[hundreds]} hundred{joiner}{_tens(tens, units)}{_scale(scale)}, "
    if tens or units:
        return f"{_tens(tens, units)}{_scale(scale)}, "
    return ""


def _words_by_scale(digits: str, zero: str, andword: str) -> str:
    """inflect's `enword(num, 0)`: groups of three from the right, each with its scale word."""
    if int(digits) == 0:
        return zero
    if int(digits) == 1:
        return "one"
    digits = digits.lstrip("0")
    parts: list[str] = []
    scale = 0
    while len(digits) >= 3:
        h, t, u = (int(d) for d in digits[-3:])
        parts.insert(0, _hundreds(h, t, u, scale, andword))
        digits = digits[:-3]
        scale += 1
    if len(digits) == 2:
        parts.insert(0, f"{_tens(int(digits[0]), int(digits[1]), scale)}, ")
    elif len(digits) == 1:
        parts.insert(0, f"{_UNITS[int(digits)]}{_scale(scale)}, ")
    return "".join(parts)


def _words_by_pairs(digits: str, zero: str) -> str:
    """inflect's `enword(num, 2)`: pairs of digits from the right, a lone leading digit alone."""
    head = (len(digits) - 1) % 2 + 1
    groups = [digits[:head]] + [digits[i:i + 2] for i in range(head, len(digits), 2)]
    out = []
    for group in groups:
        if len(group) == 1:
            out.append(f"{_UNITS[int(group)]}, " if int(group) else f" {zero}, ")
            continue
        tens, units = int(group[0]), int(group[1])
        if tens:
            out.append(f"{_tens(tens, units)}, ")
        elif units:
            out.append(f" {zero} {_UNITS[units]}, ")
        else:
            out.append(f" {zero} {zero}, ")
    return "".join(out)


def ordinal_words(words: str) -> str:
    """inflect's `ordinal(words)`: "three" -> "third", "twenty" -> "twentieth", "six" -> "sixth"."""
    changed = _ORDINAL_ENDING_RE.sub(lambda m: _ORDINAL_ENDINGS[m.group(1)], words)
    return changed + ("th" if changed == words else "")


def number_to_words(number: int | str, *, andword: str = "and", zero: str = "zero", group: int = 0) -> str:
    """inflect's `number_to_words` for a non-negative integer, given as int or digits with an
    optional ordinal suffix ("3rd" -> "third"); `group` 0 (by scale) or 2 (pairs, for years)."""
    text = str(number)
    is_ordinal = text[-2:] in _ORDINAL_SUFFIXES
    digits = text[:-2] if is_ordinal else text
    if not digits.isdigit() or group not in (0, 2):
        raise ValueError(f"number_to_words supports non-negative integers and group 0 or 2, got {number!r}")
    words = _words_by_scale(digits, zero, andword) if group == 0 else _words_by_pairs(digits, zero)
    if words.endswith(", "):
        words = words[:-2]
    words = _SPACE_COMMA_RE.sub(",", words)
    if group == 0:
        words = _LAST_WORD_RE.sub(f" {andword} \\1", words)  # "one thousand, one" -> "one thousand and one"
        words = _SPACE_COMMA_RE.sub(",", words)
    words = _SPACES_RE.sub(" ", words).strip()
    chunks = words.split(", ")
    if is_ordinal:
        chunks[-1] = ordinal_words(chunks[-1])
    return ", ".join(chunks)
