"""Splitting mixed text by script, as ZipVoice's Emilia tokenizer does.

The text is cut into parts: `<...>` / `[...]` groups (pinyin / tags) or single characters;
newlines match no part and disappear. A part is "zh" (CJK U+4E00-U+9FA5, or a `<...>` group),
"en" (ASCII letter) or "other" (digits, spaces, punctuation, every other script). Runs of one
language form a segment; "other" parts join the segment they follow (at the very start, the one
they precede). Finally `<...>` groups become "pinyin" segments and `[...]` groups "tag" segments.
A text with no zh/en part is a single "other" segment, which the official tokenizer skips.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from voxpipe.plugins.tokenizers.tracked_text import TrackedText

_PART = re.compile(r"[<[].*?[>\]]|.")
_SPECIAL = re.compile(r"([<[].*?[>\]])")


@dataclass(frozen=True)
class Segment:
    text: TrackedText
    language: str  # "zh" | "en" | "pinyin" | "tag" | "other"


def _is_pinyin(part: str) -> bool:
    return part.startswith("<") and part.endswith(">")


def _is_tag(part: str) -> bool:
    return part.startswith("[") and part.endswith("]")


def part_language(part: str) -> str:
    # The official checks compare whole strings with single characters ("\u4e00" <= part <= "\u9fa5"),
    # so a multi-character part is classified by that string order too; reproduced as is.
    if ("\u4e00" <= part <= "\u9fa5") or _is_pinyin(part):
        return "zh"
    if ("A" <= part <= "Z") or ("a" <= part <= "z"):
        return "en"
    return "other"


def segment(text: TrackedText) -> list[Segment]:
    """Language segments of `text`, in order."""
    parts = [text.slice(m.start(), m.end()) for m in _PART.finditer(text.text)]
    runs: list[tuple[list[TrackedText], str]] = []
    current: list[TrackedText] = []
    language = ""
    for index, part in enumerate(parts):
        kind = part_language(part.text)
        if index == 0:
            current, language = [part], kind
        elif language == "other":
            current.append(part)
            language = kind
        elif kind in (language, "other"):
            current.append(part)
        else:
            runs.append((current, language))
            current, language = [part], kind
    runs.append((current, language))
    return [piece for parts_, lang in runs for piece in _split_special(TrackedText.join(parts_), lang)]


def _split_special(run: TrackedText, language: str) -> list[Segment]:
    """Cut `<pinyin>` and `[tag]` groups out of a run as segments of their own."""
    segments: list[Segment] = []
    position = 0
    pieces: list[tuple[int, int]] = []
    for match in _SPECIAL.finditer(run.text):
        pieces.append((position, match.start()))
        pieces.append((match.start(), match.end()))
        position = match.end()
    pieces.append((position, len(run.text)))
    for start, end in pieces:
        if start == end:
            continue
        piece = run.slice(start, end)
        if _is_pinyin(piece.text):
            segments.append(Segment(piece, "pinyin"))
        elif _is_tag(piece.text):
            segments.append(Segment(piece, "tag"))
        else:
            segments.append(Segment(piece, language))
    return segments
