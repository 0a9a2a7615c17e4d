"""Audio input (voxpipe.audio.io), prompt preparation (voxpipe.audio.prompt), ZipVoice's silence
removal (voxpipe.dsp.silence) and the `vocos-mel` component's own behaviour.

Resampler parity uses the e2e fixtures (tests/fixtures or $VOXPIPE_FIXTURES):
  soxr (LuxTTS, librosa.load) vs luxtts_en prompt_wav_24k: atol 1e-6 (measured: exact);
  sinc (ZipVoice, torchaudio Resample) vs zipvoice_distill_* prompt_wav_24k: atol 1e-6 (measured 6e-8).
Silence removal is compared exactly (same 16-bit samples) with the fixtures and with pydub.
"""

from __future__ import annotations

import json
import os
import sys
import types
import warnings
from pathlib import Path

import numpy as np
import pytest
import soundfile
import torch

from voxpipe.audio.io import check_audio, load_audio, read_audio, resample, to_mono
from voxpipe.audio.prompt import normalize_rms, prepare_prompt, rms
from voxpipe.dsp.silence import (
    appended_silence_frames,
    remove_prompt_silence,
    remove_silence,
    trim_edge_silence,
)
from voxpipe.core.audio import Audio
from voxpipe.core.errors import AudioError, ConfigError
from voxpipe.plugins.mel.vocos_mel import VocosMelFeatures
from voxpipe.testing import FeatureExtractorConformance

E2E = Path(os.environ.get("VOXPIPE_FIXTURES") or Path(__file__).resolve().parent / "fixtures") / "e2e"


def e2e_manifest() -> dict:
    return json.loads((E2E / "manifest.json").read_text())


def e2e_cases(pipeline: str) -> list[str]:
    return sorted(name for name, case in e2e_manifest()["cases"].items() if case["pipeline"] == pipeline)


def prompt_path() -> Path:
    return E2E / e2e_manifest()["prompt_wav"]


def tone(seconds: float, rate: int, amplitude: float = 0.3, frequency: float = 220.0) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return (amplitude * np.sin(2 * np.pi * frequency * t)).astype(np.float32)


# ---- load_audio: resampler parity ------------------------------------------------------------------
@pytest.mark.parametrize("case", e2e_cases("luxtts"))
def test_soxr_loading_matches_luxtts_librosa_load(case):
    ref = np.load(E2E / f"{case}.npz")["prompt_wav_24k"].reshape(-1)
    settings = e2e_manifest()["cases"][case]
    rate = json.loads((E2E / settings["model"] / "model.json").read_text())["feature"]["sampling_rate"]
    audio = load_audio(prompt_path(), rate, max_seconds=settings["encode"]["duration"], resampler="soxr")
    assert audio.sample_rate == rate and audio.samples.shape == ref.shape
    np.testing.assert_allclose(audio.samples.numpy(), ref, atol=1e-6, rtol=0)


@pytest.mark.parametrize("case", e2e_cases("zipvoice"))
def test_sinc_loading_matches_zipvoice_torchaudio_resample(case):
    ref = np.load(E2E / f"{case}.npz")["prompt_wav_24k"].reshape(-1)
    rate = json.loads((E2E / e2e_manifest()["cases"][case]["model"] / "model.json").read_text())["feature"][
        "sampling_rate"]
    audio = load_audio(prompt_path(), rate, resampler="sinc")
    assert audio.samples.shape == ref.shape
    np.testing.assert_allclose(audio.samples.numpy(), ref, atol=1e-6, rtol=0)
    # the other resampler is measurably different: parity needs the pipeline's own one
    other = load_audio(prompt_path(), rate, resampler="soxr")
    assert np.abs(other.samples.numpy() - ref).max() > 1e-3


def test_resample_keeps_equal_rate_and_lengths():
    audio = Audio(torch.from_numpy(tone(1.0, 16000)), 16000)
    assert resample(audio, 16000) is audio
    for method in ("soxr", "sinc"):
        out = resample(audio, 22050, method)
        assert out.sample_rate == 22050 and out.num_samples == int(np.ceil(16000 * 22050 / 16000))
        stereo = resample(Audio(torch.stack([audio.samples, -audio.samples]), 16000), 24000, method)
        assert stereo.samples.shape == (2, 24000)
        np.testing.assert_allclose(stereo.samples[0].numpy(), -stereo.samples[1].numpy(), atol=1e-6)
    with pytest.raises(AudioError, match="unknown resampler 'kaiser'"):
        resample(audio, 24000, "kaiser")


