"""Parity of the text front-end with the official ZipVoice / LuxTTS code.

References (read from <fixtures>, see the READMEs there):
  zipvoice/tokenizer.json   EmiliaTokenizer / DialogTokenizer output (piper_phonemize 1.1.0,
                            jieba, pypinyin): tokens, ids and the dropped (OOV) tokens;
  e2e/manifest.json + npz   the token strings, ids, chunks and max_tokens of the two official
                            inference pipelines.
Tolerance: none. Token strings, ids, dropped symbols and chunks must be identical.

Both espeak bindings are held to the same references: `espeakng` (espeakng-loader, any Python)
always, `piper` (piper-phonemize, wheels for CPython < 3.12 only) where it can be installed.
"""

from __future__ import annotations

import json
import sys
import warnings
from functools import lru_cache

import numpy as np
import pytest

from tests.parity.conftest import fixtures_root
from voxpipe.plugins.text.zipvoice_chunking import (
    add_punctuation,
    chunk_tokens_punctuation,
    max_tokens_for_prompt,
)
from voxpipe.plugins.tokenizers.emilia import DialogTokenizer, EmiliaTokenizer
from voxpipe.plugins.tokenizers.vocabulary import UnknownSymbolWarning

BACKENDS = ["espeakng"] + (["piper"] if sys.version_info < (3, 12) else [])


def _tokenizer_json() -> dict:
    return json.loads((fixtures_root() / "zipvoice" / "tokenizer.json").read_text(encoding="utf-8"))


def _e2e_manifest() -> dict:
    return json.loads((fixtures_root() / "e2e" / "manifest.json").read_text(encoding="utf-8"))


@lru_cache(maxsize=None)
def emilia(backend: str, tokens_file: str) -> EmiliaTokenizer:
    return EmiliaTokenizer(str(fixtures_root() / tokens_file), backend=backend)


@lru_cache(maxsize=None)
def dialog(backend: str) -> DialogTokenizer:
    return DialogTokenizer(str(fixtures_root() / "zipvoice" / "tokens_dialog.txt"), backend=backend)


def encode_recording_drops(tokenizer, text: str) -> tuple[list[int], list[str]]:
    """ids, and the symbols reported as dropped (at most one warning per text)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ids = tokenizer.encode(text)
    reports = [w for w in caught if issubclass(w.category, UnknownSymbolWarning)]
    assert len(reports) <= 1, "unknown symbols must be reported once per text"
    dropped = [d.symbol for d in reports[0].message.symbols] if reports else []
    return ids, dropped


EMILIA_CASES = _tokenizer_json()["emilia"]
DIALOG_CASES = _tokenizer_json()["dialog"]
E2E_CASES = sorted(_e2e_manifest()["cases"])


def test_reference_was_made_with_piper():
    reference = _tokenizer_json()
    assert reference["available"] and reference["piper_phonemize_version"] == "1.1.0"


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("case", EMILIA_CASES, ids=[c["text"] for c in EMILIA_CASES])
def test_emilia_tokens_ids_and_dropped_symbols(case, backend):
    tokenizer = emilia(backend, "zipvoice/tokens_emilia.txt")
    assert tokenizer.tokenize(case["text"]) == case["tokens"]
    ids, dropped = encode_recording_drops(tokenizer, case["text"])
    assert ids == case["ids"]
    assert dropped == case["oov"]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("case", DIALOG_CASES, ids=[c["text"] for c in DIALOG_CASES])
def test_dialog_tokens_and_ids(case, backend):
    tokenizer = dialog(backend)
    assert tokenizer.tokenize(case["text"]) == case["tokens"]
    ids, dropped = encode_recording_drops(tokenizer, case["text"])
    assert ids == case["ids"]
    assert dropped == case["oov"]


def _npz(case: str) -> dict:
    with np.load(fixtures_root() / "e2e" / f"{case}.npz") as arrays:
        return {name: arrays[name] for name in arrays.files}


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("case", E2E_CASES)
def test_e2e_prompt_and_text_tokens(case, backend):
    record = _e2e_manifest()["cases"][case]["record"]
    arrays = _npz(case)
    tokenizer = emilia(backend, "e2e/model/tokens.txt")
    assert tokenizer.tokenize(record["prompt_text"]) == record["prompt_tokens"]
    assert tokenizer.tokenize(record["text"]) == record["tokens"]
    assert tokenizer.encode(record["prompt_text"]) == arrays["prompt_token_ids"].tolist()
    assert tokenizer.encode(record["text"]) == arrays["token_ids"].tolist()


ZIPVOICE_CASES = [c for c in E2E_CASES if "chunks" in _e2e_manifest()["cases"][c]["record"]]


@pytest.mark.parametrize("case", ZIPVOICE_CASES)
def test_e2e_zipvoice_chunking(case):
    """add_punctuation -> tokens of the whole text -> chunk_tokens_punctuation(max_tokens)."""
    record = _e2e_manifest()["cases"][case]["record"]
    arrays = _npz(case)
    tokenizer = emilia(BACKENDS[-1], "e2e/model/tokens.txt")
    prompt_tokens = tokenizer.tokenize(add_punctuation(record["prompt_text"]))
    tokens = tokenizer.tokenize(add_punctuation(record["text"]))

    batchify = record["batchify_args"]
    speed = record["b0"]["sample_kwargs"]["speed"]
    prompt_seconds = batchify["prompt_duration"]
    assert max_tokens_for_prompt(prompt_seconds, len(prompt_tokens), speed) == record["max_tokens"]
    assert prompt_seconds / (len(prompt_tokens) * speed) == pytest.approx(batchify["token_duration"], rel=1e-12)

    chunks = chunk_tokens_punctuation(tokens, record["max_tokens"])
    assert chunks == record["chunks"]
    assert [len(c) for c in chunks] == arrays["chunk_token_lens"].tolist()
    chunk_ids = [tokenizer.tokens_to_ids(c) for c in chunks]
    # batches hold the chunks sorted by length; chunk_index maps them back to text order
    batched = [item for batch in record["batches"] for item in batch]
    assert [chunk_ids[i] for i in record["chunk_index"]] == batched
    assert sum(chunk_ids, []) == arrays["token_ids"].tolist()
