"""Parity of the text front-end with the official ZipVoice / LuxTTS code.

References (read from the fixture root, see the READMEs there):
  zipvoice/tokenizer.json   EmiliaTokenizer / DialogTokenizer output (piper_phonemize 1.1.0,
                            jieba, pypinyin): tokens, ids and the dropped (OOV) tokens;
  e2e/manifest.json + npz   the token strings, ids, chunks and max_tokens of the two official
                            inference pipelines.
Tolerance: none. Token strings, ids, dropped symbols and chunks must be identical. Every case of
a reference file is checked and all mismatches are reported together.

Both espeak bindings are held to the same references: `espeakng` (espeakng-loader, any Python)
always, `piper` (piper-phonemize, wheels for CPython < 3.12 only) where it can be installed.
"""

from __future__ import annotations

import json
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

from voxpipe.plugins.text.zipvoice_chunking import add_punctuation, chunk_tokens_punctuation, max_tokens_for_prompt
from voxpipe.plugins.tokenizers.emilia import DialogTokenizer, EmiliaTokenizer
from voxpipe.plugins.tokenizers.vocabulary import UnknownSymbolWarning

FIXTURE_GLOBS = {
    "tokenizer_json": "zipvoice/tokenizer.json",
    "e2e_manifest": "e2e/manifest.json",
}
BACKENDS = ["espeakng"] + (["piper"] if sys.version_info < (3, 12) else [])


def encode_recording_drops(tokenizer, text: str) -> tuple[list[int], list[str]]:
    """ids, and the symbols reported as dropped (at most one warning per text)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ids = tokenizer.encode(text)
    reports = [w for w in caught if issubclass(w.category, UnknownSymbolWarning)]
    assert len(reports) <= 1, f"unknown symbols of {text!r} must be reported once"
    dropped = [d.symbol for d in reports[0].message.symbols] if reports else []
    return ids, dropped


def mismatches(tokenizer, cases: list[dict]) -> list[str]:
    problems = []
    for case in cases:
        text = case["text"]
        tokens = tokenizer.tokenize(text)
        ids, dropped = encode_recording_drops(tokenizer, text)
        if tokens != case["tokens"]:
            problems.append(f"{text!r}: tokens {tokens} != reference {case['tokens']}")
        if ids != case["ids"]:
            problems.append(f"{text!r}: ids {ids} != reference {case['ids']}")
        if dropped != case["oov"]:
            problems.append(f"{text!r}: dropped {dropped} != reference OOV {case['oov']}")
    return problems


@pytest.mark.parametrize("backend", BACKENDS)
def test_emilia_and_dialog_tokenizers(tokenizer_json: Path, backend: str):
    reference = json.loads(tokenizer_json.read_text(encoding="utf-8"))
    assert reference["available"] and reference["piper_phonemize_version"] == "1.1.0"
    assert reference["emilia"] and reference["dialog"]
    emilia = EmiliaTokenizer(str(tokenizer_json.parent / "tokens_emilia.txt"), backend=backend)
    dialog = DialogTokenizer(str(tokenizer_json.parent / "tokens_dialog.txt"), backend=backend)
    problems = mismatches(emilia, reference["emilia"]) + mismatches(dialog, reference["dialog"])
    assert not problems, "\n".join(problems)


def _records(e2e_manifest: Path) -> dict[str, dict]:
    cases = json.loads(e2e_manifest.read_text(encoding="utf-8"))["cases"]
    assert cases
    return {name: case["record"] for name, case in sorted(cases.items())}


def _ids(e2e_manifest: Path, case: str) -> dict[str, list[int]]:
    with np.load(e2e_manifest.parent / f"{case}.npz") as arrays:
        return {name: arrays[name].tolist() for name in ("prompt_token_ids", "token_ids", "chunk_token_lens") if name in arrays}


@pytest.mark.parametrize("backend", BACKENDS)
def test_e2e_prompt_and_text_tokens(e2e_manifest: Path, backend: str):
    tokenizer = EmiliaTokenizer(str(e2e_manifest.parent / "model" / "tokens.txt"), backend=backend)
    problems = []
    for case, record in _records(e2e_manifest).items():
        ids = _ids(e2e_manifest, case)
        pairs = (("prompt_text", "prompt_tokens", "prompt_token_ids"), ("text", "tokens", "token_ids"))
        for text_key, tokens_key, ids_key in pairs:
            text = record[text_key]
            if tokenizer.tokenize(text) != record[tokens_key]:
                problems.append(f"{case} {text_key} {text!r}: tokens differ")
            if tokenizer.encode(text) != ids[ids_key]:
                problems.append(f"{case} {text_key} {text!r}: ids differ")
    assert not problems, "\n".join(problems)


def test_e2e_zipvoice_chunking(e2e_manifest: Path):
    """add_punctuation -> tokens of the whole text -> chunk_tokens_punctuation(max_tokens)."""
    tokenizer = EmiliaTokenizer(str(e2e_manifest.parent / "model" / "tokens.txt"), backend=BACKENDS[-1])
    zipvoice_cases = {name: r for name, r in _records(e2e_manifest).items() if "chunks" in r}
    assert zipvoice_cases
    for case, record in zipvoice_cases.items():
        ids = _ids(e2e_manifest, case)
        prompt_tokens = tokenizer.tokenize(add_punctuation(record["prompt_text"]))
        tokens = tokenizer.tokenize(add_punctuation(record["text"]))

        batchify = record["batchify_args"]
        speed = record["b0"]["sample_kwargs"]["speed"]
        prompt_seconds = batchify["prompt_duration"]
        assert max_tokens_for_prompt(prompt_seconds, len(prompt_tokens), speed) == record["max_tokens"], case
        assert prompt_seconds / (len(prompt_tokens) * speed) == pytest.approx(batchify["token_duration"], rel=1e-12)

        chunks = chunk_tokens_punctuation(tokens, record["max_tokens"])
        assert chunks == record["chunks"], case
        assert [len(c) for c in chunks] == ids["chunk_token_lens"], case
        chunk_ids = [tokenizer.tokens_to_ids(c) for c in chunks]
        # batches hold the chunks sorted by length; chunk_index maps them back to text order
        batched = [item for batch in record["batches"] for item in batch]
        assert [chunk_ids[i] for i in record["chunk_index"]] == batched, case
        assert sum(chunk_ids, []) == ids["token_ids"], case
