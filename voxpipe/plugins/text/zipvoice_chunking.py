"""ZipVoice's chunking rule (infer_zipvoice.py), exactly, plus a text-level `zipvoice` chunker.

Officially the whole text is tokenized first, then the *token* list is cut:
  1. a final "." is added to the text when it does not end in one of `;:,.!?；：，。！？`
     (`add_punctuation`);
  2. the tokens are cut after every punctuation token of that set; a punctuation or space token
     that would start a piece is appended to the previous piece instead;
  3. pieces are merged greedily while `len(chunk) + len(piece) <= max_tokens`;
  4. max_tokens = int((25 - prompt_seconds) / token_seconds), with token_seconds =
     prompt_seconds / (prompt_token_count * speed): a chunk plus the prompt lasts about 25 s.
The dialog model cuts at `[S1]` turns instead (`chunk_tokens_dialog`).

`ZipVoiceChunker.split` applies steps 2-3 to text (marks of the set, ASCII ones only before a
space or the end, as espeak only keeps those), with `measure` instead of token counts; use
`split_tokens` for the official token-level behaviour.
"""

from __future__ import annotations

from typing import Callable, ClassVar, Sequence

from pydantic import Field

from voxpipe.core.component import Params
from voxpipe.core.errors import ConfigError, TextError
from voxpipe.core.text import TextChunker, TextSpan

PUNCTUATION = frozenset(";:,.!?；：，。！？")
MAX_SECONDS = 25.0
SPEAKER_A = "[S1]"


def add_punctuation(text: str) -> str:
    """`text.strip()` plus "." unless it already ends in ZipVoice's punctuation set."""
    text = text.strip()
    if not text:
        raise TextError("cannot synthesize an empty text")
    return text if text[-1] in PUNCTUATION else text + "."


def max_tokens_for_prompt(prompt_seconds: float, prompt_token_count: int, speed: float = 1.0,
                          max_seconds: float = MAX_SECONDS) -> int:
    """Tokens per chunk so that prompt + chunk last about `max_seconds` (ZipVoice: 25 s).

    prompt_seconds: duration of the (silence-trimmed) prompt audio; prompt_token_count: tokens of
    its transcript (unknown ones included, as officially).
    """
    if prompt_token_count <= 0:
        raise TextError("the prompt transcript has no tokens")
    token_seconds = prompt_seconds / (prompt_token_count * speed)
    return int((max_seconds - prompt_seconds) / token_seconds)


def _merge(pieces: list[list[str]], max_tokens: int) -> list[list[str]]:
    chunks: list[list[str]] = []
    current: list[str] = []
    for piece in pieces:
        if len(current) + len(piece) <= max_tokens:
            current.extend(piece)
        else:
            if current:
                chunks.append(current)
            current = list(piece)
    if current:
        chunks.append(current)
    return chunks


def chunk_tokens_punctuation(tokens: Sequence[str], max_tokens: int = 100) -> list[list[str]]:
    """ZipVoice's `chunk_tokens_punctuation` (steps 2-3 of the module docstring)."""
    pieces: list[list[str]] = []
    current: list[str] = []
    for token in tokens:
        if not current and pieces and (token in PUNCTUATION or token == " "):
            pieces[-1].append(token)
            continue
        current.append(token)
        if token in PUNCTUATION:
            pieces.append(current)
            current = []
    if current:
        pieces.append(current)
    return _merge(pieces, max_tokens)


def chunk_tokens_dialog(tokens: Sequence[str], max_tokens: int = 100) -> list[list[str]]:
    """ZipVoice-Dialog's `chunk_tokens_dialog`: pieces start at each `[S1]`, then merged."""
    pieces: list[list[str]] = []
    current: list[str] = []
    for token in tokens:
        if token == SPEAKER_A and current:
            pieces.append(current)
            current = []
        current.append(token)
    if current:
        pieces.append(current)
    return _merge(pieces, max_tokens)


def _text_pieces(text: str) -> list[tuple[int, int]]:
    """Step 2 on characters: cut after marks of the set; leading marks/spaces stay behind."""
    pieces: list[tuple[int, int]] = []
    start = 0
    for index, char in enumerate(text):
        if char not in PUNCTUATION:
            continue
        ascii_mark = char.isascii()
        if ascii_mark and index + 1 < len(text) and not text[index + 1].isspace():
            continue  # "3.14", "a,b": espeak keeps no mark there
        if not text[start:index].strip() and pieces:
            continue  # a mark right after a cut stays with the previous piece
        pieces.append((start, index + 1))
        start = index + 1
    if text[start:].strip():
        pieces.append((start, len(text)))
    elif pieces:
        pieces[-1] = (pieces[-1][0], len(text))
    return pieces


class ZipVoiceChunkerParams(Params):
    dialog: bool = Field(False, description="cut at [S1] turns (ZipVoice-Dialog) instead of punctuation")


class ZipVoiceChunker(TextChunker):
    """ZipVoice's rule: cut after each punctuation mark, merge pieces greedily under the budget."""

    name: ClassVar[str] = "zipvoice"
    description: ClassVar[str] = "ZipVoice's infer_zipvoice.py chunking: cut at punctuation, greedy merge under max tokens"
    Params: ClassVar[type[Params]] = ZipVoiceChunkerParams

    def __init__(self, dialog: bool) -> None:
        self.dialog = dialog

    def split_tokens(self, tokens: Sequence[str], max_tokens: int) -> list[list[str]]:
        """The official token-level chunking (tokens of the whole text, after add_punctuation)."""
        if max_tokens <= 0:
            raise ConfigError(f"max_tokens must be > 0, got {max_tokens}")
        rule = chunk_tokens_dialog if self.dialog else chunk_tokens_punctuation
        return rule(tokens, max_tokens)

    def split(self, text: str, budget: float, measure: Callable[[str], float] = len) -> list[TextSpan]:
        if not budget > 0:
            raise ConfigError(f"chunk budget must be > 0, got {budget!r}")
        if self.dialog:
            starts = [i for i in range(len(text)) if text.startswith(SPEAKER_A, i)]
            bounds = sorted({0, *starts, len(text)})
            pieces = list(zip(bounds, bounds[1:]))
        else:
            pieces = _text_pieces(text)
        spans: list[TextSpan] = []
        current: tuple[int, int] | None = None
        for start, end in pieces:
            if current is not None and measure(text[current[0]:end].strip()) <= budget:
                current = (current[0], end)
                continue
            if current is not None:
                spans.append(_span(text, *current))
            current = (start, end)
        if current is not None:
            spans.append(_span(text, *current))
        return [span for span in spans if span.text]


def _span(text: str, start: int, end: int) -> TextSpan:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return TextSpan(text[start:end], start, end)
