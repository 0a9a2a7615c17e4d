"""Tokenizer interface: text -> token ids of an acoustic model's vocabulary."""

from __future__ import annotations

from pathlib import Path

from voxpipe.core.component import Component


def read_tokens_file(path: str | Path) -> dict[str, int]:
    """Read an official `tokens.txt` (`token<TAB>id` per line) strictly: the one reader every
    tokenizer and model uses.

    One token is a single space, so only the line end is removed and lines are split on the
    last tab. A line without a tab or integer id, a token listed twice, a non-UTF-8 file or an
    empty one is a ConfigError naming the file and line.
    """
    from voxpipe.core.errors import ConfigError

    path = Path(path)
    vocab: dict[str, int] = {}
    try:
        lines = path.read_bytes().decode("utf-8").split("\n")
    except UnicodeDecodeError as error:
        raise ConfigError(f"{path}: not UTF-8 text (byte {error.start}); expected 'token<TAB>id' lines") from None
    for number, line in enumerate(lines, start=1):
        line = line.rstrip("\r")
        if not line:
            continue
        token, tab, index = line.rpartition("\t")
        if not tab or not index.strip().isdigit():
            raise ConfigError(f"{path}:{number}: expected 'token<TAB>id', got {line[:80]!r}")
        if token in vocab:
            raise ConfigError(f"{path}:{number}: token {token!r} appears twice")
        vocab[token] = int(index)
    if not vocab:
        raise ConfigError(f"{path} lists no tokens")
    return vocab


class Tokenizer(Component):
    """Turns text into token ids.

    Attributes set by implementations:
      vocab:  token -> id (the model's `tokens.txt`), or None when the tokenizer has its own.
      pad_id: id of the padding token.
    """

    kind = "tokenizer"
    vocab: dict[str, int] | None = None
    pad_id: int = 0

    def tokenize(self, text: str) -> list[str]:
        """text -> token strings (before the vocabulary lookup)."""
        raise NotImplementedError

    def encode(self, text: str) -> list[int]:
        """text -> ids. Tokens missing from the vocabulary are reported (warning, or an error in
        strict mode), never silently dropped."""
        raise NotImplementedError

    def encode_batch(self, texts: list[str]) -> list[list[int]]:
        return [self.encode(text) for text in texts]

    def describe(self) -> dict:
        return {"vocab_size": len(self.vocab) if self.vocab else None}
