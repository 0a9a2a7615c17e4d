"""Parity of the `styletts2` family with the official StyleTTS2 code (yl4579/StyleTTS2) on seeded
random weights: reference front-end (silence trim, log-mel), style encoders, style diffusion
(ADPM2 over a Karras schedule, guidance, alpha/beta mixing), prosody and the HiFi-GAN decoder.

Cases come from `styletts2/manifest.json` and `styletts2/<model>/manifest.json` under
tests/fixtures, or under $VOXPIPE_FIXTURES (the same layout; e.g. an official full-size
config.yml + checkpoint with cases made by tests/fixtures/styletts2/generate.py). A manifest
with `"multispeaker": false` is a single-speaker model (LJSpeech): no reference clip, the
text-only denoiser, the sample used as the style. The official run draws every random number from the
global generator seeded with the case's seed (initial diffusion noise, one draw per sampler
step, then the decoder's excitation), so a torch.Generator with that seed replays it; the
stored noises are also injected directly.

Tolerance: the manifest's (1e-4), as max |ours - official| <= tol * max(1, max |official|);
rounded frames and the trimmed length must be equal.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch

from voxpipe.core.audio import Audio
from voxpipe.plugins.styletts2.mel import trim_silence
from voxpipe.plugins.styletts2.styletts2_config import (
    read_styletts2_config,
    read_yaml,
    sections_from_styletts2_config,
)
from voxpipe.plugins.styletts2.synthesizer import StyleTTS2Synthesizer
from voxpipe.testing.threads import one_torch_thread

ROOT = Path(os.environ.get("VOXPIPE_FIXTURES") or Path(__file__).resolve().parent / "fixtures") / "styletts2"
MANIFESTS = sorted([ROOT / "manifest.json", *ROOT.glob("*/manifest.json")])
MANIFESTS = [path for path in MANIFESTS if path.is_file()]

pytestmark = pytest.mark.skipif(not MANIFESTS, reason=f"no StyleTTS2 parity fixtures at {ROOT}")


def _multispeaker(manifest: dict) -> bool:
    return bool(manifest.get("multispeaker", True))


def _cases(multispeaker: bool | None = None) -> list:
    """pytest params: (model folder, its manifest, one case), optionally only multi/single-speaker."""
    found = []
    for path in MANIFESTS:
        manifest = json.loads(path.read_text())
        if multispeaker is None or _multispeaker(manifest) == multispeaker:
            found += [pytest.param(path.parent, manifest, case, id=f"{path.parent.name}/{case['name']}")
                      for case in manifest["cases"]]
    return found


@pytest.fixture(autouse=True)
def _one_thread():
    with one_torch_thread():
        yield


_FAMILIES: dict[Path, StyleTTS2Synthesizer] = {}


def _family(folder: Path, manifest: dict) -> StyleTTS2Synthesizer:
    """The model of one fixture folder, built once (from its config.yml, as a user would)."""
    if folder not in _FAMILIES:
        config_path, plbert_path = folder / manifest["config"], folder / manifest["plbert_config"]
        sections = sections_from_styletts2_config(read_styletts2_config(config_path),
                                                  read_yaml(plbert_path, "PL-BERT"), str(config_path),
                                                  manifest.get("decoder"))
        sections["style_denoiser"].pop("sigma_data")  # taken from config_path by the synthesizer
        if not _multispeaker(manifest):
            sections["style_encoder"] = None  # single-speaker inference reads no reference
        _FAMILIES[folder] = StyleTTS2Synthesizer.create(
            **sections, weights=str(folder / manifest["weights"]), config_path=str(config_path),
            plbert_config_path=str(plbert_path), voice=None, pad_end=False, source_noise=True)
    return _FAMILIES[folder]


def _close(name: str, ours: torch.Tensor, official: np.ndarray, manifest: dict) -> None:
    tolerance = float(manifest.get("tolerance", 1e-4))
    ours = ours.detach().cpu().numpy().reshape(official.shape)
    scale = max(1.0, float(np.abs(official).max()))
    error = float(np.abs(ours - official).max())
    assert error <= tolerance * scale, f"{name}: max |difference| {error:.3g} > {tolerance} x {scale:.3g}"


def _reference(data) -> np.ndarray:
    return data["reference"].astype(np.float32) / 32767  # stored as int16 (see generate.py)


def _settings(case: dict) -> dict:
    return {key: case[key] for key in ("alpha", "beta", "embedding_scale", "diffusion_steps") if key in case}


@pytest.mark.parametrize(("folder", "manifest", "case"), _cases(multispeaker=True))
def test_reference_front_end_and_style_encoders_match(folder, manifest, case):
    family = _family(folder, manifest)
    close = lambda *args: _close(*args, manifest)
    data = np.load(folder / case["file"])
    trimmed = trim_silence(_reference(data), family.style_encoder.trim_top_db)
    assert len(trimmed) == int(data["trimmed_samples"]), "silence trim differs from librosa.effects.trim(top_db=30)"
    wave = torch.from_numpy(trimmed)
    close("log-mel", family.style_encoder.mel(wave), data["mel"])
    with torch.inference_mode():
        close("reference style", family.style_encoder(wave), data["ref_style"])
    voice = family.encode_voice([Audio(torch.from_numpy(_reference(data)), family.style_encoder.sample_rate)], None)
    close("voice file style", family.resolve_voice(voice), data["ref_style"])


def _reference_style(data, manifest: dict) -> torch.Tensor | None:
    """The official run's reference style; None for a single-speaker model (it reads none)."""
    return torch.from_numpy(data["ref_style"]) if _multispeaker(manifest) else None


@pytest.mark.parametrize(("folder", "manifest", "case"), _cases())
def test_every_intermediate_matches_with_the_seeded_generator(folder, manifest, case):
    family = _family(folder, manifest)
    close = lambda *args: _close(*args, manifest)
    data = np.load(folder / case["file"])
    generator = torch.Generator().manual_seed(int(case["seed"]))
    reference = _reference_style(data, manifest)
    result = family.run([int(i) for i in data["ids"]], None if reference is None else reference[0], 1.0, generator,
                        diffusion_generator=generator, **_settings(case))
    close("PL-BERT output", result.bert, data["bert"])
    close("projection", result.projected, data["projected"])
    close("diffusion sample", result.sampled, data["sampled"])
    close("mixed style" if reference is not None else "style (the sample)", result.style, data["style"])
    close("durations", result.durations, data["durations"])
    assert np.array_equal(result.frames.cpu().numpy(), data["frames"]), "rounded durations differ"
    close("F0", result.f0, data["f0"])
    close("energy", result.energy, data["energy"])
    close("aligned text features", result.asr, data["asr"])
    close("waveform", result.audio, data["audio"])


@pytest.mark.parametrize(("folder", "manifest", "case"), _cases())
def test_injected_sampler_noises_give_the_official_sample(folder, manifest, case):
    """The sampler and denoiser components alone, with the official run's noises injected."""
    family = _family(folder, manifest)
    data = np.load(folder / case["file"])
    noises = [torch.from_numpy(n) for n in data["noises"]]
    bert, reference = torch.from_numpy(data["bert"]), _reference_style(data, manifest)
    with torch.inference_mode():
        sample = family.sampler.sample(
            lambda x, sigma: family.denoiser(x, sigma, bert, reference, case["embedding_scale"]),
            tuple(noises[0].shape), noises=noises, num_steps=case["diffusion_steps"])
    _close("diffusion sample (injected noise)", sample, data["sampled"], manifest)
