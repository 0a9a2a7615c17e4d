"""Where text may be cut: sentence, clause and word units (the rules the `punctuation` chunker
packs and the streaming policy releases sentences by).

  sentence  after . ! ? … 。！？ (ASCII marks only before a space or the end; not after "Mr."
            and other known abbreviations or a single initial; closing quotes/brackets stay
            with the sentence);
  clause    after , ; : — ， ； ： 、 (ASCII marks only before a space or the end, so "1,000"
            stays whole);
  word      at spaces, and between two CJK ideographs or kana.
"""

from __future__ import annotations

import re


def is_cjk(char: str) -> bool:
    """A CJK ideograph (no spaces between words in Chinese and Japanese)."""
    code = ord(char)
    return (
        0x4E00 <= code <= 0x9FFF  # unified ideographs
        or 0x3400 <= code <= 0x4DBF  # extension A
        or 0x20000 <= code <= 0x2EBEF  # extensions B-F
        or 0xF900 <= code <= 0xFAFF  # compatibility ideographs
    )


SENTENCE_MARKS = ".!?…。！？"
CLAUSE_MARKS = ",;:—，；：、"
_SPACED_MARKS = set(".!?,;:")  # ASCII marks end a unit only before whitespace or the end
_CLOSERS = "\"'”’»)]}」』）】"
TURN_TAG = re.compile(r"\[S[12]\]")
_ABBREVIATIONS = {
    "mr", "mrs", "ms", "dr", "prof", "st", "jr", "sr", "vs", "etc", "e.g", "i.e", "no", "mt",
    "rev", "gen", "capt", "sgt", "lt", "col", "inc", "ltd", "co", "dept", "approx", "fig", "vol",
}
_LONGEST_ABBREVIATION = max(len(word) for word in _ABBREVIATIONS)
SENTENCE, CLAUSE, WORD = 0, 1, 2


def _mark_breaks(text: str, start: int, end: int, marks: str, scan_from: int | None = None) -> list[int]:
    """Positions right after a run of `marks` (plus closing quotes) that may end a unit.

    scan_from: resume the scan of text[start:end] there (a position the scan from `start`
    passes, e.g. where the scan of a shorter text stopped); only the breaks after it are
    returned. Streaming text uses it to scan each character once (`voxpipe.streaming.chunking`).
    """
    breaks = []
    i = start if scan_from is None else scan_from
    while i < end:
        if text[i] not in marks:
            i += 1
            continue
        j = i
        while j < end and (text[j] in marks or text[j] in _CLOSERS):
            j += 1
        run = text[i:j]
        ascii_only = all(c in _SPACED_MARKS or c in _CLOSERS for c in run)
        if ascii_only and j < end and not text[j].isspace():
            i = j
            continue  # "3.14", "1,000", "e.g.": not a break
        if run[0] == "." and _after_abbreviation(text, start, i):
            i = j
            continue
        breaks.append(j)
        i = j
    return breaks


def _after_abbreviation(text: str, start: int, dot: int) -> bool:
    word_start = dot
    # a word longer than the longest abbreviation is none: looking further back changes
    # nothing, and keeps "a.b.c.d..." linear
    limit = max(start, dot - _LONGEST_ABBREVIATION - 1)
    while word_start > limit and (text[word_start - 1].isalpha() or text[word_start - 1] == "."):
        word_start -= 1
    word = text[word_start:dot]
    return word.lower() in _ABBREVIATIONS or (len(word) == 1 and word.isupper())


def _unspaced(char: str) -> bool:
    """A character of a script written without spaces: any two may be cut apart."""
    return is_cjk(char) or "\u3040" <= char <= "\u30ff"  # hiragana, katakana


def _word_breaks(text: str, start: int, end: int) -> list[int]:
    breaks = []
    for i in range(start + 1, end):
        if text[i].isspace() and not text[i - 1].isspace():
            breaks.append(i)
        elif _unspaced(text[i - 1]) and _unspaced(text[i]):
            breaks.append(i)
    return breaks


def stripped_span(text: str, start: int, end: int) -> tuple[int, int] | None:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return (start, end) if start < end else None


def units(text: str, start: int, end: int, level: int) -> list[tuple[int, int]]:
    """Non-empty, whitespace-stripped pieces of text[start:end] cut at `level`'s cut points."""
    if level == SENTENCE:
        cuts = _mark_breaks(text, start, end, SENTENCE_MARKS)
    elif level == CLAUSE:
        cuts = _mark_breaks(text, start, end, CLAUSE_MARKS + SENTENCE_MARKS)
    else:
        cuts = _word_breaks(text, start, end)
    bounds = [start, *cuts, end]
    pieces = (stripped_span(text, a, b) for a, b in zip(bounds, bounds[1:]))
    return [piece for piece in pieces if piece is not None]
