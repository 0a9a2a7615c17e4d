"""Chinese text normalization: Arabic numerals to Chinese numerals (cn2an) with the readings
cn2an does not choose itself: clock times (3:05 -> 三点零五分), long digit strings read digit by
digit (phone numbers, codes), 两 before measure words (2个 -> 两个), temperatures (℃), full-width
digits and percent signs, currency symbols ($5.50 -> 五点五美元). Dates (2024年3月5日 ->
二零二四年三月五日), percentages (百分之九十), decimals, fractions and negatives are cn2an's."""

from __future__ import annotations

import re
from typing import ClassVar

from voxpipe.core.component import Params
from voxpipe.core.text import TextNormalizer

_DIGITS = "零一二三四五六七八九"
_FULLWIDTH = str.maketrans("０１２３４５６７８９％．：", "0123456789%.:")
_TIME_RE = re.compile(r"(?<![\d:])(?P<h>[01]?\d|2[0-3])[:：](?P<m>[0-5]\d)(?![\d:])")
# 7 digits or more, or a leading zero: an identifier read digit by digit, not a quantity.
_DIGIT_STRING_RE = re.compile(r"(?<![\d.])(?:\d{7,}|0\d+)(?![\d.%])")
_MEASURE_WORDS = "个只本张位次件条辆把份种岁斤瓶杯碗块名台部篇首双对片天周点倍层间家句"
_TWO_RE = re.compile(r"(?<![\d.第])2(?=[" + _MEASURE_WORDS + r"]|小时|分钟|公里|千米|米)")
_CELSIUS_RE = re.compile(r"(-?\d+(?:\.\d+)?)\s*(?:℃|°C)")
_CURRENCY_RE = re.compile(r"(?P<sym>[$¥￥€£])\s?(?P<num>\d+(?:\.\d+)?)")
_CURRENCY_UNITS = {"$": "美元", "¥": "元", "￥": "元", "€": "欧元", "£": "英镑"}


def _digit_by_digit(digits: str) -> str:
    return "".join(_DIGITS[int(d)] for d in digits)


class ChineseNormalizer(TextNormalizer):
    """Arabic numerals, dates, times, percentages -> Chinese readings (cn2an)."""

    name: ClassVar[str] = "chinese"
    description: ClassVar[str] = "Chinese numbers, dates, times, percentages -> Chinese numerals (cn2an)"
    Params: ClassVar[type[Params]] = Params

    def normalize(self, text: str) -> str:
        import cn2an

        text = text.translate(_FULLWIDTH)
        text = _CELSIUS_RE.sub(lambda m: f"{m.group(1)}摄氏度", text)
        text = _CURRENCY_RE.sub(self._money, text)
        text = _TIME_RE.sub(self._clock, text)
        text = _DIGIT_STRING_RE.sub(lambda m: _digit_by_digit(m.group(0)), text)
        text = _TWO_RE.sub("两", text)
        return cn2an.transform(text, "an2cn")

    @staticmethod
    def _money(match: re.Match[str]) -> str:
        number = match.group("num")
        if "." in number:  # "5.50" is read 五点五
            number = number.rstrip("0").rstrip(".")
        unit = _CURRENCY_UNITS[match.group("sym")]
        written_after = match.string.startswith(unit, match.end())  # "￥100元"
        return number + ("" if written_after else unit)

    @staticmethod
    def _clock(match: re.Match[str]) -> str:
        import cn2an

        hour, minute = int(match.group("h")), int(match.group("m"))
        spoken = cn2an.an2cn(str(hour)) + "点"
        if minute == 0:
            return spoken + "整"
        if minute < 10:
            return spoken + "零" + _DIGITS[minute] + "分"
        return spoken + cn2an.an2cn(str(minute)) + "分"
