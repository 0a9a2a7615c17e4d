"""Where parity fixtures live: $VOXPIPE_FIXTURES, else the repository's tests/fixtures.

The same parity tests run unchanged on any directory of the same layout (`zipvoice/`,
`vocoders/`, `e2e/`), e.g. fixtures made from full-size official configs.
"""

from __future__ import annotations

import os
from pathlib import Path

FIXTURES_ENV = "VOXPIPE_FIXTURES"
REPOSITORY_FIXTURES = Path(__file__).resolve().parents[2] / "tests" / "fixtures"


def fixtures_root() -> Path:
    env = os.environ.get(FIXTURES_ENV)
    return Path(env).expanduser() if env else REPOSITORY_FIXTURES


# Official Hugging Face layouts, assembled from a fixtures root (what `--weights-dir` points at).
def assemble_official_layout(destination: Path, pipeline: str, model_name: str = "zipvoice_distill",
                             root: Path | None = None) -> Path:
    """Copy the e2e fixture model and the small vocoders into `destination` laid out as the
    official repositories: LuxTTS -> YatharthS/LuxTTS/{model.pt, config.json, tokens.txt,
    vocoder/}; ZipVoice -> k2-fsa/ZipVoice/<model_name>/ + charactr/vocos-mel-24khz/."""
    import shutil

    root = root or fixtures_root()
    model, vocoders = root / "e2e" / "model", root / "vocoders"
    if pipeline == "luxtts":
        repo = destination / "YatharthS" / "LuxTTS"
        shutil.copytree(model, repo)
        shutil.copytree(vocoders / "luxtts_vocoder" / "vocoder", repo / "vocoder")
    elif pipeline == "zipvoice":
        shutil.copytree(model, destination / "k2-fsa" / "ZipVoice" / model_name)
        shutil.copytree(vocoders / "vocos24k", destination / "charactr" / "vocos-mel-24khz")
    else:
        raise ValueError(f"unknown official pipeline {pipeline!r}; expected 'luxtts' or 'zipvoice'")
    return destination


E2E_PROMPT = "cmu_arctic_a0009.wav"
E2E_PROMPT_TEXT = "He turned sharply, and faced Gregson across the table."


def tiny_pipeline_config(root: Path | None = None, **sections) -> dict:
    """A LuxTTS-shaped pipeline on the small e2e fixture model and the small 24 kHz Vocos: fast,
    offline, random weights (noise-like audio, real plumbing). `sections` replace whole entries."""
    root = root or fixtures_root()
    config = {
        "tokenizer": {"type": "emilia", "tokens": str(root / "e2e" / "model" / "tokens.txt")},
        "chunker": {"type": "punctuation"},
        "features": {"type": "vocos-mel"},
        "acoustic_model": {"type": "zipvoice-distill", "weights": str(root / "e2e" / "model")},
        "guidance": {"type": "distilled", "scale": 3.0},
        "solver": {"type": "euler", "num_steps": 4},
        "vocoder": {"type": "vocos-24k", "weights": str(root / "vocoders" / "vocos24k")},
    }
    config.update(sections)
    return config
