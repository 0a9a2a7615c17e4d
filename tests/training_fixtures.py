"""Shared by the training tests: a tiny ZipVoice recipe (a few thousand parameters, F = 20 mels,
griffin-lim vocoder: nothing to download) and synthetic clips to prepare."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile

TESTS = Path(__file__).resolve().parent
TOKENS = TESTS / "fixtures" / "zipvoice" / "zipvoice" / "tokens.txt"  # emilia vocabulary, used char by char
RATE = 24000

TINY_MODEL = {
    "fm_decoder_downsampling_factor": [1, 2, 1],
    "fm_decoder_num_layers": [1, 1, 1],
    "fm_decoder_cnn_module_kernel": [7, 5, 7],
    "fm_decoder_feedforward_dim": 32,
    "fm_decoder_num_heads": 2,
    "fm_decoder_dim": 24,
    "text_encoder_num_layers": 1,
    "text_encoder_feedforward_dim": 24,
    "text_encoder_cnn_module_kernel": 5,
    "text_encoder_num_heads": 2,
    "text_encoder_dim": 16,
    "query_head_dim": 8,
    "value_head_dim": 4,
    "pos_head_dim": 2,
    "pos_dim": 16,
    "time_embed_dim": 16,
    "text_embed_dim": 16,
    "feat_dim": 20,
}


def tiny_pipeline() -> dict:
    return {
        "tokenizer": {"type": "simple", "tokens": str(TOKENS)},
        "chunker": {"type": "punctuation"},
        "synthesizer": {
            "type": "flow-matching",
            "features": {"type": "vocos-mel", "n_mels": 20},
            "acoustic_model": {"type": "zipvoice"},
            "solver": {"type": "euler", "num_steps": 2},
            "vocoder": {"type": "griffin-lim", "n_mels": 20, "n_iter": 2},
        },
    }


def tiny_recipe(directory: Path, cuts: Path, **sections) -> dict:
    """A recipe training TINY_MODEL from scratch on `cuts`, checkpoints in `directory`."""
    recipe = {
        **tiny_pipeline(),
        "model": dict(TINY_MODEL),
        "data": {"train": str(cuts), "max_duration": 3.0, "num_buckets": 2},
        "optim": {"type": "adamw", "lr": 0.002, "clip_grad_norm": 1.0},
        "schedule": {"type": "constant", "warmup_batches": 2},
        "checkpoint": {"dir": str(directory), "every_steps": 2, "keep_last": 2, "average_period": 2},
        "training": {"max_steps": 4, "progress": False, "tensorboard": False, "log_every": 1},
    }
    for key, value in sections.items():
        recipe[key] = {**recipe.get(key, {}), **value} if isinstance(value, dict) else value
    return recipe


TEXTS = ["hello world", "a quick test", "some more words here", "one two three", "the last one",
         "short", "another clip of speech", "training data"]


def write_clips(directory: Path, count: int = 8, seed: int = 0) -> list[tuple[str, str, Path]]:
    """`count` clips of 0.6-1.3 s (harmonic tones plus noise) -> (id, text, path) rows."""
    rng = np.random.default_rng(seed)
    directory.mkdir(parents=True, exist_ok=True)
    rows = []
    for index in range(count):
        seconds = 0.6 + 0.1 * index
        time = np.arange(int(seconds * RATE)) / RATE
        pitch = 120 + 20 * index
        wave = sum(np.sin(2 * np.pi * pitch * k * time) / k for k in range(1, 4)) * 0.2
        wave = (wave + 0.01 * rng.standard_normal(time.shape)).astype(np.float32)
        path = directory / f"clip{index}.wav"
        soundfile.write(path, wave, RATE)
        rows.append((f"clip{index}", TEXTS[index % len(TEXTS)], path))
    return rows


def write_tsv(path: Path, rows) -> Path:
    path.write_text("".join(f"{row_id}\t{text}\t{wav}\n" for row_id, text, wav in rows), encoding="utf-8")
    return path


def prepared_cuts(tmp: Path, count: int = 8) -> Path:
    """Clips prepared with the tiny pipeline (numpy storage: exact features) -> cuts manifest."""
    from voxpipe.core.config import build_config
    from voxpipe.training.data import CUTS_FILE, prepare_from_pipeline, read_tsv

    rows = write_clips(tmp / "wavs", count)
    config = tiny_pipeline()
    config["synthesizer"]["acoustic_model"]["weights"] = str(tmp)  # validated, never loaded here
    report = prepare_from_pipeline(build_config(config), read_tsv(write_tsv(tmp / "data.tsv", rows)),
                                   tmp / "data", storage="numpy")
    assert report.kept == count
    return tmp / "data" / CUTS_FILE
