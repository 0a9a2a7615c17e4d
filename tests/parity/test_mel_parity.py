"""Parity of the `vocos-mel` front-end and the prompt path with the official code.

References: `<fixtures>/vocoders/features_io.npz` (vocos 0.1.0 `MelSpectrogramFeatures` and
ZipVoice's `VocosFbank`, via torchaudio) and `<fixtures>/e2e/*.npz` (the LuxTTS and ZipVoice
prompt paths). Every size (n_fft, hop, mels, rates, targets) comes from the fixture files and
their manifests, so the same tests run on full-size fixtures via VOXPIPE_FIXTURES.

Tolerances (measured on the bundled fixtures: every comparison below was exact or within 6e-8):
  window: exact; filterbank: 1e-6 (a float64 filterbank differs from the stored float32 one by
  up to 7e-6, ours follows torchaudio's float32 arithmetic); |STFT|: 1e-5 + 1e-5 rel;
  log-mel and prompt features: 2e-4 (the log amplifies relative error in near-silent bins);
  RMS: 1e-6 rel; silence-trimmed prompt and RMS-normalized prompt: exact (16-bit grid).
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch

from voxpipe.audio.io import load_audio
from voxpipe.audio.prompt import prepare_prompt
from voxpipe.core.audio import Audio
from voxpipe.dsp.mel import hann_window, mel_filterbank, stft_magnitude
from voxpipe.plugins.mel.vocos_mel import VocosMelFeatures

FIXTURE_GLOBS = {"features_file": "vocoders/features_io.npz", "e2e_case": "e2e/*.npz"}
LOG_MEL_ATOL = 2e-4
LUXTTS_FEAT_SCALE = 0.1  # LuxTTS's process_audio(feat_scale=0.1) constant; the manifest does not store it


@lru_cache(maxsize=None)
def vocoder_feature_config(root: Path) -> dict:
    """init_args of the Vocos feature extractor the fixtures were made with."""
    manifest = json.loads((root / "manifest.json").read_text())
    return manifest["vocos24k"]["config"]["feature_extractor"]["init_args"]


def extractor_for(features_file: Path, frame_count: str = "zipvoice") -> VocosMelFeatures:
    config = vocoder_feature_config(features_file.parent)
    return VocosMelFeatures(sample_rate=config["sample_rate"], n_fft=config["n_fft"],
                            hop_length=config["hop_length"], n_mels=config["n_mels"],
                            padding=config.get("padding", "center"), frame_count=frame_count)


# ---- vocoders/features_io.npz ----------------------------------------------------------------
def test_window_and_filterbank(features_file: Path):
    ref = np.load(features_file)
    n_fft = ref["window"].shape[0]
    np.testing.assert_array_equal(hann_window(n_fft).numpy(), ref["window"])
    extractor = extractor_for(features_file)
    n_freqs, n_mels = ref["mel_fb"].shape
    assert (n_freqs, n_mels) == (n_fft // 2 + 1, extractor.n_mels)
    fb = mel_filterbank(n_freqs, extractor.sample_rate, n_mels)
    np.testing.assert_allclose(fb.numpy(), ref["mel_fb"], atol=1e-6, rtol=0)
    np.testing.assert_allclose(extractor.filterbank.numpy(), ref["mel_fb"], atol=1e-6, rtol=0)


def test_stft_magnitude(features_file: Path):
    ref = np.load(features_file)
    extractor = extractor_for(features_file)
    magnitude = stft_magnitude(torch.from_numpy(ref["wave"]), extractor.n_fft, extractor.hop_length,
                               extractor.window, extractor.padding)
    assert magnitude.shape == ref["stft_mag"].shape
    np.testing.assert_allclose(magnitude.numpy(), ref["stft_mag"], atol=1e-5, rtol=1e-5)


def test_vocos_log_mel_channel_major_all_frames(features_file: Path):
    ref = np.load(features_file)
    extractor = extractor_for(features_file, frame_count="vocos")
    wave = torch.from_numpy(ref["wave"])  # (1, N)
    mel = extractor.log_mel(wave)
    assert mel.shape == ref["vocos_mel"].shape
    assert mel.shape[-1] == 1 + wave.shape[-1] // extractor.hop_length
    np.testing.assert_allclose(mel.numpy(), ref["vocos_mel"], atol=LOG_MEL_ATOL, rtol=0)
    # the "vocos" frame count keeps every frame in the time-major pipeline output too
    features = extractor(wave[0])
    assert features.shape == ref["vocos_mel"][0].T.shape
    np.testing.assert_allclose(features.numpy(), ref["vocos_mel"][0].T, atol=LOG_MEL_ATOL, rtol=0)


def test_zipvoice_fbank_time_major_frame_rule(features_file: Path):
    ref = np.load(features_file)
    extractor = extractor_for(features_file)
    wave = torch.from_numpy(ref["wave"][0])  # (N,)
    features = extractor(wave)
    num_samples, hop = wave.shape[0], extractor.hop_length
    assert features.shape == ref["zipvoice_fbank"].shape
    assert features.shape[0] == extractor.num_frames(num_samples) == (num_samples + hop // 2) // hop
    np.testing.assert_allclose(features.numpy(), ref["zipvoice_fbank"], atol=LOG_MEL_ATOL, rtol=0)
    batched = extractor(wave[None].expand(2, -1))
    assert batched.shape == (2, *ref["zipvoice_fbank"].shape)
    np.testing.assert_allclose(batched[1].numpy(), ref["zipvoice_fbank"], atol=LOG_MEL_ATOL, rtol=0)


def test_scaled_prompt_features(features_file: Path):
    """LuxTTS prompt encoding: RMS raised to the target (only if below), fbank, times 0.1."""
    ref = np.load(features_file)
    extractor = extractor_for(features_file)
    audio = Audio(torch.from_numpy(ref["wave"][0]), extractor.sample_rate)
    prepared, original_rms = prepare_prompt(audio, target_rms=float(ref["prompt_target_rms"]))
    np.testing.assert_allclose(original_rms, ref["prompt_rms"], rtol=1e-6)
    features = extractor.extract(prepared) * LUXTTS_FEAT_SCALE
    assert features.shape == ref["prompt_features"].shape[1:]
    np.testing.assert_allclose(features.numpy(), ref["prompt_features"][0], atol=LOG_MEL_ATOL * LUXTTS_FEAT_SCALE,
                               rtol=0)


# ---- e2e/*.npz: prompt_wav_24k -> prompt_features ------------------------------------------------
def e2e_case_settings(e2e_case: Path) -> dict:
    """How the official pipeline of this case prepared its prompt (from e2e/manifest.json)."""
    root = e2e_case.parent
    case = json.loads((root / "manifest.json").read_text())["cases"][e2e_case.stem]
    sample_rate = json.loads((root / case["model"] / "model.json").read_text())["feature"]["sampling_rate"]
    if case["pipeline"] == "luxtts":
        return dict(sample_rate=sample_rate, target_rms=case["encode"]["rms"], remove_silence=False,
                    feat_scale=LUXTTS_FEAT_SCALE, resampler="soxr", max_seconds=case["encode"]["duration"])
    return dict(sample_rate=sample_rate, target_rms=case["args"]["target_rms"], remove_silence=True,
                feat_scale=case["args"]["feat_scale"], resampler="sinc", max_seconds=None)


def e2e_extractor(e2e_case: Path, sample_rate: int) -> VocosMelFeatures:
    config = vocoder_feature_config(e2e_case.parent.parent / "vocoders")
    n_mels = np.load(e2e_case)["prompt_features"].shape[-1]
    return VocosMelFeatures(sample_rate=sample_rate, n_fft=config["n_fft"], hop_length=config["hop_length"],
                            n_mels=n_mels)


def test_e2e_prompt_features_from_stored_wave(e2e_case: Path):
    ref = np.load(e2e_case)
    settings = e2e_case_settings(e2e_case)
    extractor = e2e_extractor(e2e_case, settings["sample_rate"])
    audio = Audio(torch.from_numpy(ref["prompt_wav_24k"].reshape(-1)), settings["sample_rate"])
    prepared, original_rms = prepare_prompt(audio, target_rms=settings["target_rms"],
                                            remove_silence=settings["remove_silence"])
    np.testing.assert_allclose(original_rms, ref["prompt_rms"], rtol=1e-6)
    if "prompt_wav_normed" in ref:  # the prompt was quieter than the target
        np.testing.assert_array_equal(prepared.samples.numpy(), ref["prompt_wav_normed"][0])
    elif settings["remove_silence"]:
        np.testing.assert_array_equal(prepared.samples.numpy(), ref["prompt_wav_trimmed"][0])
    features = extractor(prepared.samples) * settings["feat_scale"]
    assert features.shape == ref["prompt_features"].shape[1:]
    assert features.shape[0] == int(ref["prompt_features_lens"][0])
    np.testing.assert_allclose(features.numpy(), ref["prompt_features"][0],
                               atol=LOG_MEL_ATOL * settings["feat_scale"], rtol=0)


def test_e2e_prompt_features_from_file(e2e_case: Path):
    """The whole prompt path from the WAV file, with the resampler of the case's pipeline.

    The resamplers match the references to 6e-8; where that flips a sample across the 16-bit grid
    of the silence remover, the trimmed prompt moves by one LSB (3.1e-5), and the log of the
    quietest mel bins by up to ~0.07 nats (0.007 after the 0.1 feature scale; 99 % of the values
    stay within 2e-5). Tolerances: 1 LSB (times the RMS gain) on the waveform; 0.2 nats x scale at most and 2e-4 x scale
    for 99 % of the feature values.
    """
    ref = np.load(e2e_case)
    settings = e2e_case_settings(e2e_case)
    manifest = json.loads((e2e_case.parent / "manifest.json").read_text())
    audio = load_audio(e2e_case.parent / manifest["prompt_wav"], settings["sample_rate"],
                       max_seconds=settings["max_seconds"], resampler=settings["resampler"])
    prepared, original_rms = prepare_prompt(audio, target_rms=settings["target_rms"],
                                            remove_silence=settings["remove_silence"])
    np.testing.assert_allclose(original_rms, ref["prompt_rms"], rtol=1e-5)
    reference_wave = ref["prompt_wav_normed"] if "prompt_wav_normed" in ref else (
        ref["prompt_wav_trimmed"] if settings["remove_silence"] else ref["prompt_wav_24k"])
    reference_wave = reference_wave.reshape(-1)
    assert prepared.samples.shape == reference_wave.shape
    gain = max(1.0, settings["target_rms"] / float(ref["prompt_rms"]))
    np.testing.assert_allclose(prepared.samples.numpy(), reference_wave, atol=gain / 32768 + 1e-6, rtol=0)
    extractor = e2e_extractor(e2e_case, settings["sample_rate"])
    features = (extractor(prepared.samples) * settings["feat_scale"]).numpy()
    error = np.abs(features - ref["prompt_features"][0])
    assert error.max() <= 0.2 * settings["feat_scale"]
    assert np.quantile(error, 0.99) <= LOG_MEL_ATOL * settings["feat_scale"]
