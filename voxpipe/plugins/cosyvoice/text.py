"""`cosyvoice-text`: CosyVoice2/3's text tokenizer — the Qwen2 byte-level BPE of the model's
`CosyVoice-BlankEN` folder plus the special tokens the official `CosyVoice2Tokenizer` adds
(`<|endofprompt|>`, `[breath]`, `<strong>`, `[laughter]`, ...) and, with `version: cosyvoice3`
(the official `CosyVoice3Tokenizer`), `<|endofsystem|>` and 260 phoneme tokens (`[AA0]`...`[zh]`,
pinyin finals with tones `[iǎng]`...), read with Hugging Face's `tokenizers` (nothing
downloaded, no transformers).

The folder holds either a `tokenizer.json`, or `vocab.json` + `merges.txt` (+ the added tokens in
`tokenizer_config.json`), from which the same pipeline transformers' Qwen2 converter builds is
assembled: NFC, the Qwen2 split regex, byte-level BPE. Special tokens missing from the vocabulary
get the next ids in the official order (so `<|endofprompt|>` is 151646 with the official files).
Text is encoded as the official `encode`: no BOS/EOS added.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import ClassVar

from pydantic import Field

from voxpipe.core.component import Params
from voxpipe.core.errors import ConfigError, WeightsError
from voxpipe.core.tokenizer import Tokenizer

QWEN_SPLIT = (r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|"""
              r"""\s*[\r\n]+|\s+(?!\S)|\s+""")
ENDOFTEXT = "<|endoftext|>"
COSYVOICE2_SPECIAL = ("<|im_start|>", "<|im_end|>", "<|endofprompt|>", "[breath]", "<strong>", "</strong>", "[noise]",
                      "[laughter]", "[cough]", "[clucking]", "[accent]", "[quick_breath]", "<laughter>", "</laughter>",
                      "[hissing]", "[sigh]", "[vocalized-noise]", "[lipsmack]", "[mn]")
# CosyVoice3Tokenizer's additions after the CosyVoice2 list, in the official (= id) order:
# <|endofsystem|>, then these phone names, each in brackets ("[AA]", ..., "[ǜ]").
_COSYVOICE3_PHONES = """
AA AA0 AA1 AA2 AE AE0 AE1 AE2 AH AH0 AH1 AH2 AO AO0 AO1 AO2 AW AW0 AW1 AW2 AY AY0 AY1 AY2 B CH D DH
EH EH0 EH1 EH2 ER ER0 ER1 ER2 EY EY0 EY1 EY2 F G HH IH IH0 IH1 IH2 IY IY0 IY1 IY2 JH K L M N NG OW
OW0 OW1 OW2 OY OY0 OY1 OY2 P R S SH T TH UH UH0 UH1 UH2 UW UW0 UW1 UW2 V W Y Z ZH a ai an ang ao b c
ch d e ei en eng f g h i ian in ing iu ià iàn iàng iào iá ián iáng iáo iè ié iòng ióng iù iú iā iān
iāng iāo iē iě iōng iū iǎ iǎn iǎng iǎo iǒng iǔ j k l m n o ong ou p q r s sh t u uang ue un uo uà
uài uàn uàng uá uái uán uáng uè ué uì uí uò uó uā uāi uān uāng uē uě uī uō uǎ uǎi uǎn uǎng uǐ uǒ vè
w x y z zh à ài àn àng ào á ái án áng áo è èi èn èng èr é éi én éng ér ì ìn ìng í ín íng ò òng òu ó
óng óu ù ùn ú ún ā āi ān āng āo ē ēi ēn ēng ě ěi ěn ěng ěr ī īn īng ō ōng ōu ū ūn ǎ ǎi ǎn ǎng ǎo ǐ
ǐn ǐng ǒ ǒng ǒu ǔ ǔn ǘ ǚ ǜ
"""
COSYVOICE3_SPECIAL = (*COSYVOICE2_SPECIAL, "<|endofsystem|>", *(f"[{name}]" for name in _COSYVOICE3_PHONES.split()))
SPECIAL_TOKENS = {"cosyvoice2": COSYVOICE2_SPECIAL, "cosyvoice3": COSYVOICE3_SPECIAL}
ENDOFPROMPT = "<|endofprompt|>"


class CosyVoiceTextParams(Params):
    path: str = Field(..., description="the Qwen2 tokenizer folder (CosyVoice-BlankEN) or its tokenizer.json")
    version: str = Field("cosyvoice2", pattern="^cosyvoice[23]$",
                         description="special-token set: cosyvoice2 or cosyvoice3 (the yaml's get_tokenizer version)")