# ---- load_audio: formats, channels, duration ---------------------------------------------------------
@pytest.mark.parametrize("suffix, subtype", [(".wav", "PCM_16"), (".flac", "PCM_16"), (".ogg", "VORBIS"),
                                             (".mp3", "MPEG_LAYER_III")])
def test_formats_decode(tmp_path, suffix, subtype):
    path = tmp_path / f"tone{suffix}"
    soundfile.write(str(path), tone(0.5, 24000), 24000, subtype=subtype)
    audio = load_audio(path)
    assert audio.sample_rate == 24000 and audio.samples.dim() == 1
    assert abs(audio.num_samples - 12000) <= 1200  # lossy codecs may pad a frame
    assert 0.15 < float(rms(audio.samples)) < 0.25


def test_int16_files_read_as_int_over_32768(tmp_path):
    pcm = np.array([0, 1, -1, 32767, -32768, 12345] * 400, dtype=np.int16)
    path = tmp_path / "pcm.wav"
    soundfile.write(str(path), pcm, 16000, subtype="PCM_16")
    np.testing.assert_array_equal(read_audio(path).samples.numpy(), pcm.astype(np.float32) / 32768)


def test_mono_mixdown_and_multichannel(tmp_path):
    left, right = tone(0.5, 16000, 0.4), tone(0.5, 16000, 0.2, frequency=330.0)
    path = tmp_path / "stereo.wav"
    soundfile.write(str(path), np.stack([left, right], axis=1), 16000, subtype="FLOAT")
    mixed = load_audio(path)
    np.testing.assert_allclose(mixed.samples.numpy(), (left + right) / 2, atol=1e-7)
    both = load_audio(path, mono=False)
    assert both.samples.shape == (2, left.shape[0])
    assert to_mono(both).samples.shape == (left.shape[0],)
    resampled = load_audio(path, 24000, mono=False, resampler="sinc")
    assert resampled.samples.shape == (2, 12000)


def test_max_seconds_cuts_before_resampling(tmp_path):
    path = tmp_path / "long.wav"
    soundfile.write(str(path), tone(2.0, 16000), 16000)
    audio = load_audio(path, 24000, max_seconds=1.2345)
    assert audio.num_samples == int(np.ceil(int(1.2345 * 16000) * 24000 / 16000))
    with pytest.raises(AudioError, match="max_seconds must be positive"):
        load_audio(path, max_seconds=0)


# ---- load_audio: errors ------------------------------------------------------------------------------
def test_missing_file(tmp_path):
    with pytest.raises(AudioError, match="audio file not found: .*nothing.wav"):
        load_audio(tmp_path / "nothing.wav")
    with pytest.raises(AudioError, match="not a file"):
        load_audio(tmp_path)


def test_unreadable_file(tmp_path):
    path = tmp_path / "garbage.wav"
    path.write_bytes(b"RIFF but not really a wave file" * 10)
    with pytest.raises(AudioError, match=r"cannot decode audio file .*garbage\.wav"):
        load_audio(path)


def test_empty_file(tmp_path):
    path = tmp_path / "empty.wav"
    soundfile.write(str(path), np.zeros(0, np.float32), 16000)
    with pytest.raises(AudioError, match="contains no samples"):
        load_audio(path)


def test_too_short_file(tmp_path):
    path = tmp_path / "short.wav"
    soundfile.write(str(path), tone(0.05, 16000), 16000)
    with pytest.raises(AudioError, match=r"too short: 0\.050 s .*at least 0\.1 s"):
        load_audio(path)
    assert load_audio(path, min_seconds=0.01).num_samples == 800


def test_silent_file(tmp_path):
    path = tmp_path / "silent.wav"
    soundfile.write(str(path), np.zeros(16000, np.float32), 16000)
    with pytest.raises(AudioError, match="is silent: its peak is digital silence"):
        load_audio(path)
    soundfile.write(str(path), np.full(16000, 1e-4, np.float32), 16000, subtype="FLOAT")
    with pytest.raises(AudioError, match=r"is silent: its peak is -80\.0 dBFS, below -60\.0 dBFS"):
        load_audio(path)


def test_non_finite_samples():
    samples = torch.from_numpy(tone(0.5, 16000))
    samples[10] = float("nan")
    with pytest.raises(AudioError, match="NaN or infinite"):
        check_audio(Audio(samples, 16000))


