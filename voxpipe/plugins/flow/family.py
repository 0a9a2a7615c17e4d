"""The flow-matching family (ZipVoice, ZipVoice-Distill, Dialog, Stereo, LuxTTS).

    prompt audio -> load/resample -> prepare (silence, RMS) -> features -> PromptVoice
    ids -> acoustic_model.condition -> guidance.field -> solver.sample -> features
        -> vocoder.decode (per channel) -> clamp, loudness match -> (C, N) waveform

Its five sub-components are nested YAML sections, each an ordinary registered component, so a
solver, guidance rule or vocoder is swapped by naming another one. ZipVoice's rules (final
punctuation, the duration budget per chunk, batching by duration, the prompt preparation of each
official pipeline, LuxTTS's speed factor) are this family's parameters.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal, Sequence

import torch
from pydantic import Field

from voxpipe.core.audio import Audio
from voxpipe.core.component import Params as BaseParams
from voxpipe.core.component import nested
from voxpipe.core.errors import AudioError, ConfigError, TextError, VoxpipeError
from voxpipe.core.solver import draw_noise
from voxpipe.core.synthesizer import Options as BaseOptions
from voxpipe.core.synthesizer import Synthesizer
from voxpipe.core.voice import Voice
from voxpipe.plugins.flow.batching import batch_by_duration
from voxpipe.plugins.flow.compatibility import check_flow_components
from voxpipe.plugins.flow.voice import PromptVoice

FINAL_PUNCTUATION = ";:,.!?；：，。！？"


def add_final_punctuation(text: str) -> str:
    """Append '.' when the text does not end in punctuation (ZipVoice's `add_punctuation`)."""
    text = text.strip()
    if text and text[-1] not in FINAL_PUNCTUATION:
        text += "."
    return text


class FlowMatchingSynthesizer(Synthesizer):
    """Prompt-cloning flow matching: features, acoustic model, guidance, solver, vocoder."""

    name = "flow-matching"
    description = "flow matching (ZipVoice/LuxTTS): features, acoustic model, guidance, solver, vocoder"
    clones_voices = True

    class Params(BaseParams):
        features: Any = nested("features", {"type": "vocos-mel"})
        acoustic_model: Any = nested("acoustic_model")
        guidance: Any = nested("guidance", {"type": "none"})
        solver: Any = nested("solver", {"type": "euler"})
        vocoder: Any = nested("vocoder")
        # --- prompt -----------------------------------------------------------------------
        prompt_target_rms: float = Field(0.1, gt=0, description="a quieter prompt is raised to this RMS")
        prompt_max_seconds: float | None = Field(None, gt=0, description="prompt audio is cut to this length (LuxTTS: 5)")
        prompt_limit_seconds: float = Field(
            60.0, gt=0, description="longest prompt accepted (after prompt_max_seconds); longer ones are refused")
        prompt_remove_silence: bool = Field(False, description="ZipVoice's silence removal on the prompt")
        prompt_resampler: Literal["soxr", "sinc"] = Field(
            "sinc", description="soxr = librosa.load (LuxTTS), sinc = torchaudio Resample (ZipVoice)")
        add_final_punctuation: bool = Field(True, description="append '.' to transcript/text lacking final punctuation")
        # --- generation -------------------------------------------------------------------
        speed: float = Field(1.0, gt=0, allow_inf_nan=False, description="user speed when a call gives none; > 1 is faster")
        speed_factor: float = Field(1.0, gt=0, allow_inf_nan=False, description="fixed multiplier on speed (LuxTTS: 1.3)")
        min_speed: float = Field(0.25, gt=0, description="slowest speed a call may ask for")
        max_speed: float = Field(4.0, gt=0, description="fastest speed a call may ask for")
        max_num_steps: int = Field(200, ge=1, description="most solver steps a call may ask for")
        max_chunk_seconds: float = Field(25.0, gt=0, description="prompt + chunk duration budget for long text")
        batch_max_seconds: float = Field(100.0, gt=0, description="chunks are batched up to this many seconds (prompt included)")
        # --- output -----------------------------------------------------------------------
        output_target_rms: float = Field(0.1, gt=0, description="output scaled by prompt_rms / this if the prompt was quieter")

    class Options(BaseOptions):
        speed: float | None = Field(None, gt=0, allow_inf_nan=False, description="> 1 is faster")
        num_steps: int | None = Field(None, ge=1, description="solver steps (default: the solver's)")
        guidance_scale: float | None = Field(None, ge=0, allow_inf_nan=False, description="default: the guidance's")
        t_shift: float | None = Field(None, gt=0, allow_inf_nan=False, description="time-schedule shift (default: the solver's)")

    def __init__(self, *, features, acoustic_model, guidance, solver, vocoder, prompt_target_rms, prompt_max_seconds,
                 prompt_limit_seconds, prompt_remove_silence, prompt_resampler, add_final_punctuation, speed,
                 speed_factor, min_speed, max_speed, max_num_steps, max_chunk_seconds, batch_max_seconds,
                 output_target_rms) -> None:
        check_flow_components(features=features, acoustic_model=acoustic_model, guidance=guidance, solver=solver,
                              vocoder=vocoder)
        if min_speed > max_speed:
            raise ConfigError(f"min_speed {min_speed} is above max_speed {max_speed}")
        self.features, self.acoustic_model, self.guidance = features, acoustic_model, guidance
        self.solver, self.vocoder = solver, vocoder
        self.prompt_target_rms, self.prompt_max_seconds = prompt_target_rms, prompt_max_seconds
        self.prompt_limit_seconds, self.prompt_remove_silence = prompt_limit_seconds, prompt_remove_silence
        self.prompt_resampler, self.add_final_punctuation = prompt_resampler, add_final_punctuation
        self.speed, self.speed_factor, self.min_speed, self.max_speed = speed, speed_factor, min_speed, max_speed
        self.max_num_steps, self.max_chunk_seconds = max_num_steps, max_chunk_seconds
        self.batch_max_seconds, self.output_target_rms = batch_max_seconds, output_target_rms
        self.sample_rate = vocoder.sample_rate
        self.num_channels = getattr(acoustic_model, "num_channels", 1)
        self.vocab = acoustic_model.vocab

    # ---- options -------------------------------------------------------------------------
    def options(self, values=None) -> "FlowMatchingSynthesizer.Options":
        options = super().options(values)
        speed = self.speed if options.speed is None else options.speed
        if not self.min_speed <= speed <= self.max_speed:
            raise ConfigError(f"speed {speed} is outside [{self.min_speed}, {self.max_speed}] "
                              f"(synthesizer min_speed / max_speed)")
        if options.num_steps is not None and options.num_steps > self.max_num_steps:
            raise ConfigError(f"num_steps {options.num_steps} is above the limit {self.max_num_steps} "
                              f"(synthesizer max_num_steps)")
        return options

    def effective_speed(self, options) -> float:
        """The speed the model runs at: the call's (or configured) speed times `speed_factor`."""
        return (self.speed if options.speed is None else options.speed) * self.speed_factor

    # ---- voices --------------------------------------------------------------------------
    def voice_fingerprint(self) -> dict[str, Any]:
        return {
            "sample_rate": self.features.sample_rate,
            "hop_length": self.features.hop_length,
            "feature_dim": self.acoustic_model.feature_dim,
            "feat_scale": self.acoustic_model.feat_scale,
            "num_channels": self.num_channels,
        }

    def resolve_voice(self, voice: Voice | str | None) -> PromptVoice:
        if not isinstance(voice, Voice):
            what = "no voice" if voice is None else f"the voice name {voice!r}"
            raise ConfigError(
                f"synthesizer {self.name!r} ({self.acoustic_model.name}) clones a voice from a prompt; got {what}. "
                "Pass a Voice (pipeline.encode_prompt(...) or a .voice file from `voxpipe voice create`) "
                "or a prompt (--prompt ref.wav)")
        self.check_voice(voice)
        vocab = self.acoustic_model.vocab
        return PromptVoice.from_voice(voice, feature_dim=self.acoustic_model.feature_dim,
                                      vocab_size=(max(vocab.values()) + 1) if vocab else None)

    def encode_voice(self, sources: Sequence[Audio | str | Path], transcripts: Sequence[str] | None, *,
                     tokenizer=None, transcriber=None) -> PromptVoice:
        """A prompt from one audio, or two for dialog models (speaker 1, speaker 2), joined in
        time (mono) or placed on one channel each (stereo), as ZipVoice-Dialog does; a pair of
        transcripts is joined as "[S1]t1[S2]t2"."""
        from voxpipe.audio.prompt import join_prompt_clips, load_prompt_clip, prepare_prompt

        if not 1 <= len(sources) <= 2:
            raise ConfigError(f"a prompt is one audio, or two for dialog models; got {len(sources)}")
        channels = self.features.num_channels
        clips = [
            load_prompt_clip(source, self.features.sample_rate, keep_channels=channels > 1,
                             max_seconds=self.prompt_max_seconds, resampler=self.prompt_resampler)
            for source in sources
        ]
        seconds = sum(clip.duration for clip in clips)
        if seconds > self.prompt_limit_seconds:
            raise AudioError(f"the prompt lasts {seconds:.1f} s; this pipeline takes at most {self.prompt_limit_seconds:g} s "
                             "(synthesizer prompt_limit_seconds; 3-10 s of clean speech works best)")
        texts = [_transcribe(transcriber, clip) for clip in clips] if transcripts is None else list(transcripts)
        if len(texts) != len(clips):
            raise ConfigError(f"{len(clips)} prompt audio(s) but {len(texts)} transcript(s)")
        if self.add_final_punctuation:
            texts = [add_final_punctuation(t) for t in texts]
        transcript = texts[0] if len(texts) == 1 else f"[S1]{texts[0]}[S2]{texts[1]}"
        prepared, prompt_rms = prepare_prompt(
            join_prompt_clips(clips, channels), target_rms=self.prompt_target_rms,
            remove_silence=self.prompt_remove_silence,
        )
        features = self.features(prepared.samples) * self.acoustic_model.feat_scale
        token_ids = tokenizer.encode(transcript)
        if not token_ids:
            raise TextError(f"the prompt transcript {transcript!r} has no tokens")
        settings = {
            # file names only: a voice file must not reveal where the user keeps the recordings
            "source": ["<audio>" if isinstance(s, Audio) else Path(s).name for s in sources],
            "num_samples": prepared.num_samples,
            "sample_rate": self.features.sample_rate,
            "hop_length": self.features.hop_length,
            "feature_dim": int(features.shape[-1]),
            "feat_scale": self.acoustic_model.feat_scale,
            "features": self.features.name,
            "tokenizer": tokenizer.name,
            "acoustic_model": self.acoustic_model.name,
            "prompt_target_rms": self.prompt_target_rms,
            "prompt_remove_silence": self.prompt_remove_silence,
            "prompt_resampler": self.prompt_resampler,
        }
        voice = self.new_voice(
            {"prompt_features": features.to(torch.float32).contiguous(),
             "prompt_token_ids": torch.tensor(token_ids, dtype=torch.int64)},
            {"transcript": transcript, "prompt_rms": float(prompt_rms), "settings": settings},
        )
        return PromptVoice(voice.family, voice.tensors, voice.metadata, voice.fingerprint, voice.sample_rate)

    # ---- text ----------------------------------------------------------------------------
    def prepare_text(self, text: str) -> str:
        return add_final_punctuation(text) if self.add_final_punctuation else text

    def token_budget(self, voice: PromptVoice, speed: float) -> tuple[int, float, float]:
        """(max tokens per chunk, prompt seconds, seconds per token) from the prompt's rate at
        the effective `speed`. As ZipVoice: a chunk plus the prompt should last about
        `max_chunk_seconds`."""
        rate = voice.settings.get("sample_rate") or self.features.sample_rate
        samples = voice.settings.get("num_samples") or voice.num_frames * self.features.hop_length
        prompt_seconds = samples / rate
        token_seconds = prompt_seconds / (len(voice.prompt_token_ids) * speed)
        budget = int((self.max_chunk_seconds - prompt_seconds) / token_seconds)
        return max(budget, 1), prompt_seconds, token_seconds

    def chunk_budget(self, voice: PromptVoice, options) -> int:
        return self.token_budget(voice, self.effective_speed(options))[0]

    def plan_batches(self, lengths: Sequence[int], voice: PromptVoice, options) -> list[list[int]]:
        _, prompt_seconds, token_seconds = self.token_budget(voice, self.effective_speed(options))
        return batch_by_duration(list(lengths), self.batch_max_seconds, prompt_seconds, token_seconds)

    # ---- generation ----------------------------------------------------------------------
    @torch.inference_mode()
    def generate_features(self, voice: PromptVoice, token_ids: Sequence[Sequence[int]], options,
                          seeds: Sequence[int] | None = None, noise: torch.Tensor | None = None) -> list[torch.Tensor]:
        """One batch through condition -> guidance -> solver.

        noise: (B, T, F) initial state; else each item's (T_i, F) noise is drawn from its own
        seed (so an item's result does not depend on what it is batched with), zero beyond its
        length. Returns each item's generated features (prompt removed), (T_i', F), model space.
        """
        model, batch = self.acoustic_model, len(token_ids)
        prompt = voice.prompt_features.unsqueeze(0).expand(batch, -1, -1)
        prompt_lens = torch.full((batch,), voice.num_frames, dtype=torch.int64)
        cond = model.condition([list(voice.prompt_token_ids)] * batch, [list(t) for t in token_ids], prompt,
                               prompt_lens, self.effective_speed(options))
        shape = (batch, cond.num_frames, model.feature_dim)
        if noise is None:
            seeds = list(seeds) if seeds is not None else [int(torch.randint(0, 2**62, ())) for _ in range(batch)]
            noise = torch.zeros(shape)
            for i, (seed, length) in enumerate(zip(seeds, cond.features_lens.tolist())):
                noise[i, :length] = draw_noise((length, model.feature_dim), seed=seed)
        elif tuple(noise.shape) != shape:
            raise ConfigError(f"noise has shape {tuple(noise.shape)}; this batch needs (B, T, F) = {shape}")
        scale = self.guidance.scale if options.guidance_scale is None else options.guidance_scale
        field = self.guidance.field(model, cond, scale)
        x1 = self.solver.sample(field, noise, num_steps=options.num_steps, t_shift=options.t_shift)
        return [x1[i, int(cond.prompt_features_lens[i]): int(cond.features_lens[i])] for i in range(batch)]

    @torch.inference_mode()
    def decode(self, features: torch.Tensor, voice: PromptVoice) -> torch.Tensor:
        """Generated features (T, F) in model space -> waveform (C, N): undo the feature scale,
        vocode each channel, clamp to [-1, 1], and scale down to a quieter prompt's loudness."""
        from voxpipe.dsp.loudness import match_prompt_loudness

        unscaled = features.T / self.acoustic_model.feat_scale  # (F, T)
        channels = unscaled.chunk(self.num_channels, dim=0)
        wave = torch.cat([self.vocoder.decode(c.unsqueeze(0)) for c in channels], dim=0)
        if not bool(torch.isfinite(wave).all()):
            raise VoxpipeError(
                f"vocoder {self.vocoder.name!r} produced non-finite samples from features in "
                f"[{float(unscaled.min()):.3g}, {float(unscaled.max()):.3g}]; the acoustic model's weights or "
                "feature scale do not fit this vocoder")
        return match_prompt_loudness(wave, voice.prompt_rms, self.output_target_rms)

    def synthesize(self, token_ids, voice: PromptVoice, options, seeds, noise=None) -> list[torch.Tensor]:
        features = self.generate_features(voice, token_ids, options, seeds=seeds, noise=noise)
        return [self.decode(item, voice) for item in features]

    def describe(self) -> dict:
        return {**super().describe(), "acoustic_model": self.acoustic_model.name, "vocoder": self.vocoder.name}


def _transcribe(transcriber, clip: Audio) -> str:
    if transcriber is None:
        raise ConfigError("the prompt has no transcript and this pipeline names no transcriber; pass the transcript "
                          "(--prompt-text / encode_prompt(audio, text=...)) or add `transcriber: {type: faster-whisper}`")
    text = transcriber.transcribe(clip).strip()
    if not text:
        raise TextError("the transcriber heard no words in the prompt; pass its transcript (--prompt-text)")
    return text
