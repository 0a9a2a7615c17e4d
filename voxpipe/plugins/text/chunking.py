"""The `punctuation` chunker: long text -> spans that each fit a budget, cut where a reader pauses.

Cut points, coarsest first:
  sentence  after . ! ? … 。！？ (ASCII marks only before a space or the end; not after "Mr."
            and other known abbreviations or a single initial; closing quotes/brackets stay
            with the sentence);
  clause    after , ; : — ， ； ： 、 (ASCII marks only before a space or the end, so "1,000"
            stays whole);
  word      at spaces, and between two CJK ideographs or kana (Chinese and Japanese have no
            spaces).

The text is cut into sentences, which are packed greedily while `measure(chunk) <= budget`.
Only a sentence that does not fit alone is cut into clauses (packed the same way), only a
clause that does not fit into words; a single word over budget is kept whole — never cut inside.

Dialog turns (`[S1]`, `[S2]`) are the coarsest unit: whole turns are packed together, and a turn
is cut only when it alone exceeds the budget. Every piece of a cut turn keeps the turn's tag, so
the speaker stays known: its `TextSpan.text` is the tag (as written, with the space after it)
followed by `source[start:end]`; for every other span `text == source[start:end]`.
"""

from __future__ import annotations

import re
from typing import Callable, ClassVar

from voxpipe.core.component import Params
from voxpipe.core.errors import ConfigError
from voxpipe.core.text import TextChunker, TextSpan
from voxpipe.plugins.text.scripts import is_cjk

Measure = Callable[[str], float]

SENTENCE_MARKS = ".!?…。！？"
CLAUSE_MARKS = ",;:—，；：、"
_SPACED_MARKS = set(".!?,;:")  # ASCII marks end a unit only before whitespace or the end
_CLOSERS = "\"'”’»)]}」』）】"
TURN_TAG = re.compile(r"\[S[12]\]")
_ABBREVIATIONS = {
    "mr", "mrs", "ms", "dr", "prof", "st", "jr", "sr", "vs", "etc", "e.g", "i.e", "no", "mt",
    "rev", "gen", "capt", "sgt", "lt", "col", "inc", "ltd", "co", "dept", "approx", "fig", "vol",
}
SENTENCE, CLAUSE, WORD = 0, 1, 2


def _mark_breaks(text: str, start: int, end: int, marks: str) -> list[int]:
    """Positions right after a run of `marks` (plus closing quotes) that may end a unit."""
    breaks = []
    i = start
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
    while word_start > start and (text[word_start - 1].isalpha() or text[word_start - 1] == "."):
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


def _stripped(text: str, start: int, end: int) -> tuple[int, int] | None:
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
    pieces = (_stripped(text, a, b) for a, b in zip(bounds, bounds[1:]))
    return [piece for piece in pieces if piece is not None]


class _Packer:
    """Greedy packing of one text under `measure(piece) <= budget` (pieces measured with the
    turn-tag prefix they will carry)."""

    def __init__(self, text: str, budget: float, measure: Measure) -> None:
        self.text, self.budget, self.measure = text, budget, measure

    def fits(self, start: int, end: int, prefix: str = "") -> bool:
        return self.measure(prefix + self.text[start:end]) <= self.budget

    def pack(self, start: int, end: int, level: int, prefix: str = "") -> list[tuple[int, int]]:
        chunks: list[tuple[int, int]] = []
        current: tuple[int, int] | None = None
        for unit_start, unit_end in units(self.text, start, end, level):
            if current is not None and self.fits(current[0], unit_end, prefix):
                current = (current[0], unit_end)
                continue
            if current is not None:
                chunks.append(current)
                current = None
            if self.fits(unit_start, unit_end, prefix):
                current = (unit_start, unit_end)
            elif level < WORD:
                chunks.extend(self.pack(unit_start, unit_end, level + 1, prefix))
            else:
                chunks.append((unit_start, unit_end))  # one word over budget: kept whole
        if current is not None:
            chunks.append(current)
        return chunks


def _turns(text: str) -> list[tuple[int, int, int]]:
    """(turn start, content start, end) per dialog turn; content start = after the tag and
    its spaces. Text before the first tag is a turn without tag (content start = start)."""
    tags = list(TURN_TAG.finditer(text))
    if not tags:
        return [(0, 0, len(text))]
    turns = []
    if text[: tags[0].start()].strip():
        turns.append((0, 0, tags[0].start()))
    for index, tag in enumerate(tags):
        end = tags[index + 1].start() if index + 1 < len(tags) else len(text)
        content = tag.end()
        while content < end and text[content].isspace():
            content += 1
        turns.append((tag.start(), content, end))
    return turns


def split_text(text: str, budget: float, measure: Measure = len) -> list[TextSpan]:
    """`punctuation` chunking of `text` (see the module docstring)."""
    if not budget > 0:
        raise ConfigError(f"chunk budget must be > 0, got {budget!r}")
    packer = _Packer(text, budget, measure)
    spans: list[TextSpan] = []
    pending: tuple[int, int] | None = None  # whole turns packed together

    def flush() -> None:
        nonlocal pending
        if pending is not None:
            spans.append(TextSpan(text[pending[0]:pending[1]], *pending))
            pending = None

    for turn_start, content_start, turn_end in _turns(text):
        whole = _stripped(text, turn_start, turn_end)
        if whole is None:
            continue
        if pending is not None and packer.fits(pending[0], whole[1]):
            pending = (pending[0], whole[1])
            continue
        flush()
        if packer.fits(*whole):
            pending = whole
            continue
        tag = text[turn_start:content_start]
        pieces = packer.pack(content_start, turn_end, SENTENCE, prefix=tag)
        for index, (start, end) in enumerate(pieces):
            if index == 0 and start == content_start:
                spans.append(TextSpan(text[turn_start:end], turn_start, end))
            else:
                spans.append(TextSpan(tag + text[start:end], start, end))
    flush()
    return spans


class PunctuationChunker(TextChunker):
    """Sentence, then clause, then word boundaries; dialog turns kept whole when they fit."""

    name: ClassVar[str] = "punctuation"
    description: ClassVar[str] = "deterministic chunks under a budget: sentence > clause > word cuts, [S1]/[S2] turns kept"
    Params: ClassVar[type[Params]] = Params

    def split(self, text: str, budget: float, measure: Measure = len) -> list[TextSpan]:
        return split_text(text, budget, measure)