def build_qwen_tokenizer(path: str | Path, version: str = "cosyvoice2"):
    """A `tokenizers.Tokenizer` for a CosyVoice-BlankEN folder (or tokenizer.json), with the
    special tokens of CosyVoice `version` ("cosyvoice2" / "cosyvoice3") added."""
    if version not in SPECIAL_TOKENS:
        raise ConfigError(f"CosyVoice text tokenizer version {version!r}: expected one of {', '.join(SPECIAL_TOKENS)}")
    from tokenizers import Regex, decoders, models, normalizers, pre_tokenizers
    from tokenizers import Tokenizer as HFTokenizer

    path = Path(path).expanduser()
    if path.is_file():
        folder, json_file = path.parent, path
    else:
        folder, json_file = path, path / "tokenizer.json"
    if json_file.is_file():
        try:
            tokenizer = HFTokenizer.from_file(str(json_file))
        except Exception as error:  # noqa: BLE001 - tokenizers raises a bare Exception for bad files
            raise WeightsError(f"{json_file} is not a readable tokenizer.json: {error}") from None
    else:
        vocab, merges = folder / "vocab.json", folder / "merges.txt"
        if not (vocab.is_file() and merges.is_file()):
            raise WeightsError(f"{folder}: no tokenizer.json, nor vocab.json + merges.txt (the Qwen2 tokenizer of "
                               f"the CosyVoice model, its CosyVoice-BlankEN folder)")
        try:
            bpe = models.BPE.from_file(str(vocab), str(merges), unk_token=None, fuse_unk=False, byte_fallback=False)
        except Exception as error:  # noqa: BLE001
            raise WeightsError(f"{folder}: unreadable vocab.json / merges.txt: {error}") from None
        tokenizer = HFTokenizer(bpe)
        tokenizer.normalizer = normalizers.NFC()
        tokenizer.pre_tokenizer = pre_tokenizers.Sequence([
            pre_tokenizers.Split(Regex(QWEN_SPLIT), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
        tokenizer.decoder = decoders.ByteLevel()
        tokenizer.add_special_tokens(_configured_added_tokens(folder / "tokenizer_config.json"))
    tokenizer.add_special_tokens([ENDOFTEXT, *SPECIAL_TOKENS[version]])
    return tokenizer


def _configured_added_tokens(file: Path) -> list:
    """The added tokens of tokenizer_config.json, in id order, as `AddedToken`s."""
    from tokenizers import AddedToken

    if not file.is_file():
        return []
    try:
        decoder = json.loads(file.read_text(encoding="utf-8")).get("added_tokens_decoder", {})
    except (OSError, ValueError) as error:
        raise WeightsError(f"{file}: unreadable tokenizer config: {error}") from None
    tokens = []
    for _, entry in sorted(decoder.items(), key=lambda item: int(item[0])):
        tokens.append(AddedToken(entry["content"], single_word=entry.get("single_word", False),
                                 lstrip=entry.get("lstrip", False), rstrip=entry.get("rstrip", False),
                                 normalized=entry.get("normalized", False), special=entry.get("special", True)))
    return tokens


class CosyVoiceTextTokenizer(Tokenizer):
    """Qwen2 BPE + CosyVoice2/3 special tokens: text -> ids of the LM's text embedding."""

    name: ClassVar[str] = "cosyvoice-text"
    description: ClassVar[str] = "Qwen2 byte-level BPE of a CosyVoice model (CosyVoice-BlankEN) + its special tokens"
    Params: ClassVar[type[Params]] = CosyVoiceTextParams

    def __init__(self, *, path: str, version: str) -> None:
        from voxpipe.core.weights import resolve_path

        self.path = resolve_path(path, what="CosyVoice text tokenizer")
        self.version = version
        self.tokenizer = build_qwen_tokenizer(self.path, version)
        self.vocab = self.tokenizer.get_vocab(with_added_tokens=True)
        self.vocab_size = self.tokenizer.get_vocab_size(with_added_tokens=True)

    def tokenize(self, text: str) -> list[str]:
        return self.tokenizer.encode(self._check(text), add_special_tokens=False).tokens

    def encode(self, text: str) -> list[int]:
        return list(self.tokenizer.encode(self._check(text), add_special_tokens=False).ids)

    def decode(self, ids: list[int]) -> str:
        return self.tokenizer.decode(list(ids), skip_special_tokens=True)

    @staticmethod
    def _check(text: str) -> str:
        if not isinstance(text, str):
            raise ConfigError(f"text must be a string, got {type(text).__name__}")
        return text

    def token_id(self, token: str) -> int | None:
        """The id of a (special) token, e.g. `<|endofprompt|>`; None when absent."""
        return self.tokenizer.token_to_id(token)

    def describe(self) -> dict:
        return {"vocab_size": self.vocab_size, "version": self.version}