def test_fallback_decoder_used_when_libsndfile_fails(tmp_path, monkeypatch):
    path = tmp_path / "clip.m4a"
    path.write_bytes(b"not decodable by libsndfile")
    pcm = np.array([[1000, -1000], [2000, -2000], [3000, -3000]] * 2000, dtype="<i2")

    class FakeReader:
        samplerate, channels = 8000, 2

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

        def __iter__(self):
            yield pcm[:3000].tobytes()
            yield pcm[3000:].tobytes()

    monkeypatch.setitem(sys.modules, "audioread", types.SimpleNamespace(audio_open=lambda name: FakeReader()))
    audio = read_audio(path)
    assert audio.sample_rate == 8000 and audio.samples.shape == (2, 6000)
    np.testing.assert_array_equal(audio.samples.T.numpy(), pcm.astype(np.float32) / 32768)
    assert read_audio(path, max_seconds=0.5).num_samples == 4000

    def broken(name):
        raise OSError("no backend")

    monkeypatch.setitem(sys.modules, "audioread", types.SimpleNamespace(audio_open=broken))
    with pytest.raises(AudioError, match=r"cannot decode .*clip\.m4a.*fallback decoder: no backend"):
        read_audio(path)


# ---- prompt preparation --------------------------------------------------------------------------------
def test_quiet_prompt_is_raised_to_target_and_original_rms_kept():
    audio = Audio(torch.from_numpy(tone(1.0, 24000, amplitude=0.01)), 24000)
    original = float(rms(audio.samples))
    prepared, returned = prepare_prompt(audio, target_rms=0.1)
    assert returned == pytest.approx(original, rel=1e-6)
    assert float(rms(prepared.samples)) == pytest.approx(0.1, rel=1e-5)


def test_loud_prompt_is_left_alone():
    audio = Audio(torch.from_numpy(tone(1.0, 24000, amplitude=0.5)), 24000)
    prepared, returned = normalize_rms(audio, 0.1)
    assert torch.equal(prepared.samples, audio.samples)
    assert returned == pytest.approx(0.5 / np.sqrt(2), rel=1e-4)


def test_prompt_duration_cap():
    audio = Audio(torch.from_numpy(tone(3.0, 24000)), 24000)
    prepared, _ = prepare_prompt(audio, target_rms=0.1, max_seconds=1.5)
    assert prepared.num_samples == 36000


def test_silent_prompts_are_errors():
    with pytest.raises(AudioError, match="silent"):
        prepare_prompt(Audio(torch.zeros(24000), 24000), target_rms=0.1)
    quiet_noise = Audio(torch.full((48000,), 1e-4), 24000)  # -80 dBFS: below the -50 dBFS silence threshold
    with pytest.raises(AudioError, match="nothing is left after silence removal"):
        prepare_prompt(quiet_noise, target_rms=0.1, remove_silence=True)
    with pytest.raises(AudioError, match="no samples"):
        prepare_prompt(Audio(torch.zeros(0), 24000), target_rms=0.1)


