"""Parity of the vocoders with the official code (vocos 0.1.0; LinaCodec's vocoder as LuxTTS runs it).

Reads <fixtures>/vocoders/ (see its README for every array) and the vocoder stage of the
<fixtures>/e2e/ records. All sizes and settings come from the files, so the same tests run on
full-size official-config fixtures via VOXPIPE_FIXTURES.

Tolerances (|actual - ref| <= atol + rtol * |ref|):
  waveforms (|x| ~ 0.1):                         atol 1e-5             (README: float32 reaches ~1e-5)
  network intermediates (backbone, upsampler):   atol 1e-4, rtol 1e-5  (LayerNorm outputs, |x| ~ 1-10)
  resampled prompts (e2e):                       atol 1e-5
Measured on the bundled fixtures: <= 4e-8 on every waveform, 0 on the intermediates.
"""

from __future__ import annotations

import json
import re
from functools import lru_cache
from pathlib import Path

import numpy as np
import pytest
import soundfile
import torch

from voxpipe.dsp.crossfade import crossfade_concat
from voxpipe.dsp.loudness import match_prompt_loudness
from voxpipe.dsp.resample import resample_sinc
from voxpipe.plugins.vocos.vocos24k import Vocos24k
from voxpipe.plugins.vocos.vocos48k import LuxVocos48k
from voxpipe.testing.fixtures import case_models

FIXTURE_GLOBS = {"e2e_case": "e2e/*.npz"}
WAVE = dict(atol=1e-5, rtol=0.0)
HIDDEN = dict(atol=1e-4, rtol=1e-5)
LUXTTS_OUTPUT_TARGET_RMS = 0.1  # LuxTTS's generate(): fixed, independent of encode_prompt's rms
LUXTTS_FEATURE_SCALE = 0.1
ZIPVOICE_CROSSFADE_SECONDS = 0.1


@pytest.fixture
def vocoders_dir(fixtures_root: Path) -> Path:
    return fixtures_root / "vocoders"


