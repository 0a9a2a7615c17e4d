"""Behaviour of the vocoders, their loading and the DSP helpers they bring (resampler, loudness).

Uses the small checkpoints in tests/fixtures/vocoders (parity with the official outputs is in
tests/parity/test_vocoder_parity.py).
"""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import pytest
import torch
import yaml

from voxpipe.core.errors import ConfigError, WeightsError
from voxpipe.dsp.loudness import match_prompt_loudness
from voxpipe.dsp.mel import hann_window, log_mel_spectrogram, mel_filterbank
from voxpipe.dsp.resample import resample_sinc
from voxpipe.plugins.vocos.chunking import plan_chunks
from voxpipe.plugins.vocos.crossover import crossover_mask, crossover_merge
from voxpipe.plugins.vocos.griffin_lim import GriffinLim
from voxpipe.plugins.vocos.vocos24k import Vocos24k
from voxpipe.plugins.vocos.vocos48k import LuxVocos48k
from voxpipe.testing import VocoderConformance

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "vocoders"
VOCOS_24K = FIXTURES / "vocos24k"
LUX_VOCODER = FIXTURES / "luxtts_vocoder" / "vocoder"


def speech_like(seconds: float, sample_rate: int = 24000, seed: int = 0) -> torch.Tensor:
    """(N,) harmonic tone with vibrato and a syllable-rate envelope, plus a little noise."""
    n = int(seconds * sample_rate)
    t = torch.arange(n, dtype=torch.float64) / sample_rate
    f0 = 150 + 30 * torch.sin(2 * math.pi * 2 * t)
    phase = 2 * math.pi * torch.cumsum(f0 / sample_rate, 0)
    harmonics = torch.arange(1, 30, dtype=torch.float64)[:, None]
    tone = (torch.sin(harmonics * phase) / harmonics).sum(0)
    envelope = 0.5 + 0.5 * torch.sin(2 * math.pi * 1.5 * t).abs()
    noise = 0.003 * torch.randn(n, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    return (0.1 * tone * envelope + noise).float()


def log_mel(wave: torch.Tensor, n_mels: int = 100) -> torch.Tensor:
    """(B, N) 24 kHz -> (B, n_mels, T), the Vocos front-end."""
    fb = mel_filterbank(n_freqs=513, sample_rate=24000, n_mels=n_mels)
    return log_mel_spectrogram(wave, n_fft=1024, hop_length=256, window=hann_window(1024), filterbank=fb)


@pytest.fixture(scope="module")
def mel_features() -> torch.Tensor:
    """(1, 100, 188) log-mel of 2 s of speech-like audio."""
    return log_mel(speech_like(2.0)[None])


@pytest.fixture(scope="module")
def vocos24k() -> Vocos24k:
    return Vocos24k(weights=str(VOCOS_24K), chunk_frames=None)


@pytest.fixture(scope="module")
def vocos48k() -> LuxVocos48k:
    return LuxVocos48k(weights=str(LUX_VOCODER), chunk_frames=None)


# -- conformance suites --------------------------------------------------------------------------
class TestVocos24kConformance(VocoderConformance):
    def make_vocoder(self):
        return Vocos24k(weights=str(VOCOS_24K))


class TestVocos48kConformance(VocoderConformance):
    def make_vocoder(self):
        return LuxVocos48k(weights=str(LUX_VOCODER))


class TestGriffinLimConformance(VocoderConformance):
    def make_vocoder(self):
        return GriffinLim(n_iter=4)


def test_registered_and_buildable_from_params(fresh_registry):
    info = fresh_registry.get("vocoder", "vocos-48k")
    vocoder = info.cls.from_params(info.params_model(weights=str(FIXTURES / "luxtts_vocoder"), output="24k-smooth"))
    assert vocoder.describe() == {
        "sample_rate": 48000, "feature_sample_rate": 24000, "hop_length": 256, "feature_dim": 100,
        "freq_range": 12000.0, "output": "24k-smooth", "kernels": "reference", "dtype": "float32",
    }
    assert fresh_registry.get("vocoder", "vocos-24k").cls is Vocos24k
    assert fresh_registry.get("vocoder", "griffin-lim").cls is GriffinLim


def test_attributes_come_from_the_config(vocos24k, vocos48k):
    def attributes(vocoder):
        return vocoder.sample_rate, vocoder.feature_sample_rate, vocoder.hop_length, vocoder.feature_dim

    assert attributes(vocos24k) == (24000, 24000, 256, 100)
    assert attributes(vocos48k) == (48000, 24000, 256, 100)


# -- decoding ------------------------------------------------------------------------------------------
def test_output_lengths_and_batch_consistency(vocos24k, vocos48k, mel_features):
    batch = torch.cat([mel_features, mel_features.flip(-1)])
    frames = mel_features.shape[-1]
    for vocoder, per_frame in ((vocos24k, 256), (vocos48k, 512)):
        wave = vocoder.decode(batch)
        assert wave.shape == (2, per_frame * (frames - 1))
        torch.testing.assert_close(wave[1:], vocoder.decode(batch[1:]), atol=1e-6, rtol=0)


def test_too_short_inputs_give_empty_waveforms(vocos24k, vocos48k):
    for vocoder in (vocos24k, vocos48k):
        for frames in (0, 1):
            assert vocoder.decode(torch.zeros(2, 100, frames)).shape == (2, 0)


def test_bad_feature_shapes_are_rejected(vocos24k):
    with pytest.raises(ValueError, match="100 feature channels"):
        vocos24k.decode(torch.zeros(1, 80, 10))
    with pytest.raises(ValueError, match=r"\(B, F, T\)"):
        vocos24k.decode(torch.zeros(100, 10))


def test_same_padding_head_decodes_and_chunks_exactly(tmp_path, mel_features):
    """A Vocos config with `padding: same` (the ISTFTHead default): T * hop samples, chunking exact."""
    directory = copy_dir(VOCOS_24K, tmp_path / "vocos")
    write_config(directory, lambda c: c["head"]["init_args"].update(padding="same"))
    one_pass = Vocos24k(weights=str(directory), chunk_frames=None).decode(mel_features)
    assert one_pass.shape == (1, 256 * mel_features.shape[-1])
    chunked = Vocos24k(weights=str(directory), chunk_frames=50).decode(mel_features)
    torch.testing.assert_close(chunked, one_pass, atol=1e-6, rtol=0)


def test_smooth_output_is_the_resampled_24k_head(vocos48k, mel_features):
    smooth = LuxVocos48k(weights=str(LUX_VOCODER), output="24k-smooth", chunk_frames=None)
    expected = vocos48k.smooth_48k(vocos48k.head_24k(vocos48k.backbone(mel_features)))
    torch.testing.assert_close(smooth.decode(mel_features), expected, atol=1e-7, rtol=0)
    assert not torch.allclose(smooth.decode(mel_features), vocos48k.decode(mel_features), atol=1e-4)


def test_crossover_keeps_the_low_band_below_and_the_high_band_above(vocos48k, mel_features):
    merged = vocos48k.decode(mel_features)
    low = vocos48k.smooth_48k(vocos48k.head_24k(vocos48k.backbone(mel_features)))
    spectrum, low_spectrum = torch.fft.rfft(merged), torch.fft.rfft(low)
    bins = spectrum.shape[-1]
    cutoff = int(vocos48k.freq_range / 24000 * bins)
    torch.testing.assert_close(spectrum[..., : cutoff - 4], low_spectrum[..., : cutoff - 4], atol=1e-4, rtol=1e-4)
    assert (spectrum[..., cutoff + 4 :] - low_spectrum[..., cutoff + 4 :]).abs().max() > 1e-2


def test_crossover_mask_shape_and_identity():
    mask = crossover_mask(1001, 12000, 48000)
    cutoff = int(12000 / 24000 * 1001)
    assert (mask[: cutoff - 4] == 0).all() and (mask[cutoff + 4 :] == 1).all()
    assert torch.all(mask[cutoff - 4 : cutoff + 4].diff() > 0)
    wave = torch.randn(2, 2000, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(crossover_merge(wave, wave, 12000, 48000), wave, atol=1e-6, rtol=0)


# -- long audio: chunked decoding ------------------------------------------------------------------
@pytest.fixture(scope="module")
def long_features() -> torch.Tensor:
    """(1, 100, 938) log-mel of 10 s: a speech-like signal with level changes and pauses, so that
    chunks differ in their statistics (the 48 kHz upsampler's GroupNorm sees the whole input)."""
    pieces = []
    for index in range(5):
        pieces += [speech_like(1.5, seed=index) * (0.2 + 0.6 * index), torch.zeros(12000)]
    return log_mel(torch.cat(pieces)[None])


CHUNK = 256  # frames: 4 chunks of the 938-frame input


@pytest.mark.parametrize("output", ["48k", "24k-smooth"])
def test_chunked_decoding_equals_one_pass_48k(long_features, output):
    one_pass = LuxVocos48k(weights=str(LUX_VOCODER), output=output, chunk_frames=None).decode(long_features)
    chunked = LuxVocos48k(weights=str(LUX_VOCODER), output=output, chunk_frames=CHUNK)
    torch.testing.assert_close(chunked.decode(long_features), one_pass, atol=1e-6, rtol=0)


def test_chunked_decoding_equals_one_pass_24k(long_features, vocos24k):
    chunked = Vocos24k(weights=str(VOCOS_24K), chunk_frames=CHUNK)
    torch.testing.assert_close(chunked.decode(long_features), vocos24k.decode(long_features), atol=1e-6, rtol=0)


@pytest.mark.parametrize("cls, weights", [(Vocos24k, VOCOS_24K), (LuxVocos48k, LUX_VOCODER)])
def test_chunked_decoding_bounds_the_network_input(long_features, cls, weights):
    vocoder = cls(weights=str(weights), chunk_frames=CHUNK)
    seen = []
    hook = vocoder.model.backbone.register_forward_pre_hook(lambda module, args: seen.append(args[0].shape[-1]))
    try:
        vocoder.decode(long_features)
    finally:
        hook.remove()
    assert len(seen) == math.ceil(long_features.shape[-1] / CHUNK)
    assert max(seen) <= CHUNK + 2 * vocoder.context_frames


def test_chunk_plan_covers_every_frame_once():
    chunks = plan_chunks(1001, 300, 20)
    assert [c.start for c in chunks][0] == 0 and chunks[-1].end == 1001 and chunks[-1].last
    assert all(a.end == b.start for a, b in zip(chunks, chunks[1:]))
    assert all(c.end - c.start <= 300 for c in chunks)
    assert all(c.lo == max(0, c.start - 20) and c.hi == min(1001, c.end + 20) for c in chunks)


# -- loading: weight-norm layouts, errors ---------------------------------------------------------------
def copy_dir(source: Path, target: Path) -> Path:
    shutil.copytree(source, target)
    for path in target.iterdir():
        path.chmod(0o644)
    return target


def linacodec_layout(tmp_path: Path, parametrization: str) -> Path:
    """A LinaCodec model directory: vocoder/config.yaml + vocoder/pytorch_model.bin with the
    upsampler's ConvTranspose1d weights stored as weight-norm (g, v) pairs: torch's
    parametrization keys (what LinaCodec saves) or the older `weight_g`/`weight_v`."""
    from torch.nn.utils import parametrizations

    state = torch.load(LUX_VOCODER / "vocos.bin", map_location="cpu", weights_only=True)
    converted = {}
    for key, value in state.items():
        if not (key.startswith("upsampler.upsample_layers.") and key.endswith(".weight")):
            converted[key] = value
            continue
        prefix = key[: -len(".weight")]
        if parametrization == "parametrizations":
            layer = torch.nn.ConvTranspose1d(value.shape[0], value.shape[1], value.shape[2])
            with torch.no_grad():
                layer.weight.copy_(value)
            parametrizations.weight_norm(layer)
            for name, tensor in layer.state_dict().items():
                if name.startswith("parametrizations."):
                    converted[f"{prefix}.{name}"] = tensor.detach().clone()
        else:  # direction v = 3 w (any positive scale), magnitude g = |w| per output row (dim 0)
            converted[f"{prefix}.weight_v"] = value * 3.0
            converted[f"{prefix}.weight_g"] = value.reshape(value.shape[0], -1).norm(dim=1).reshape(-1, 1, 1)
    directory = tmp_path / "linacodec" / "vocoder"
    directory.mkdir(parents=True)
    shutil.copy(LUX_VOCODER / "config.yaml", directory / "config.yaml")
    torch.save(converted, directory / "pytorch_model.bin")
    return directory.parent


@pytest.mark.parametrize("parametrization", ["parametrizations", "weight_g_v"])
def test_linacodec_weight_norm_layout_is_folded_on_load(tmp_path, vocos48k, mel_features, parametrization):
    directory = linacodec_layout(tmp_path, parametrization)
    stored = torch.load(directory / "vocoder" / "pytorch_model.bin", weights_only=True)
    assert "upsampler.upsample_layers.0.weight" not in stored
    vocoder = LuxVocos48k(weights=str(directory), chunk_frames=None)
    assert vocoder.files.checkpoint.name == "pytorch_model.bin"
    torch.testing.assert_close(vocoder.decode(mel_features), vocos48k.decode(mel_features), atol=1e-6, rtol=0)


def test_weight_norm_direction_without_magnitude_is_an_error(tmp_path):
    directory = linacodec_layout(tmp_path, "parametrizations") / "vocoder"
    state = torch.load(directory / "pytorch_model.bin", weights_only=True)
    del state["upsampler.upsample_layers.1.parametrizations.weight.original1"]
    torch.save(state, directory / "pytorch_model.bin")
    with pytest.raises(WeightsError, match=r"upsample_layers\.1\.parametrizations\.weight\.original1"):
        LuxVocos48k(weights=str(directory))


def test_weights_may_name_the_checkpoint_file(vocos24k, mel_features):
    vocoder = Vocos24k(weights=str(VOCOS_24K / "pytorch_model.bin"), chunk_frames=None)
    torch.testing.assert_close(vocoder.decode(mel_features), vocos24k.decode(mel_features), atol=0, rtol=0)


def test_missing_weights_say_what_and_where(tmp_path):
    with pytest.raises(WeightsError, match="not found"):
        Vocos24k(weights=str(tmp_path / "nowhere"))
    directory = copy_dir(VOCOS_24K, tmp_path / "vocos")
    (directory / "pytorch_model.bin").unlink()
    with pytest.raises(WeightsError, match=r"pytorch_model\.bin.*" + str(directory)):
        Vocos24k(weights=str(directory))
    with pytest.raises(WeightsError, match=r"config\.yaml"):
        LuxVocos48k(weights=str(tmp_path))


def test_default_hub_weights_resolve_under_a_local_weights_dir(tmp_path, monkeypatch, vocos24k, mel_features):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(WeightsError, match="charactr/vocos-mel-24khz"):
        Vocos24k()  # the default hf:// location: offline and not cached -> says what to provide
    copy_dir(VOCOS_24K, tmp_path / "charactr" / "vocos-mel-24khz")
    copy_dir(LUX_VOCODER, tmp_path / "YatharthS" / "LuxTTS" / "vocoder")
    monkeypatch.setenv("VOXPIPE_WEIGHTS_DIR", str(tmp_path))
    torch.testing.assert_close(Vocos24k(chunk_frames=None).decode(mel_features), vocos24k.decode(mel_features))
    assert LuxVocos48k().files.checkpoint == tmp_path / "YatharthS" / "LuxTTS" / "vocoder" / "vocos.bin"


def write_config(directory: Path, edit) -> Path:
    config = yaml.safe_load((directory / "config.yaml").read_text())
    edit(config)
    (directory / "config.yaml").write_text(yaml.safe_dump(config))
    return directory / "config.yaml"


def test_unknown_class_path_names_file_section_and_alternatives(tmp_path):
    directory = copy_dir(VOCOS_24K, tmp_path / "vocos")
    path = write_config(directory, lambda c: c["backbone"].update(class_path="vocos.models.VocosResNetBackbone"))
    with pytest.raises(ConfigError) as error:
        Vocos24k(weights=str(directory))
    message = str(error.value)
    assert isinstance(error.value, WeightsError)
    assert str(path) in message and "backbone.class_path" in message and "vocos.models.VocosBackbone" in message


def test_missing_config_key_names_the_key(tmp_path):
    directory = copy_dir(VOCOS_24K, tmp_path / "vocos")
    path = write_config(directory, lambda c: c["head"]["init_args"].pop("n_fft"))
    with pytest.raises(WeightsError, match=f"{path}: head.init_args.n_fft is missing"):
        Vocos24k(weights=str(directory))
    write_config(directory, lambda c: c.pop("head"))
    with pytest.raises(WeightsError, match="section 'head' is missing"):
        Vocos24k(weights=str(directory))


def test_upsampler_kernel_sizes_default_to_8(tmp_path):
    directory = copy_dir(LUX_VOCODER, tmp_path / "vocoder")
    write_config(directory, lambda c: c["upsampler"]["init_args"].pop("kernel_sizes"))
    # The fixture's first stage has kernel 4, so the default (8) no longer fits the checkpoint.
    mismatch = r"upsampler\.upsample_layers\.0\.weight \(128, 64, 4\) vs model \(128, 64, 8\)"
    with pytest.raises(WeightsError, match=mismatch):
        LuxVocos48k(weights=str(directory))


def test_strict_loading_lists_missing_and_unexpected_keys(tmp_path):
    directory = copy_dir(VOCOS_24K, tmp_path / "vocos")
    state = torch.load(directory / "pytorch_model.bin", weights_only=True)
    state["backbone.extra.weight"] = state.pop("backbone.norm.bias")
    torch.save(state, directory / "pytorch_model.bin")
    listing = r"missing keys: backbone\.norm\.bias; unexpected keys: backbone\.extra\.weight"
    with pytest.raises(WeightsError, match=listing):
        Vocos24k(weights=str(directory))
    # The feature-extractor buffers are part of the published state dict: strict means required.
    state = torch.load(VOCOS_24K / "pytorch_model.bin", weights_only=True)
    del state["feature_extractor.mel_spec.mel_scale.fb"]
    torch.save(state, directory / "pytorch_model.bin")
    with pytest.raises(WeightsError, match=r"missing keys: feature_extractor\.mel_spec\.mel_scale\.fb"):
        Vocos24k(weights=str(directory))


def test_unreadable_checkpoint(tmp_path):
    directory = copy_dir(VOCOS_24K, tmp_path / "vocos")
    (directory / "pytorch_model.bin").write_bytes(b"not a checkpoint")
    with pytest.raises(WeightsError, match="cannot read checkpoint"):
        Vocos24k(weights=str(directory))


def test_bad_device_is_a_config_error():
    with pytest.raises(ConfigError, match="device 'gpu0'"):
        Vocos24k(weights=str(VOCOS_24K), device="gpu0")


# -- griffin-lim ---------------------------------------------------------------------------------
def test_griffin_lim_round_trip_reproduces_the_mel(mel_features):
    """mel -> Griffin-Lim audio -> mel again is close to the input, and the phase iterations matter."""

    def error(n_iter: int) -> float:
        wave = GriffinLim(n_iter=n_iter).decode(mel_features)
        return (log_mel(wave) - mel_features).abs().mean().item()

    iterated, random_phase = error(32), error(0)
    assert iterated < 0.15  # mean |log-mel difference| in nats (measured 0.11)
    assert iterated < 0.3 * random_phase  # random phase alone: 0.78


def test_griffin_lim_output_stays_finite_for_out_of_range_features():
    wild = torch.linspace(-130, 180, 100 * 30).reshape(1, 100, 30)  # an untrained model's output
    assert torch.isfinite(GriffinLim(n_iter=2).decode(wild)).all()


@pytest.mark.parametrize("frames", [0, 1, 2, 3])
def test_griffin_lim_handles_very_short_inputs(frames):
    assert GriffinLim(n_iter=2).decode(torch.zeros(1, 100, frames) - 5).shape == (1, 256 * max(frames - 1, 0))


def test_griffin_lim_rejects_inconsistent_params():
    with pytest.raises(ConfigError, match="f_min"):
        GriffinLim(f_min=9000, f_max=8000)
    with pytest.raises(ConfigError, match="hop_length"):
        GriffinLim(n_fft=256, hop_length=512)


def test_griffin_lim_is_deterministic_and_seeded(mel_features):
    first, again = GriffinLim(n_iter=4).decode(mel_features), GriffinLim(n_iter=4).decode(mel_features)
    torch.testing.assert_close(first, again, atol=0, rtol=0)
    assert not torch.allclose(first, GriffinLim(n_iter=4, seed=1).decode(mel_features))


def test_griffin_lim_does_not_touch_the_global_rng(mel_features):
    state = torch.random.get_rng_state()
    GriffinLim(n_iter=2).decode(mel_features)
    assert torch.equal(state, torch.random.get_rng_state())


# -- resampler ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("orig, new", [(16000, 24000), (24000, 16000), (44100, 48000), (48000, 24000), (22050, 24000)])
def test_resample_length_and_passband(orig, new):
    n = orig // 2
    t = torch.arange(n, dtype=torch.float64) / orig
    out = resample_sinc(torch.sin(2 * math.pi * 1000 * t), orig, new)
    assert out.shape == (math.ceil(n * new / orig),)
    t_new = torch.arange(out.shape[0], dtype=torch.float64) / new
    interior = slice(new // 100, -new // 100)  # away from the zero-padded edges
    torch.testing.assert_close(out[interior], torch.sin(2 * math.pi * 1000 * t_new)[interior], atol=2e-3, rtol=0)


def test_resample_removes_what_the_new_rate_cannot_hold():
    t = torch.arange(24000, dtype=torch.float64) / 24000
    out = resample_sinc(torch.sin(2 * math.pi * 10000 * t), 24000, 16000)  # above the new 8 kHz Nyquist
    assert out[200:-200].abs().max() < 0.01


def test_resample_keeps_leading_shape_dtype_and_identity():
    wave = torch.randn(2, 3, 1000, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    out = resample_sinc(wave, 16000, 24000)
    assert out.shape == (2, 3, 1500) and out.dtype == torch.float64
    torch.testing.assert_close(out[1, 2], resample_sinc(wave[1, 2], 16000, 24000))
    assert resample_sinc(wave, 24000, 24000) is wave
    with pytest.raises(ValueError):
        resample_sinc(wave, 16000.5, 24000)
    with pytest.raises(TypeError):
        resample_sinc(torch.zeros(10, dtype=torch.int16), 16000, 24000)


def test_resample_upsampling_keeps_the_original_samples_for_integer_factors():
    """2x upsampling: even output samples sit on input samples (the sinc is 1 there, 0 at others)
    up to the rolloff's slight low-pass."""
    wave = speech_like(0.5).double()
    out = resample_sinc(wave, 24000, 48000)
    torch.testing.assert_close(out[::2][200:-200], wave[200:-200], atol=5e-3, rtol=0)


# -- loudness ------------------------------------------------------------------------------------------
def test_match_prompt_loudness():
    wave = torch.tensor([[0.5, -2.0, 0.25]])
    torch.testing.assert_close(match_prompt_loudness(wave, 0.05, 0.1), torch.tensor([[0.25, -0.5, 0.125]]))
    torch.testing.assert_close(match_prompt_loudness(wave, 0.2, 0.1), torch.tensor([[0.5, -1.0, 0.25]]))
    torch.testing.assert_close(match_prompt_loudness(wave, 0.2, 0.1, clamp=False), wave)
    per_item = match_prompt_loudness(torch.ones(2, 3) * 0.5, torch.tensor([0.05, 0.5]), 0.1)
    torch.testing.assert_close(per_item, torch.tensor([[0.25] * 3, [0.5] * 3]))


@pytest.mark.parametrize("cls, weights", [(Vocos24k, VOCOS_24K), (LuxVocos48k, LUX_VOCODER)])
def test_fused_kernels_run_the_linear_layers_on_onednn_with_the_same_function(monkeypatch, mel_features, cls, weights):
    """`kernels: fused` (what --precision auto/bf16 choose): float32 Linear layers on oneDNN's GEMM
    (2x MKL's on a Zen 5, docs/performance.md), rounding differently at ~1e-6 relative."""
    from voxpipe.core import onednn

    if onednn.LINEAR is None:
        pytest.skip("this torch build has no oneDNN linear")
    reference = cls(weights=str(weights), chunk_frames=None)
    fused = cls(weights=str(weights), chunk_frames=None, kernels="fused")
    assert (reference.describe()["kernels"], fused.describe()["kernels"]) == ("reference", "fused")
    assert list(fused.model.state_dict()) == list(reference.model.state_dict())
    calls = []
    real = onednn.LINEAR
    monkeypatch.setattr(onednn, "LINEAR", lambda *args: calls.append(tuple(args[1].shape)) or real(*args))
    with torch.inference_mode():
        expected, got = reference.decode(mel_features), fused.decode(mel_features)
    linears = [m for m in fused.model.modules() if isinstance(m, torch.nn.Linear)]
    assert linears and sorted(calls) == sorted(tuple(m.weight.shape) for m in linears)  # every Linear, once
    relative = float((got - expected).norm() / expected.norm())
    assert relative <= 1e-5, f"fused vocoder deviates {relative:.2e} (relative L2) from the reference kernels"


def test_unknown_vocoder_kernels_is_a_config_error():
    from voxpipe.core.config import build_config
    from voxpipe.testing.fixtures import tiny_pipeline_config

    with pytest.raises(ConfigError, match="kernels"):
        build_config(tiny_pipeline_config(), ["synthesizer.vocoder.kernels=turbo"])


# A bf16 vocoder body against float32, on the fixtures' (random) weights with speech-like input:
# mean |log-mel difference| of the output (nats). Measured 0.0036 (24 kHz) and 0.0049 (48 kHz)
# here, 0.006 on the full-size widths with a real recording (docs/vocoders.md).
BF16_LOG_MEL_BOUND = 0.015


@pytest.mark.parametrize("cls, weights", [(Vocos24k, VOCOS_24K), (LuxVocos48k, LUX_VOCODER)])
def test_bf16_body_keeps_the_heads_float32_and_stays_close(mel_features, cls, weights):
    """`dtype: bfloat16` (what --precision auto/bf16 choose on CPUs with native bf16): the backbone
    (and the 48 kHz upsampler) hold bf16 weights, rounded once from the same file; the heads that
    predict the spectrum and the ISTFT stay float32; the waveform is float32 and close."""
    from voxpipe.plugins.styletts2.compare import log_mel_distance

    reference = cls(weights=str(weights), chunk_frames=None)
    bf16 = cls(weights=str(weights), chunk_frames=None, dtype="bfloat16")
    assert (reference.describe()["dtype"], bf16.describe()["dtype"]) == ("float32", "bfloat16")
    body = [bf16.model.backbone, *([bf16.model.upsampler] if hasattr(bf16.model, "upsampler") else [])]
    assert {p.dtype for module in body for p in module.parameters()} == {torch.bfloat16}
    heads = [m for name, m in bf16.model.named_children() if name.startswith("head")]
    assert heads and {p.dtype for head in heads for p in head.parameters()} == {torch.float32}
    assert torch.equal(bf16.model.backbone.embed.weight, reference.model.backbone.embed.weight.to(torch.bfloat16))
    with torch.inference_mode():
        expected, got = reference.decode(mel_features), bf16.decode(mel_features)
    assert got.dtype == torch.float32 and got.shape == expected.shape and not torch.equal(got, expected)
    distance = log_mel_distance(got.reshape(-1).numpy(), expected.reshape(-1).numpy(), reference.sample_rate)
    assert distance <= BF16_LOG_MEL_BOUND, f"bf16 vocoder body: log-mel distance {distance:.4f}"


def test_bf16_48k_decodes_in_chunks_like_one_pass(long_features):
    """The chunked path's whole-utterance GroupNorm statistics (float64 sums, float32 stats) work
    with a bf16 upsampler: same output as one pass, up to bf16 rounding."""
    one_pass = LuxVocos48k(weights=str(LUX_VOCODER), chunk_frames=None, dtype="bfloat16").decode(long_features)
    chunked = LuxVocos48k(weights=str(LUX_VOCODER), chunk_frames=CHUNK, dtype="bfloat16").decode(long_features)
    relative = float((chunked - one_pass).norm() / one_pass.norm())
    assert relative < 0.02, relative
