"""English text normalization: spell out what a phonemizer would read badly.

Numbers (cardinals, decimals, negatives, thousands separators), ordinals ("3rd"), years
("1999", "the 1990s"), currency ($, £, €; "$5 million"), percentages, times ("3:30 pm"), dates
("Jan. 3rd, 2024", "March 5", "5 March 2024", "2024-03-05", "3/5/2024" read US month/day),
fractions ("3/4") and common abbreviations ("Mr.", "Dr.", "etc.", "e.g."). Number words come
from num2words. Rules run in a fixed order; each one only sees digits the earlier ones left.
"""

from __future__ import annotations

import re
from typing import ClassVar

from voxpipe.core.component import Params
from voxpipe.core.text import TextNormalizer

MONTHS = (
    "January", "February", "March", "April", "May", "June",
    "July", "August", "September", "October", "November", "December",
)
_MONTH_BY_PREFIX = {m[:3].lower(): m for m in MONTHS}
_MONTH = (
    r"(?P<month>Jan(?:uary)?|Feb(?:ruary)?|Mar(?:ch)?|Apr(?:il)?|May|June?|July?|Aug(?:ust)?"
    r"|Sept?(?:ember)?|Oct(?:ober)?|Nov(?:ember)?|Dec(?:ember)?)\.?"
)

# Titles stand before a name: their period never ends a sentence.
_TITLES = {"Mr": "Mister", "Mrs": "Missus", "Ms": "Miz", "Dr": "Doctor", "Prof": "Professor",
           "Rev": "Reverend", "Gen": "General", "Capt": "Captain", "Sgt": "Sergeant", "Lt": "Lieutenant",
           "Col": "Colonel", "Mt": "Mount", "Ft": "Fort"}
# Other abbreviations may end a sentence: their period is kept when one follows.
_ABBREVIATIONS = {"etc": "et cetera", "vs": "versus", "e.g": "for example", "i.e": "that is",
                  "approx": "approximately", "Jr": "Junior", "Sr": "Senior", "Inc": "Incorporated",
                  "Ltd": "Limited", "Co": "Company", "Dept": "Department", "Ave": "Avenue", "Blvd": "Boulevard",
                  "St": "Street"}
_CURRENCIES = {"$": ("dollar", "dollars", "cent", "cents"), "€": ("euro", "euros", "cent", "cents"),
               "£": ("pound", "pounds", "penny", "pence")}
_SCALES = ("thousand", "million", "billion", "trillion")

_TITLE_RE = re.compile(r"\b(" + "|".join(_TITLES) + r")\.(?=\s)")
_ABBREVIATION_RE = re.compile(r"(?<![\w.])(" + "|".join(re.escape(a) for a in _ABBREVIATIONS) + r")\.(?=(\s+\S)?)")
# "St." is Saint before a name ("St. Louis") unless a name precedes it ("Baker St."): Street.
_SAINT_RE = re.compile(r"\bSt\.(?=\s+[A-Z])")
_NAME_BEFORE_RE = re.compile(r"\b([A-Z][a-z]+)\s+$")
_NOT_NAMES = {"The", "In", "At", "On", "To", "From", "Of", "And", "Near", "Visit", "By", "For", "With"}
_TIME_RE = re.compile(
    r"\b(?P<h>[01]?\d|2[0-3]):(?P<m>[0-5]\d)(?::[0-5]\d)?"
    r"(?:\s*(?P<ampm>[AaPp])(?P<dot>\.)?\s?[Mm]\b(?P<end>\.)?)?(?=(?P<after>\s+\S)?)"
)
_AMPM_RE = re.compile(r"\b(?P<h>1[0-2]|0?[1-9])\s*(?P<ampm>[AaPp])(?P<dot>\.)?\s?[Mm]\b(?P<end>\.)?(?=(?P<after>\s+\S)?)")
_ISO_DATE_RE = re.compile(r"\b(?P<y>\d{4})-(?P<mo>0?[1-9]|1[0-2])-(?P<d>0?[1-9]|[12]\d|3[01])\b")
_SLASH_DATE_RE = re.compile(r"\b(?P<mo>0?[1-9]|1[0-2])/(?P<d>0?[1-9]|[12]\d|3[01])/(?P<y>\d{4}|\d{2})\b")
_MONTH_DAY_RE = re.compile(r"\b" + _MONTH + r"\s+(?P<d>[12]\d|3[01]|0?[1-9])(?:st|nd|rd|th)?\b(?:,?\s+(?P<y>\d{4})\b)?")
_DAY_MONTH_RE = re.compile(r"\b(?P<d>[12]\d|3[01]|0?[1-9])(?:st|nd|rd|th)?\s+(?:of\s+)?" + _MONTH + r"(?:,?\s+(?P<y>\d{4})\b)?")
_CURRENCY_RE = re.compile(
    r"(?P<sym>[$€£])\s?(?P<int>\d{1,3}(?:,\d{3})+|\d+)(?:\.(?P<frac>\d+))?"
    r"(?:\s(?P<scale>" + "|".join(_SCALES) + r")\b)?"
)
_PERCENT_RE = re.compile(r"(?P<num>-?\d{1,3}(?:,\d{3})+(?:\.\d+)?|-?\d+(?:\.\d+)?)\s?%")
_ORDINAL_RE = re.compile(r"\b(?P<num>\d+)(?:st|nd|rd|th)\b")
_DECADE_RE = re.compile(r"\b(?P<year>1[1-9]\d0|20[0-9]0)s\b")
_YEAR_RE = re.compile(r"(?<![\d.,$€£-])\b(?P<year>1[1-9]\d\d|20\d\d)\b(?![.,]\d|%)")
_FRACTION_RE = re.compile(r"(?<![\d/])\b(?P<num>\d+)/(?P<den>\d+)\b(?!/)")
_DECIMAL_RE = re.compile(r"(?P<sign>(?<![\w.])-)?(?P<int>\d{1,3}(?:,\d{3})+|\d+)\.(?P<frac>\d+)\b")
_INTEGER_RE = re.compile(r"(?P<sign>(?<![\w.])-)?(?P<int>\d{1,3}(?:,\d{3})+(?!\d)|\d+)")
_SPACES_RE = re.compile(r"[ \t]{2,}")


