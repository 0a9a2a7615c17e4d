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

from typing import Callable, ClassVar

from voxpipe.core.component import Params
from voxpipe.core.errors import ConfigError
from voxpipe.core.sentences import SENTENCE, TURN_TAG, WORD, stripped_span, units
from voxpipe.core.text import TextChunker, TextSpan

Measure = Callable[[str], float]


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
        whole = stripped_span(text, turn_start, turn_end)
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