def read_json(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def arrays(path: Path) -> dict[str, np.ndarray]:
    with np.load(path) as data:
        return {name: data[name] for name in data.files}


def close(actual: torch.Tensor, expected: np.ndarray, tolerance: dict, what: str) -> None:
    expected = torch.from_numpy(np.asarray(expected)).float()
    torch.testing.assert_close(actual.float(), expected, msg=lambda m: f"{what}: {m}", **tolerance)


@lru_cache(maxsize=4)
def vocos_24k(directory: Path, chunk_frames: int | None = None) -> Vocos24k:
    return Vocos24k(weights=str(directory), chunk_frames=chunk_frames)


@lru_cache(maxsize=4)
def vocos_48k(directory: Path, freq_range: float, output: str = "48k", chunk_frames: int | None = None) -> LuxVocos48k:
    return LuxVocos48k(weights=str(directory), freq_range=freq_range, output=output, chunk_frames=chunk_frames)


def lux_freq_range(vocoders_dir: Path) -> float:
    return float(read_json(vocoders_dir / "manifest.json")["vocoder48k"]["freq_range"])


# -- 24 kHz Vocos ---------------------------------------------------------------------------------
def test_vocos24k_backbone_and_waveform(vocoders_dir: Path):
    data = arrays(vocoders_dir / "vocos24k" / "io.npz")
    vocoder = vocos_24k(vocoders_dir / "vocos24k")
    mel = torch.from_numpy(data["mel"])
    close(vocoder.backbone(mel), data["backbone_out"], HIDDEN, "backbone_out")
    close(vocoder.decode(mel), data["wav"], WAVE, "wav")


def test_vocos24k_chunked_decode_matches_reference(vocoders_dir: Path):
    data = arrays(vocoders_dir / "vocos24k" / "io.npz")
    frames = data["mel"].shape[-1]
    vocoder = vocos_24k(vocoders_dir / "vocos24k", chunk_frames=max(16, frames // 3))
    close(vocoder.decode(torch.from_numpy(data["mel"])), data["wav"], WAVE, "wav decoded in chunks")


# -- 48 kHz LuxTTS vocoder ---------------------------------------------------------------------------
def test_vocos48k_intermediates(vocoders_dir: Path):
    data = arrays(vocoders_dir / "luxtts_vocoder" / "io.npz")
    vocoder = vocos_48k(vocoders_dir / "luxtts_vocoder", lux_freq_range(vocoders_dir))
    hidden = vocoder.backbone(torch.from_numpy(data["mel"]))
    close(hidden, data["backbone_out"], HIDDEN, "backbone_out")
    hidden = torch.from_numpy(data["backbone_out"])  # each stage from the reference input of that stage
    close(vocoder.upsample(hidden), data["upsampled"], HIDDEN, "upsampled")
    close(vocoder.head_48k(torch.from_numpy(data["upsampled"])), data["head48k_raw"], WAVE, "head48k_raw")
    close(vocoder.head_24k(hidden), data["head24k"], WAVE, "head24k")
    close(vocoder.smooth_48k(torch.from_numpy(data["head24k"])), data["head24k_up48"], WAVE, "head24k_up48")
    merged = vocoder.merge(torch.from_numpy(data["head48k_raw"]), torch.from_numpy(data["head24k_up48"]))
    close(merged, data["wav48k"], WAVE, "crossover merge of the reference heads")


def test_vocos48k_waveforms(vocoders_dir: Path):
    data = arrays(vocoders_dir / "luxtts_vocoder" / "io.npz")
    mel = torch.from_numpy(data["mel"])
    directory = vocoders_dir / "luxtts_vocoder"
    official = vocos_48k(directory, lux_freq_range(vocoders_dir)).decode(mel)
    close(official, data["wav48k"], WAVE, "wav48k")
    # The official return_48k=False has no effect: it equals our default "48k" output.
    close(official, data["wav48k_return48k_false"], WAVE, "wav48k_return48k_false")
    other_ranges = {name: float(match[1]) for name in data if (match := re.fullmatch(r"wav48k_freq(\d+)", name))}
    assert other_ranges, "expected at least one wav48k_freq<Hz> array"
    for name, freq_range in other_ranges.items():
        close(vocos_48k(directory, freq_range).decode(mel), data[name], WAVE, name)
    # Our smooth mode returns what return_48k=False was meant to: the resampled 24 kHz head.
    smooth = vocos_48k(directory, lux_freq_range(vocoders_dir), "24k-smooth")
    close(smooth.decode(mel), data["head24k_up48"], WAVE, "24k-smooth")


@pytest.mark.parametrize("output", ["48k", "24k-smooth"])
def test_vocos48k_chunked_decode_matches_reference(vocoders_dir: Path, output: str):
    data = arrays(vocoders_dir / "luxtts_vocoder" / "io.npz")
    frames = data["mel"].shape[-1]
    chunk_frames = max(16, frames // 3)
    vocoder = vocos_48k(vocoders_dir / "luxtts_vocoder", lux_freq_range(vocoders_dir), output, chunk_frames)
    expected = data["wav48k"] if output == "48k" else data["head24k_up48"]
    close(vocoder.decode(torch.from_numpy(data["mel"])), expected, WAVE, f"{output} decoded in chunks")


def test_luxtts_post_processing(vocoders_dir: Path):
    data = arrays(vocoders_dir / "luxtts_vocoder" / "io.npz")
    vocoder = vocos_48k(vocoders_dir / "luxtts_vocoder", lux_freq_range(vocoders_dir))
    features = torch.from_numpy(data["fm_features"]).transpose(1, 2) / LUXTTS_FEATURE_SCALE
    prompt_rms = torch.from_numpy(data["lux_prompt_rms"])
    wave = match_prompt_loudness(vocoder.decode(features), prompt_rms, LUXTTS_OUTPUT_TARGET_RMS)
    close(wave, data["luxtts_wav"], WAVE, "luxtts_wav")


# -- vocoder stage of the end-to-end records --------------------------------------------------------
def test_e2e_vocoder_stage(fixtures_root: Path, e2e_case: Path):
    """pred_features -> vocoder -> clamp -> loudness matching, as each official pipeline does."""
    e2e = fixtures_root / "e2e"
    data = arrays(e2e_case)
    case = read_json(e2e / "manifest.json")["cases"][e2e_case.stem]
    vocoder_dir = case_models(e2e_case.stem, fixtures_root).vocoder  # the folder the official pipeline loaded
    prompt_rms = torch.from_numpy(data["prompt_rms"])
    if case["pipeline"] == "luxtts":
        vocoder = vocos_48k(vocoder_dir, lux_freq_range(fixtures_root / "vocoders"))
        features = torch.from_numpy(data["pred_features"]).transpose(1, 2) / LUXTTS_FEATURE_SCALE
        wave = match_prompt_loudness(vocoder.decode(features), prompt_rms, LUXTTS_OUTPUT_TARGET_RMS)
        close(wave, data["wav"], WAVE, f"{e2e_case.name}: wav")
        return
    assert case["pipeline"] == "zipvoice", case["pipeline"]
    args, record = case["args"], case["record"]
    vocoder = vocos_24k(vocoder_dir)
    generated = []  # chunk waveforms in generation order (batch by batch, item by item)
    batch = 0
    while f"b{batch}_pred_features" in data:
        features, lens = data[f"b{batch}_pred_features"], data[f"b{batch}_pred_features_lens"]
        for item, length in enumerate(lens):
            mel = torch.from_numpy(features[item : item + 1, :length]).transpose(1, 2) / args["feat_scale"]
            generated.append(match_prompt_loudness(vocoder.decode(mel), prompt_rms, args["target_rms"]))
        batch += 1
    order = record["chunk_index"]
    assert sorted(order) == list(range(len(generated))), f"chunk_index {order} vs {len(generated)} chunks"
    in_text_order = [generated[order.index(position)] for position in range(len(generated))]
    concatenated = crossfade_concat(in_text_order, round(ZIPVOICE_CROSSFADE_SECONDS * vocoder.sample_rate))
    close(concatenated, data["concat_wav"], WAVE, f"{e2e_case.name}: concat_wav")


def test_e2e_prompt_resampling(fixtures_root: Path):
    """ZipVoice reads the 16-bit prompt and resamples it with torchaudio's sinc resampler (LuxTTS
    uses soxr through librosa.load instead, so its cases are not compared here)."""
    e2e = fixtures_root / "e2e"
    manifest = read_json(e2e / "manifest.json")
    samples, rate = soundfile.read(e2e / manifest["prompt_wav"], dtype="int16", always_2d=True)
    wave = torch.from_numpy(samples[:, 0].astype(np.float32) / 32768.0)[None]
    cases = {name: case for name, case in manifest["cases"].items() if case["pipeline"] == "zipvoice"}
    assert cases, "expected at least one ZipVoice case in e2e/manifest.json"
    for name, case in cases.items():
        expected = arrays(e2e / f"{name}.npz")["prompt_wav_24k"]
        resampled = resample_sinc(wave, rate, int(case["record"]["sample_rate_saved"]))
        close(resampled.reshape(expected.shape), expected, WAVE, f"{name}: prompt_wav_24k")