def _words(number: int) -> str:
    from num2words import num2words

    # num2words writes "one thousand, two hundred": the comma would make a pause.
    return num2words(number, lang="en").replace(",", "")


def _ordinal(number: int) -> str:
    from num2words import num2words

    return num2words(number, lang="en", to="ordinal").replace(",", "")


def _year(year: int) -> str:
    from num2words import num2words

    if 2000 <= year < 2010:  # "two thousand five", not num2words' "two thousand and five"
        return "two thousand" + (f" {_words(year - 2000)}" if year > 2000 else "")
    return num2words(year, lang="en", to="year").replace(",", "")


def _int(digits: str) -> int:
    return int(digits.replace(",", ""))


def _digits(digits: str) -> str:
    return " ".join(_words(int(d)) for d in digits)


def _decimal(integer: str, fraction: str) -> str:
    return f"{_words(_int(integer))} point {_digits(fraction)}"


def _ampm(match: re.Match[str]) -> str:
    """" a m" / " p m", keeping a period that ends the sentence ("at 5 p.m." / "at 5pm.")."""
    spoken = f" {match.group('ampm').lower()} m"
    if match.group("end"):
        after = match.group("after")
        # "p.m." owns its last dot unless the sentence ends there; in "pm." the dot is the sentence's
        if not match.group("dot") or after is None or after.strip()[:1].isupper():
            spoken += "."
    return spoken


def _plural(words: str) -> str:
    last = words.split(" ")[-1]
    if last.endswith("y"):
        plural = last[:-1] + "ies"
    elif last.endswith("x") or last.endswith("s"):
        plural = last + "es"
    else:
        plural = last + "s"
    return words[: len(words) - len(last)] + plural


