"""Cutting mixed Chinese/Latin text into runs of one script.

A character is "zh" (CJK ideographs), "latin" (any other letter) or neutral (digits, spaces,
punctuation, symbols). Neutral characters go with a neighbouring run: at the start and end of
the text, with the only neighbour. Between two runs, what is written against the next run
(after the stretch's last space) joins it: "for 2杯" -> "for " + "2杯"; the rest stays with the
previous run ("花了 5 dollars" -> "花了 5 " + "dollars"). A stretch without spaces touches both
runs: it joins a following Chinese run ("apple3个" -> "apple" + "3个"), else the previous one.
"""

from __future__ import annotations


from voxpipe.core.sentences import is_cjk  # noqa: E402  (re-exported: the script rules build on it)


def script_of(char: str) -> str | None:
    if is_cjk(char):
        return "zh"
    if char.isalpha():
        return "latin"
    return None


def script_runs(text: str) -> list[tuple[str, str | None]]:
    """[(run text, "zh" | "latin" | None)] covering `text` in order; None only when the text
    has no letter at all."""
    letters: list[tuple[int, int, str]] = []  # maximal runs of letters of one script (may include neutrals)
    for index, char in enumerate(text):
        kind = script_of(char)
        if kind is None:
            continue
        if letters and letters[-1][2] == kind:
            letters[-1] = (letters[-1][0], index + 1, kind)
        else:
            letters.append((index, index + 1, kind))
    if not letters:
        return [(text, None)] if text else []
    cuts = [0]
    for (_, end, _), (start, _, following) in zip(letters, letters[1:]):
        stretch = text[end:start]
        last_space = max((i for i, c in enumerate(stretch) if c.isspace()), default=-1)
        if last_space >= 0:
            cuts.append(end + last_space + 1)
        elif following == "zh":
            cuts.append(end)
        else:
            cuts.append(start)
    cuts.append(len(text))
    return [(text[a:b], run[2]) for a, b, run in zip(cuts, cuts[1:], letters)]
