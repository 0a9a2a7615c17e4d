"""`vibevoice-text`: the Qwen2 byte-level BPE tokenizer of a VibeVoice model, from its
`tokenizer.json` (read with Hugging Face's `tokenizers`; nothing is downloaded).

The official processor tokenizes a script as `text.strip() + "\\n"` without special tokens;
`encode` does the same for each chunk it is given.
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from pydantic import Field

from voxpipe.core.component import Params
from voxpipe.core.errors import ConfigError, WeightsError
from voxpipe.core.tokenizer import Tokenizer

TOKENIZER_FILE = "tokenizer.json"
PAD_TOKEN = "<|endoftext|>"


class VibeVoiceTextParams(Params):
    path: str = Field(..., description="tokenizer.json, or a folder holding it (the model folder)")


def tokenizer_file(path: str | Path) -> Path:
    from voxpipe.core.weights import resolve_path

    found = resolve_path(str(path), what="VibeVoice tokenizer")
    file = found / TOKENIZER_FILE if found.is_dir() else found
    if not file.is_file():
        raise WeightsError(f"{found} has no {TOKENIZER_FILE} (the Qwen2 tokenizer of the model; copy it from "
                           f"the Qwen2.5 checkpoint the model was trained from)")
    return file


class VibeVoiceTextTokenizer(Tokenizer):
    """Qwen2 BPE: text -> ids of the LM's vocabulary."""

    name: ClassVar[str] = "vibevoice-text"
    description: ClassVar[str] = "Qwen2 byte-level BPE from the model's tokenizer.json (text.strip() + newline)"
    Params: ClassVar[type[Params]] = VibeVoiceTextParams

    def __init__(self, *, path: str) -> None:
        from tokenizers import Tokenizer as HFTokenizer

        self.file = tokenizer_file(path)
        try:
            self.tokenizer = HFTokenizer.from_file(str(self.file))
        except Exception as error:  # noqa: BLE001 - tokenizers raises a bare Exception for bad files
            raise WeightsError(f"{self.file} is not a readable tokenizer.json: {error}") from None
        self.vocab = self.tokenizer.get_vocab(with_added_tokens=True)  # token string -> LM id
        pad = self.tokenizer.token_to_id(PAD_TOKEN)
        self.pad_id = 0 if pad is None else pad
        self.vocab_size = self.tokenizer.get_vocab_size(with_added_tokens=True)

    def tokenize(self, text: str) -> list[str]:
        return self.tokenizer.encode(self._script(text), add_special_tokens=False).tokens

    def encode(self, text: str) -> list[int]:
        return list(self.tokenizer.encode(self._script(text), add_special_tokens=False).ids)

    @staticmethod
    def _script(text: str) -> str:
        if not isinstance(text, str):
            raise ConfigError(f"text must be a string, got {type(text).__name__}")
        return text.strip() + "\n"

    def describe(self) -> dict:
        return {"vocab_size": self.vocab_size}
