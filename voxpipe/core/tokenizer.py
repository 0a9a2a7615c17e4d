"""Tokenizer interface: text -> token ids of an acoustic model's vocabulary."""

from __future__ import annotations

from pathlib import Path

from voxpipe.core.component import Component


def read_tokens_file(path: str | Path) -> dict[str, int]:
    """Read the official `tokens.txt` (`token<TAB>id` per line).

    One token is a single space, so lines are split on the last tab and never stripped.
    """
    path = Path(path)
    vocab: dict[str, int] = {}
    for number, line in enumerate(path.read_text(encoding="utf-8").split("\n"), start=1):
        line = line.rstrip("\r")
        if not line:
            continue
        token, sep, index = line.rpartition("\t")
        if not sep:
            from voxpipe.core.errors import ConfigError

            raise ConfigError(f"{path}:{number}: expected 'token<TAB>id', got {line!r}")
        vocab[token] = int(index)
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
