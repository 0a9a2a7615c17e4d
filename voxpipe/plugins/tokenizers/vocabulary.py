"""Token-file vocabularies and the visible handling of symbols a vocabulary lacks.

The official ZipVoice tokenizers drop tokens missing from `tokens.txt` (and whole text segments
they cannot read) without a word. voxpipe drops exactly the same ones, so the ids stay those of
the official code, but says so: one `UnknownSymbolWarning` per encoded text naming every
dropped symbol and where it came from in the input, or a `TextError` with the same message
when the tokenizer is strict.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

from voxpipe.core.errors import ConfigError, TextError
from voxpipe.core.tokenizer import Tokenizer, read_tokens_file

PAD_TOKEN = "_"


class UnknownSymbolWarning(UserWarning):
    """Symbols of a text were dropped because the vocabulary has no id for them.

    `symbols` lists them as `Dropped` records (what, where in the input text, why).
    """

    def __init__(self, message: str, symbols: tuple["Dropped", ...] = ()) -> None:
        super().__init__(message)
        self.symbols = symbols


class UnknownSymbolError(TextError):
    """Strict mode: the text has symbols the vocabulary cannot encode (`symbols` as above)."""

    def __init__(self, message: str, symbols: tuple["Dropped", ...] = ()) -> None:
        super().__init__(message)
        self.symbols = symbols


@dataclass(frozen=True)
class Dropped:
    """Something of the input text that produced no token id."""

    symbol: str
    """The token (or the input text, for a skipped segment) that was dropped."""
    start: int
    end: int
    """Input characters [start, end) it came from."""
    reason: str = "not in the vocabulary"


@dataclass
class Tokenization:
    """Tokens of one text, where each came from, and what the front-end could not read."""

    tokens: list[str] = field(default_factory=list)
    spans: list[tuple[int, int]] = field(default_factory=list)
    skipped: list[Dropped] = field(default_factory=list)

    def add(self, tokens: list[str], span: tuple[int, int]) -> None:
        self.tokens.extend(tokens)
        self.spans.extend([span] * len(tokens))


def load_vocabulary(location: str) -> tuple[dict[str, int], str]:
    """(token -> id, resolved path) of a `tokens.txt` given as a path or `hf://` location."""
    from voxpipe.core.weights import resolve_path

    path = resolve_path(location, what="tokens file")
    if path.is_dir():
        path = path / "tokens.txt"
        if not path.is_file():
            raise ConfigError(f"tokens file not found: {path}")
    return read_tokens_file(path), str(path)


class VocabularyTokenizer(Tokenizer):
    """Base of the tokenizers whose vocabulary is an official `tokens.txt`.

    Subclasses implement `analyze(text) -> Tokenization`. `tokenize` returns those tokens as
    they are (unknown ones included: the official chunking counts them); `encode` looks them up,
    drops the unknown ones as the official code does and reports them once.
    """

    def __init__(self, tokens: str, strict: bool) -> None:
        self.vocab, self.tokens_path = load_vocabulary(tokens)
        if PAD_TOKEN not in self.vocab:
            raise ConfigError(f"{self.tokens_path} has no padding token {PAD_TOKEN!r}")
        self.pad_id = self.vocab[PAD_TOKEN]
        self.strict = strict

    # ---- to implement -------------------------------------------------------------------
    def analyze(self, text: str) -> Tokenization:
        raise NotImplementedError

    # ---- public API ---------------------------------------------------------------------
    def tokenize(self, text: str) -> list[str]:
        """Token strings as the official tokenizer produces them, unknown ones included.

        Does not report anything (it is called many times while chunking); `encode` does.
        """
        return self.analyze(text).tokens

    def encode(self, text: str) -> list[int]:
        """Ids of the official tokenizer; dropped symbols are reported once (warning or, when
        strict, `UnknownSymbolError`)."""
        result = self.analyze(text)
        ids: list[int] = []
        dropped = list(result.skipped)
        for token, (start, end) in zip(result.tokens, result.spans):
            index = self.vocab.get(token)
            if index is None:
                dropped.append(Dropped(token, start, end))
            else:
                ids.append(index)
        if dropped:
            self._report(text, dropped)
        return ids

    def tokens_to_ids(self, tokens: list[str]) -> list[int]:
        """Ids of already tokenized text (e.g. one chunk of `tokenize(text)`).

        Unknown tokens are dropped as officially; they were found by `tokenize`'s caller, so
        only a strict tokenizer complains (it raises, naming them).
        """
        unknown = [t for t in tokens if t not in self.vocab]
        if unknown and self.strict:
            names = ", ".join(repr(t) for t in dict.fromkeys(unknown))
            raise UnknownSymbolError(f"tokens not in the vocabulary of {self.tokens_path}: {names}")
        return [self.vocab[t] for t in tokens if t in self.vocab]

    def describe(self) -> dict:
        return {"vocab_size": len(self.vocab), "pad_id": self.pad_id}

    # ---- reporting ----------------------------------------------------------------------
    def _report(self, text: str, dropped: list[Dropped]) -> None:
        message = describe_dropped(text, dropped, self.tokens_path)
        if self.strict:
            raise UnknownSymbolError(message, tuple(dropped))
        # stacklevel 3: the warning points at the caller of encode()
        warnings.warn(UnknownSymbolWarning(message, tuple(dropped)), stacklevel=3)


def describe_dropped(text: str, dropped: list[Dropped], tokens_path: str) -> str:
    """One message naming every dropped symbol, its input position and the input there."""
    shown = text if len(text) <= 80 else text[:77] + "..."
    items = []
    for item in dropped:
        source = text[item.start:item.end]
        where = f"at {item.start}" if item.end - item.start <= 1 else f"at {item.start}:{item.end}"
        origin = f" from {source!r}" if source and source != item.symbol else ""
        items.append(f"{item.symbol!r} {where}{origin} ({item.reason})")
    return (
        f"{len(dropped)} symbol{'s' if len(dropped) != 1 else ''} of {shown!r} cannot be encoded with "
        f"{tokens_path} and {'were' if len(dropped) != 1 else 'was'} dropped: " + "; ".join(items)
    )