def test_prompt_silence_removal_shortens_gaps():
    rate = 24000
    speech = tone(0.5, rate)
    gap = np.zeros(int(2.5 * rate), np.float32)
    audio = Audio(torch.from_numpy(np.concatenate([np.zeros(rate // 2, np.float32), speech, gap, speech])), rate)
    prepared, _ = prepare_prompt(audio, target_rms=0.01, remove_silence=True)
    # 0.5 s lead -> 100 ms; 2.5 s gap -> 2 x 1 s kept; tail 0 -> 0; then 200 ms appended (4,798 samples)
    expected = int(0.1 * rate) + speech.size + 2 * rate + speech.size + appended_silence_frames(200, rate)
    assert prepared.num_samples == expected


# ---- silence removal: official fixtures and pydub -------------------------------------------------------
@pytest.mark.parametrize("case", e2e_cases("zipvoice"))
def test_prompt_silence_removal_matches_zipvoice(case):
    ref = np.load(E2E / f"{case}.npz")
    trimmed = remove_prompt_silence(torch.from_numpy(ref["prompt_wav_24k"]), 24000)
    assert isinstance(trimmed, torch.Tensor) and trimmed.shape == ref["prompt_wav_trimmed"].shape
    np.testing.assert_array_equal(trimmed.numpy(), ref["prompt_wav_trimmed"])


@pytest.mark.parametrize("case", e2e_cases("zipvoice"))
def test_output_edge_trimming_matches_zipvoice(case):
    ref = np.load(E2E / f"{case}.npz")
    final = trim_edge_silence(ref["concat_wav"], 24000)
    assert isinstance(final, np.ndarray) and final.shape == ref["wav"].shape
    np.testing.assert_array_equal(final, ref["wav"])


def test_appended_silence_follows_pydub_ratecv():
    assert appended_silence_frames(200, 24000) == 4798  # 2,205 frames at 11,025 Hz through audioop.ratecv
    assert appended_silence_frames(200, 11025) == 2205
    assert appended_silence_frames(0, 48000) == 0
    assert appended_silence_frames(200, 8000) == 1600


def _pydub_remove_silence(wave: np.ndarray, rate: int, only_edge: bool, trail_sil: int) -> np.ndarray:
    """ZipVoice's remove_silence (edges kept at 100 ms) written with pydub, for reference."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pydub warns that ffmpeg is missing; it is not used here
        from pydub import AudioSegment
        from pydub.silence import detect_leading_silence, split_on_silence
    wave = np.atleast_2d(wave)
    pcm = (wave * 32768.0).clip(-32768, 32767).astype(np.int16)
    segment = AudioSegment(data=pcm.T.tobytes(), sample_width=2, frame_rate=rate, channels=wave.shape[0])
    if not only_edge:
        parts = split_on_silence(segment, min_silence_len=1000, silence_thresh=-50, keep_silence=1000, seek_step=10)
        segment = AudioSegment.silent(duration=0)
        for part in parts:
            segment += part
    start = max(0, detect_leading_silence(segment, silence_threshold=-50) - 100)
    segment = segment[start:].reverse()
    start = max(0, detect_leading_silence(segment, silence_threshold=-50) - 100)
    segment = segment[start:].reverse() + AudioSegment.silent(duration=trail_sil)
    samples = np.array(segment.get_array_of_samples()).astype(np.float32) / 32768
    return samples.reshape(-1, segment.channels).T


def _bursty_signal(rng: np.random.Generator, rate: int, channels: int) -> np.ndarray:
    """Noise bursts at random levels (-70..-10 dBFS) over a -90..-45 dBFS floor."""
    n = int(rng.integers(rate // 3, rate * 6))
    wave = np.zeros((channels, n), np.float32)
    for _ in range(int(rng.integers(1, 5))):
        start, length = int(rng.integers(0, n)), int(rng.integers(1, rate))
        level = 10 ** (rng.uniform(-70, -10) / 20)
        wave[:, start:start + length] += rng.standard_normal((channels, min(length, n - start))) * level
    return wave + rng.standard_normal((channels, n)).astype(np.float32) * 10 ** (rng.uniform(-90, -45) / 20)


@pytest.mark.parametrize("seed", range(8))
def test_silence_removal_matches_pydub(seed):
    """Rates off the millisecond grid (22,050, 44,100 Hz), stereo, cuts, overlapping margins."""
    rng = np.random.default_rng(seed)
    rate = int(rng.choice([16000, 22050, 24000, 44100, 48000]))
    wave = _bursty_signal(rng, rate, channels=1 + seed % 2)
    for only_edge, trail in ((False, 200), (True, 0), (False, 0)):
        reference = _pydub_remove_silence(wave, rate, only_edge, trail)
        if not only_edge and not reference.any():
            continue  # all silent: pydub returns its own 11,025 Hz silent() segment
        ours = remove_silence(wave if wave.shape[0] > 1 else wave[0], rate, only_edges=only_edge,
                              append_silence_ms=trail)
        np.testing.assert_array_equal(np.atleast_2d(ours), reference)


def test_silence_removal_keeps_layout_and_rejects_bad_shapes():
    wave = torch.from_numpy(tone(0.5, 24000))
    assert trim_edge_silence(wave, 24000).dim() == 1
    assert trim_edge_silence(wave[None], 24000).shape[0] == 1
    with pytest.raises(ValueError, match=r"\(N,\) or \(C, N\)"):
        remove_silence(torch.zeros(1, 1, 10), 24000)


# ---- vocos-mel component ------------------------------------------------------------------------------
class TestVocosMelConformance(FeatureExtractorConformance):
    def make_extractor(self):
        return VocosMelFeatures()


class TestVocosMelAllFramesConformance(FeatureExtractorConformance):
    def make_extractor(self):
        return VocosMelFeatures(frame_count="vocos", padding="same", n_mels=80, sample_rate=16000)


def test_vocos_mel_registered_with_params_from_config():
    from voxpipe.registry import get_registry

    info = get_registry().get("features", "vocos-mel")
    extractor = info.cls.from_params(info.params_model(sample_rate=16000, n_fft=512, hop_length=128, n_mels=80))
    assert extractor.describe()["feature_dim"] == 80
    assert extractor(torch.zeros(16000)).shape == (125, 80)
    assert extractor.filterbank.shape == (257, 80)


def test_vocos_mel_frame_counts_and_padding_modes():
    wave = torch.from_numpy(tone(1.1, 24000)[:24100])
    zipvoice = VocosMelFeatures()
    assert zipvoice(wave).shape == (zipvoice.num_frames(24100), 100) == ((24100 + 128) // 256, 100)
    vocos = VocosMelFeatures(frame_count="vocos")
    assert vocos(wave).shape == (1 + 24100 // 256, 100)
    same = VocosMelFeatures(frame_count="vocos", padding="same")
    assert same(wave).shape == (24100 // 256, 100) and same.num_frames(24100) == 24100 // 256
    # ZipVoice's rule asks for one frame more than "same" padding gives: the last one is repeated
    longer = torch.from_numpy(tone(1.1, 24000)[:24200])
    padded = VocosMelFeatures(padding="same")(longer)
    assert padded.shape == ((24200 + 128) // 256, 100) == (24200 // 256 + 1, 100)
    torch.testing.assert_close(padded[-1], padded[-2])
    torch.testing.assert_close(padded[:-1], same(longer))


def test_vocos_mel_stereo_layout():
    left, right = torch.from_numpy(tone(0.5, 24000)), torch.from_numpy(tone(0.5, 24000, 0.05, 1000.0))
    mono, stereo = VocosMelFeatures(), VocosMelFeatures(num_channels=2)
    features = stereo(torch.stack([left, right]))
    assert stereo.feature_dim == 200 and features.shape == (mono.num_frames(12000), 200)
    torch.testing.assert_close(features[:, :100], mono(left))
    torch.testing.assert_close(features[:, 100:], mono(right))
    assert stereo(torch.stack([left, right])[None].expand(3, -1, -1)).shape == (3, *features.shape)


def test_vocos_mel_extract_checks_rate_and_mixes_channels():
    extractor = VocosMelFeatures()
    stereo = Audio(torch.stack([torch.from_numpy(tone(0.5, 24000))] * 2), 24000)
    torch.testing.assert_close(extractor.extract(stereo), extractor(stereo.samples[0]))
    with pytest.raises(AudioError, match="need audio at 24000 Hz, got 16000 Hz"):
        extractor.extract(Audio(torch.zeros(16000), 16000))
    with pytest.raises(AudioError, match="needs stereo audio"):
        VocosMelFeatures(num_channels=2).extract(Audio(torch.zeros(24000), 24000))


def test_vocos_mel_errors():
    with pytest.raises(AudioError, match="too short .* needs at least 513 samples"):
        VocosMelFeatures()(torch.zeros(300))
    with pytest.raises(AudioError, match=r"takes waveforms \(N,\) or \(B, N\)"):
        VocosMelFeatures()(torch.zeros(1, 2, 3000))
    with pytest.raises(ConfigError, match="hop_length 2048 must not exceed n_fft 1024"):
        VocosMelFeatures(hop_length=2048)
    with pytest.raises(ConfigError, match="f_max"):
        VocosMelFeatures(f_max=16000.0)
    with pytest.raises(ConfigError, match="n_mels"):
        VocosMelFeatures(n_mels=0)


def test_vocos_mel_log_floor():
    features = VocosMelFeatures()(torch.zeros(24000))
    assert torch.allclose(features, torch.full_like(features, float(np.log(np.float32(1e-7)))))
    floored = VocosMelFeatures(clamp_min=1e-5)(torch.zeros(24000))
    assert torch.allclose(floored, torch.full_like(floored, float(np.log(np.float32(1e-5)))))


def test_join_prompt_clips_layouts():
    from voxpipe.audio.prompt import join_prompt_clips
    from voxpipe.core.errors import ConfigError

    a, b = Audio(torch.ones(3), 8000), Audio(torch.full((2,), 2.0), 8000)
    assert join_prompt_clips([a, b]).samples.tolist() == [1, 1, 1, 2, 2]
    stereo = join_prompt_clips([a, b], num_channels=2).samples
    assert stereo.tolist() == [[1, 1, 1, 0, 0], [0, 0, 0, 2, 2]]
    recording = Audio(torch.arange(8.0).reshape(2, 4), 8000)
    assert join_prompt_clips([recording], num_channels=2) is recording
    assert join_prompt_clips([recording, recording], num_channels=2).samples.shape == (2, 8)
    with pytest.raises(ConfigError, match="2-channel"):
        join_prompt_clips([a], num_channels=2)
