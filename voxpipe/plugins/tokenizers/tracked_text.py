"""Text that remembers where each character came from in the user's input.

The front-end rewrites text before it is phonemized (punctuation mapping, whitespace removal
around speaker tags); to name unknown symbols by their position in the *input*, every character
carries the input span `[start, end)` it was produced from.
"""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class TrackedText:
    text: str
    spans: tuple[tuple[int, int], ...]
    """One (start, end) input span per character of `text`."""

    @classmethod
    def of(cls, text: str) -> "TrackedText":
        return cls(text, tuple((i, i + 1) for i in range(len(text))))

    def __len__(self) -> int:
        return len(self.text)

    def span(self, start: int = 0, end: int | None = None) -> tuple[int, int]:
        """Input span covered by characters [start, end) (an empty span at the end if none)."""
        end = len(self.text) if end is None else end
        if start >= end:
            anchor = self.spans[start][0] if start < len(self.spans) else (self.spans[-1][1] if self.spans else 0)
            return anchor, anchor
        return self.spans[start][0], self.spans[end - 1][1]

    def slice(self, start: int, end: int) -> "TrackedText":
        return TrackedText(self.text[start:end], self.spans[start:end])

    @classmethod
    def join(cls, parts: list["TrackedText"]) -> "TrackedText":
        return cls("".join(p.text for p in parts), tuple(s for p in parts for s in p.spans))

    def replace(self, old: str, new: str) -> "TrackedText":
        """`str.replace(old, new)` (left to right, non-overlapping); new characters take the
        span of the whole match."""
        if old not in self.text:
            return self
        chars: list[str] = []
        spans: list[tuple[int, int]] = []
        i = 0
        while i < len(self.text):
            if self.text.startswith(old, i):
                covered = self.span(i, i + len(old))
                chars.extend(new)
                spans.extend([covered] * len(new))
                i += len(old)
            else:
                chars.append(self.text[i])
                spans.append(self.spans[i])
                i += 1
        return TrackedText("".join(chars), tuple(spans))

    def sub_keep_group(self, pattern: re.Pattern[str], group: int) -> "TrackedText":
        """`pattern.sub(r"\\<group>", text)`: every match is replaced by one of its groups."""
        parts: list[TrackedText] = []
        position = 0
        for match in pattern.finditer(self.text):
            parts.append(self.slice(position, match.start()))
            parts.append(self.slice(match.start(group), match.end(group)))
            position = match.end()
        parts.append(self.slice(position, len(self.text)))
        return TrackedText.join(parts)