class EnglishNormalizer(TextNormalizer):
    """Numbers, currency, dates, times, percentages and abbreviations spelled out (num2words)."""

    name: ClassVar[str] = "english"
    description: ClassVar[str] = "English numbers, currency, dates, times, percentages, abbreviations -> words"
    Params: ClassVar[type[Params]] = Params

    def normalize(self, text: str) -> str:
        for rule in (
            self._abbreviations, self._times, self._dates, self._currency, self._percentages,
            self._ordinals, self._years, self._fractions, self._decimals, self._integers,
        ):
            text = rule(text)
        return _SPACES_RE.sub(" ", text)

    # ---- rules, in order ----------------------------------------------------------------
    @staticmethod
    def _abbreviations(text: str) -> str:
        def saint(match: re.Match[str]) -> str:
            before = _NAME_BEFORE_RE.search(match.string, 0, match.start())
            return "Street." if before and before.group(1) not in _NOT_NAMES else "Saint"

        text = _SAINT_RE.sub(saint, text)
        text = _TITLE_RE.sub(lambda m: _TITLES[m.group(1)], text)

        def expand(match: re.Match[str]) -> str:
            words = _ABBREVIATIONS[match.group(1)]
            following = match.group(2)
            ends_sentence = following is None or following.strip()[:1].isupper()
            return words + ("." if ends_sentence else "")

        return _ABBREVIATION_RE.sub(expand, text)

    @staticmethod
    def _times(text: str) -> str:
        def clock(match: re.Match[str]) -> str:
            hour, minute, ampm = int(match.group("h")), int(match.group("m")), match.group("ampm")
            if minute == 0:
                spoken = _words(hour) + ("" if ampm else " o'clock")
            elif minute < 10:
                spoken = f"{_words(hour)} oh {_words(minute)}"
            else:
                spoken = f"{_words(hour)} {_words(minute)}"
            return spoken + (_ampm(match) if ampm else "")

        text = _TIME_RE.sub(clock, text)
        return _AMPM_RE.sub(lambda m: _words(int(m.group("h"))) + _ampm(m), text)

    @staticmethod
    def _dates(text: str) -> str:
        def month_name(match: re.Match[str]) -> str:
            return _MONTH_BY_PREFIX[match.group("month").lower()[:3]]

        def year_suffix(match: re.Match[str], comma: bool) -> str:
            year = match.group("y")
            if not year:
                return ""
            if len(year) == 2:
                year = "20" + year
            return (", " if comma else " ") + _year(int(year))

        def month_day(match: re.Match[str]) -> str:
            return f"{month_name(match)} {_ordinal(int(match.group('d')))}{year_suffix(match, True)}"

        def day_month(match: re.Match[str]) -> str:
            return f"the {_ordinal(int(match.group('d')))} of {month_name(match)}{year_suffix(match, False)}"

        def numeric(match: re.Match[str]) -> str:
            month = MONTHS[int(match.group("mo")) - 1]
            return f"{month} {_ordinal(int(match.group('d')))}{year_suffix(match, True)}"

        text = _ISO_DATE_RE.sub(numeric, text)
        text = _SLASH_DATE_RE.sub(numeric, text)
        text = _MONTH_DAY_RE.sub(month_day, text)
        return _DAY_MONTH_RE.sub(day_month, text)

    @staticmethod
    def _currency(text: str) -> str:
        def amount(match: re.Match[str]) -> str:
            one, many, sub_one, sub_many = _CURRENCIES[match.group("sym")]
            whole, frac, scale = _int(match.group("int")), match.group("frac"), match.group("scale")
            if scale:  # "$2.5 million" -> "two point five million dollars"
                number = _decimal(match.group("int"), frac) if frac else _words(whole)
                return f"{number} {scale} {many}"
            cents = int((frac + "0")[:2]) if frac else 0
            if frac and len(frac) > 2:  # "$0.125": not a price in cents; read the decimal
                return f"{_decimal(match.group('int'), frac)} {many}"
            parts = []
            if whole or not cents:
                parts.append(f"{_words(whole)} {one if whole == 1 else many}")
            if cents:
                parts.append(f"{_words(cents)} {sub_one if cents == 1 else sub_many}")
            return " and ".join(parts)

        return _CURRENCY_RE.sub(amount, text)

    @staticmethod
    def _percentages(text: str) -> str:
        def percent(match: re.Match[str]) -> str:
            number = match.group("num")
            sign = "minus " if number.startswith("-") else ""
            number = number.lstrip("-")
            whole, _, frac = number.partition(".")
            spoken = _decimal(whole, frac) if frac else _words(_int(whole))
            return f"{sign}{spoken} percent"

        return _PERCENT_RE.sub(percent, text)

    @staticmethod
    def _ordinals(text: str) -> str:
        return _ORDINAL_RE.sub(lambda m: _ordinal(int(m.group("num"))), text)

    @staticmethod
    def _years(text: str) -> str:
        text = _DECADE_RE.sub(lambda m: _plural(_year(int(m.group("year")))), text)
        return _YEAR_RE.sub(lambda m: _year(int(m.group("year"))), text)

    @staticmethod
    def _fractions(text: str) -> str:
        def fraction(match: re.Match[str]) -> str:
            numerator, denominator = int(match.group("num")), int(match.group("den"))
            if denominator == 0:
                return f"{_words(numerator)} over zero"
            if denominator == 2:
                return "one half" if numerator == 1 else f"{_words(numerator)} halves"
            if denominator == 4:
                return "one quarter" if numerator == 1 else f"{_words(numerator)} quarters"
            name = _ordinal(denominator)
            return f"{_words(numerator)} {name if numerator == 1 else _plural(name)}"

        return _FRACTION_RE.sub(fraction, text)

    @staticmethod
    def _decimals(text: str) -> str:
        def decimal(match: re.Match[str]) -> str:
            sign = "minus " if match.group("sign") else ""
            return sign + _decimal(match.group("int"), match.group("frac"))

        return _DECIMAL_RE.sub(decimal, text)

    @staticmethod
    def _integers(text: str) -> str:
        def integer(match: re.Match[str]) -> str:
            sign = "minus " if match.group("sign") else ""
            digits = match.group("int")
            if len(digits) > 1 and digits.startswith("0"):  # "007", codes: digit by digit
                return sign + _digits(digits)
            return sign + _words(_int(digits))

        return _INTEGER_RE.sub(integer, text)
