"""StyleTTS2 proper in the `styletts2` family: style encoder and its front-end, style diffusion,
HiFi-GAN decoder, official checkpoint/config.yml loading, voices from reference audio.

Uses the small official-format model of tests/fixtures/styletts2 (made by its generate.py);
parity with the official code is tests/test_styletts2_diffusion_parity.py.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile
import torch
import yaml

from voxpipe.core.audio import Audio
from voxpipe.core.errors import AudioError, ConfigError, WeightsError
from voxpipe.core.voice import Voice
from voxpipe.plugins.styletts2.kokoro_config import sections_from_kokoro_config
from voxpipe.plugins.styletts2.mel import LogMel, trim_silence
from voxpipe.plugins.styletts2.sampler import ADPM2Sampler
from voxpipe.plugins.styletts2.styletts2_config import (
    read_styletts2_config,
    read_yaml,
    sections_from_styletts2_config,
)
from voxpipe.plugins.styletts2.synthesizer import StyleTTS2Synthesizer
from voxpipe.testing.conformance import SynthesizerConformance
from voxpipe.testing.threads import one_torch_thread

FIXTURES = Path(__file__).resolve().parent / "fixtures"
MODEL = FIXTURES / "styletts2"
RATE = 24000


@pytest.fixture(autouse=True)
def _one_thread():
    with one_torch_thread():
        yield


def sections(config_path: Path = MODEL / "config.yml") -> dict:
    manifest = json.loads((MODEL / "manifest.json").read_text())
    found = sections_from_styletts2_config(read_styletts2_config(config_path),
                                           read_yaml(MODEL / "plbert_config.yml", "PL-BERT"), str(config_path),
                                           manifest["decoder"])
    found["style_denoiser"].pop("sigma_data")
    return found


def build(weights: Path = MODEL / "epochs_2nd.pth", config_path: Path = MODEL / "config.yml", **overrides):
    settings = {**sections(), "weights": str(weights), "config_path": str(config_path), "voice": None,
                "pad_end": False, **overrides}
    return StyleTTS2Synthesizer.create(**settings)


_BUILT: dict[str, StyleTTS2Synthesizer] = {}


def family() -> StyleTTS2Synthesizer:
    if "family" not in _BUILT:
        _BUILT["family"] = build()
    return _BUILT["family"]


def speech_like(seconds: float, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * RATE)) / RATE
    phase = 2 * np.pi * np.cumsum(110 + 30 * np.sin(2 * np.pi * t)) / RATE
    return (0.3 * sum(np.sin(k * phase) / k for k in range(1, 6)) + 0.01 * rng.standard_normal(t.shape)).astype(np.float32)


# ---- front-end -------------------------------------------------------------------------------
def test_log_mel_frames_and_silence_trim():
    """Values are checked against torchaudio/librosa in the parity fixtures; here the geometry."""
    mel = LogMel(2048, 1200, 300, 80, 16000, -4.0, 4.0)
    assert mel(torch.from_numpy(speech_like(0.7))).shape == (1, 80, mel.frames(int(0.7 * RATE)))
    clip = np.concatenate([np.zeros(RATE // 2, np.float32), speech_like(0.6), np.zeros(RATE // 4, np.float32)])
    trimmed = trim_silence(clip)
    # frames of 2048 samples every 512: a frame overlapping the speech keeps its hop
    assert 0 <= len(trimmed) - int(0.6 * RATE) <= 2048 + 2 * 512
    assert np.array_equal(trim_silence(np.zeros(100, np.float32)), np.zeros(100, np.float32))


# ---- sampler ---------------------------------------------------------------------------------
def test_karras_schedule_and_noise_count():
    sampler = ADPM2Sampler.create(num_steps=5)
    sigmas = sampler.sigmas(5)
    assert sigmas.shape == (6,) and float(sigmas[-1]) == 0.0
    assert float(sigmas[0]) == pytest.approx(3.0) and float(sigmas[4]) == pytest.approx(1e-4, rel=1e-4)
    assert bool((sigmas[:-1][1:] < sigmas[:-1][:-1]).all())
    calls = []

    def denoise(x, sigma):
        calls.append(float(sigma))
        return torch.zeros_like(x)

    sample = sampler.sample(denoise, (1, 1, 4), generator=torch.Generator().manual_seed(1))
    assert sample.shape == (1, 1, 4) and len(calls) == 2 * 4  # n - 1 steps, two evaluations each
    with pytest.raises(ConfigError, match="expected 5 noises"):
        sampler.sample(denoise, (1, 1, 4), noises=[torch.zeros(1, 1, 4)] * 4)


# ---- loading ---------------------------------------------------------------------------------
def _edited_checkpoint(tmp_path: Path, edit) -> Path:
    checkpoint = torch.load(MODEL / "epochs_2nd.pth", map_location="cpu", weights_only=True)
    edit(checkpoint["net"])
    path = tmp_path / "edited.pth"
    torch.save(checkpoint, path)
    return path


def test_checkpoint_with_missing_or_extra_keys_names_them(tmp_path):
    def edit(net):
        del net["style_encoder"]["module.unshared.bias"]
        net["predictor"]["module.surplus.weight"] = torch.zeros(2)

    with pytest.raises(WeightsError) as error:
        build(weights=_edited_checkpoint(tmp_path, edit))
    assert "module 'style_encoder'" in str(error.value) and "unshared.bias" in str(error.value)
    assert "module 'predictor'" in str(error.value) and "surplus.weight" in str(error.value)


def test_checkpoint_missing_a_module_or_with_disagreeing_diffusion_copies(tmp_path):
    with pytest.raises(WeightsError, match=r"missing \['predictor_encoder'\]"):
        build(weights=_edited_checkpoint(tmp_path, lambda net: net.pop("predictor_encoder")))

    def disagree(net):
        key = next(k for k in net["diffusion"] if k.startswith("module.unet."))
        net["diffusion"][key] = net["diffusion"][key] + 1

    with pytest.raises(WeightsError, match="twice"):
        build(weights=_edited_checkpoint(tmp_path, disagree))


def test_config_yml_that_does_not_match_the_components_is_refused(tmp_path):
    config = read_styletts2_config(MODEL / "config.yml")
    config["model_params"]["max_dur"] = 9
    path = tmp_path / "config.yml"
    path.write_text(yaml.safe_dump(config))
    with pytest.raises(ConfigError, match=r"prosody_predictor.max_dur = 8 but config.yml says 9"):
        build(config_path=path)
    with pytest.raises(ConfigError, match="model_params"):
        path.write_text("model_params: 3\n")
        build(config_path=path)


def test_sigma_data_comes_from_the_config_yml():
    expected = read_styletts2_config(MODEL / "config.yml")["model_params"]["diffusion"]["dist"]["sigma_data"]
    assert family().denoiser.sigma_data == expected
    with pytest.raises(ConfigError, match="sigma_data"):
        StyleTTS2Synthesizer.create(**sections(), weights=str(MODEL / "epochs_2nd.pth"), voice=None)


def test_weights_absent_is_a_clear_error(tmp_path):
    with pytest.raises(WeightsError, match="not found"):
        build(weights=tmp_path / "epochs_2nd_00020.pth")


# ---- voices ----------------------------------------------------------------------------------
def test_voice_from_a_wav_file_round_trips(tmp_path):
    model = family()
    wav = tmp_path / "ref.wav"
    soundfile.write(wav, np.concatenate([np.zeros(4000, np.float32), speech_like(1.2)]), RATE)
    voice = model.encode_voice([wav], None)
    assert voice.family == "styletts2" and voice.tensors["style_pack"].shape == (model.style_dim,)
    assert voice.metadata["settings"]["source"] == ["ref.wav"]
    path = voice.save(tmp_path / "me.voice")
    style = model.resolve_voice(Voice.load(path))
    with torch.inference_mode():
        direct = model.style_encoder(torch.from_numpy(trim_silence(soundfile.read(wav, dtype="float32")[0])))
    assert torch.allclose(style, direct.reshape(-1), atol=1e-5)


def test_reference_clip_too_short_or_silent_is_refused_before_encoding():
    model = family()
    with pytest.raises(AudioError, match="at least 0.8"):
        model.encode_voice([Audio(torch.from_numpy(speech_like(0.5)), RATE)], None)
    with pytest.raises(AudioError, match="silent"):
        model.encode_voice([Audio(torch.zeros(RATE * 2), RATE)], None)
    with pytest.raises(ConfigError, match="one reference clip"):
        model.encode_voice([Audio(torch.zeros(RATE), RATE)] * 2, None)


def test_without_a_voice_file_there_is_no_voice_and_packs_are_refused():
    model = family()
    with pytest.raises(ConfigError, match="voxpipe voice create"):
        model.resolve_voice(None)
    pack = Voice("styletts2", {"style_pack": torch.zeros(510, 1, model.style_dim)}, {}, {"style_dim": model.style_dim},
                 RATE)
    with pytest.raises(ConfigError, match="Kokoro voice"):
        model.resolve_voice(pack)


def test_diffusion_options_change_the_style_and_the_seed_the_sample():
    model = family()
    reference = model.style_encoder(torch.from_numpy(speech_like(1.0))).reshape(-1)
    ids = [47, 156, 102, 16, 56, 4]
    first = model.run(ids, reference, diffusion_generator=torch.Generator().manual_seed(1))
    again = model.run(ids, reference, diffusion_generator=torch.Generator().manual_seed(1))
    other = model.run(ids, reference, diffusion_generator=torch.Generator().manual_seed(2))
    assert torch.equal(first.sampled, again.sampled) and not torch.equal(first.sampled, other.sampled)
    keep = model.run(ids, reference, diffusion_generator=torch.Generator().manual_seed(1), alpha=0.0, beta=0.0)
    assert torch.allclose(keep.style.reshape(-1), reference)  # alpha = beta = 0: the reference itself
    half = reference.shape[0] // 2
    sampled_only = model.run(ids, reference, diffusion_generator=torch.Generator().manual_seed(1), alpha=1.0, beta=0.0)
    assert torch.allclose(sampled_only.style[0, :half], sampled_only.sampled[0, :half])
    assert torch.allclose(sampled_only.style[0, half:], reference[half:])
    guided = model.run(ids, reference, diffusion_generator=torch.Generator().manual_seed(1), embedding_scale=2.0)
    assert not torch.allclose(guided.sampled, first.sampled)


def test_pipeline_makes_a_voice_and_speaks_with_it(tmp_path):
    from voxpipe import Pipeline

    settings = {**sections(), "weights": str(MODEL / "epochs_2nd.pth"), "config_path": str(MODEL / "config.yml"),
                "voice": None, "pad_end": False, "trim_end_samples": 50}
    pipeline = Pipeline.from_config({"tokenizer": {"type": "styletts2"}, "synthesizer": {"type": "styletts2", **settings}})
    voice = pipeline.encode_prompt(Audio(torch.from_numpy(speech_like(1.5)), RATE))
    audio = pipeline.synthesize("Hello there.", voice, seed=3)
    assert audio.sample_rate == RATE and audio.samples.numel() > 0
    assert torch.equal(audio.samples, pipeline.synthesize("Hello there.", voice, seed=3).samples)


class TestStyleTTS2WithDiffusionIsASynthesizer(SynthesizerConformance):
    def make_synthesizer(self):
        return family()

    def voice(self, family):
        return family.encode_voice([Audio(torch.from_numpy(speech_like(1.0)), RATE)], None)


# ---- Kokoro keeps its style packs --------------------------------------------------------------
def test_kokoro_configurations_do_not_clone_or_take_diffusion_options(tmp_path):
    kokoro = FIXTURES / "kokoro"
    manifest = json.loads((kokoro / "manifest.json").read_text())
    config = json.loads((kokoro / manifest["config"]).read_text())
    voices = tmp_path / "voices.npz"
    np.savez(voices, fixture=np.zeros((510, 1, 2 * config["style_dim"]), np.float32))
    model = StyleTTS2Synthesizer.create(**sections_from_kokoro_config(config, manifest.get("decoder")),
                                        weights=str(kokoro / manifest["weights"]),
                                        config_path=str(kokoro / manifest["config"]), voices_path=str(voices),
                                        voice="fixture")
    assert model.clones_voices is False and model.voices() == ["fixture"]
    with pytest.raises(ConfigError, match="style packs"):
        model.encode_voice([Audio(torch.from_numpy(speech_like(1.0)), RATE)], None)
    with pytest.raises(ConfigError, match="alpha"):
        model.synthesize([[5, 6]], model.resolve_voice(None), model.options({"alpha": 0.5}), seeds=[0])


def test_voice_create_is_refused_before_loading_for_a_configuration_without_style_encoder(tmp_path, monkeypatch):
    """Kokoro configurations of the family have no style encoder: `voice create` must say so
    from the configuration alone, before any weights load."""
    from voxpipe import cli

    def no_loading(config):
        raise AssertionError("weights loaded before the configuration was checked")

    monkeypatch.setattr(cli, "load_pipeline", no_loading)
    clip = tmp_path / "ref.wav"
    soundfile.write(clip, np.zeros(24000, dtype=np.float32), 24000)
    code = cli.main(["voice", "create", str(clip), "--config", "kokoro_torch", "-o", str(tmp_path / "x.voice")])
    assert code == 2
    styletts2 = StyleTTS2Synthesizer.Params.model_validate({"style_encoder": {"type": "styletts2"}})
    assert StyleTTS2Synthesizer.configured_to_clone(styletts2)
    assert not StyleTTS2Synthesizer.configured_to_clone(StyleTTS2Synthesizer.Params())


# ---- single-speaker StyleTTS2 (multispeaker: false, LJSpeech) --------------------------------
SINGLE = FIXTURES / "styletts2" / "ljspeech"


def single_speaker_settings(**overrides) -> dict:
    manifest = json.loads((SINGLE / "manifest.json").read_text())
    found = sections_from_styletts2_config(read_styletts2_config(SINGLE / "config.yml"),
                                           read_yaml(SINGLE / "plbert_config.yml", "PL-BERT"),
                                           str(SINGLE / "config.yml"), manifest["decoder"])
    found["style_denoiser"].pop("sigma_data")
    return {**found, "style_encoder": None, "weights": str(SINGLE / "epochs_2nd.pth"),
            "config_path": str(SINGLE / "config.yml"), "voice": None, "pad_end": False, **overrides}


def single_speaker() -> StyleTTS2Synthesizer:
    if "single" not in _BUILT:
        _BUILT["single"] = StyleTTS2Synthesizer.create(**single_speaker_settings())
    return _BUILT["single"]


def test_multispeaker_false_config_yml_gives_the_text_only_denoiser():
    found = sections_from_styletts2_config(read_styletts2_config(SINGLE / "config.yml"),
                                           read_yaml(SINGLE / "plbert_config.yml", "PL-BERT"))
    assert found["style_denoiser"]["type"] == "transformer"
    assert sections()["style_denoiser"]["type"] == "style_transformer"
    model = single_speaker()
    assert model.single_speaker and not model.denoiser.net.reference_conditioned
    assert not hasattr(model.denoiser.net, "to_features")
    assert isinstance(model.denoiser.net.blocks[0].attention.norm, torch.nn.LayerNorm)


def test_single_speaker_denoiser_refuses_a_reference_and_the_other_needs_one():
    model, multi = single_speaker(), family()
    x, bert = torch.zeros(1, 1, model.style_dim), torch.zeros(1, 4, model.plbert.bert.config.hidden_size)
    with pytest.raises(ConfigError, match="single-speaker"):
        model.denoiser(x, 1.0, bert, torch.zeros(1, model.style_dim))
    with pytest.raises(ConfigError, match="needs a reference"):
        multi.denoiser(torch.zeros(1, 1, multi.style_dim), 1.0,
                       torch.zeros(1, 4, multi.plbert.bert.config.hidden_size), None)


def test_single_speaker_has_no_voices_and_does_not_clone():
    model = single_speaker()
    assert model.clones_voices is False and model.voices() == [] and model.resolve_voice(None) is None
    for voice in ("jf_alpha", model.new_voice({"style_pack": torch.zeros(model.style_dim)}, {})):
        with pytest.raises(ConfigError, match="pass no voice"):
            model.resolve_voice(voice)
    with pytest.raises(ConfigError, match="no style_encoder"):
        model.encode_voice([Audio(torch.from_numpy(speech_like(1.0)), RATE)], None)
    params = StyleTTS2Synthesizer.Params.model_validate({"style_encoder": {"type": "styletts2"},
                                                         "style_denoiser": {"type": "transformer"}})
    assert not StyleTTS2Synthesizer.configured_to_clone(params)
    with pytest.raises(ConfigError, match="style_encoder: null"):
        StyleTTS2Synthesizer.create(**single_speaker_settings(style_encoder={"type": "styletts2", "dim_in": 4,
                                                                             "style_dim": 16, "max_conv_dim": 16}))
    with pytest.raises(ConfigError, match="no voices"):
        StyleTTS2Synthesizer.create(**single_speaker_settings(voice="af"))


def test_single_speaker_style_is_the_diffusion_sample_and_mixing_options_are_refused():
    model = single_speaker()
    ids = [47, 156, 102, 16, 56, 123]
    first = model.run(ids, None, diffusion_generator=torch.Generator().manual_seed(0))
    assert torch.equal(first.style, first.sampled)
    again = model.run(ids, None, diffusion_generator=torch.Generator().manual_seed(0))
    other = model.run(ids, None, diffusion_generator=torch.Generator().manual_seed(1))
    assert torch.equal(again.sampled, first.sampled) and not torch.allclose(other.sampled, first.sampled)
    with pytest.raises(ConfigError, match="takes no style"):
        model.run(ids, torch.zeros(model.style_dim))
    for option in ("alpha", "beta"):
        with pytest.raises(ConfigError, match=option):
            model.synthesize([ids], None, model.options({option: 0.5}), seeds=[0])
    guided = model.synthesize([ids], None, model.options({"embedding_scale": 2.0, "diffusion_steps": 3}), seeds=[0])
    assert guided[0].numel() > 0


def test_denoiser_kind_must_match_multispeaker_and_the_checkpoint():
    """config.yml's multispeaker picks the denoiser; a single-speaker checkpoint skips only the
    reference encoders, and only for its own denoiser: a multi-speaker one does not load."""
    multi_denoiser = {**single_speaker_settings()["style_denoiser"], "type": "style_transformer"}
    with pytest.raises(ConfigError, match="style_denoiser.type = 'style_transformer' but config.yml says 'transformer'"):
        StyleTTS2Synthesizer.create(**single_speaker_settings(style_denoiser=multi_denoiser))
    with pytest.raises(WeightsError, match="unexpected|to_features"):
        StyleTTS2Synthesizer.create(**single_speaker_settings(config_path=None,
                                                              style_denoiser={**multi_denoiser, "sigma_data": 0.2}))


def test_single_speaker_pipeline_speaks_without_a_voice():
    from voxpipe import Pipeline

    pipeline = Pipeline.from_config({"tokenizer": {"type": "styletts2"},
                                     "synthesizer": {"type": "styletts2", **single_speaker_settings()}})
    audio = pipeline.synthesize("Hello there.", None, seed=3)
    assert audio.sample_rate == RATE and audio.samples.numel() > 0
    assert torch.equal(audio.samples, pipeline.synthesize("Hello there.", seed=3).samples)


def test_ljspeech_config_validates_and_names_missing_weights(tmp_path, monkeypatch):
    from voxpipe import Pipeline
    from voxpipe.cli import main

    assert main(["config", "validate", "styletts2_ljspeech"]) == 0
    monkeypatch.setenv("VOXPIPE_WEIGHTS_DIR", str(tmp_path))  # empty: nothing is downloaded
    with pytest.raises((ConfigError, WeightsError), match="StyleTTS2-LJSpeech.* not found"):
        Pipeline.from_config("styletts2_ljspeech")


class TestSingleSpeakerStyleTTS2IsASynthesizer(SynthesizerConformance):
    def make_synthesizer(self):
        return single_speaker()
