"""The streaming next-token-diffusion loop of VibeVoice-Realtime.

Order of operations (the official `generate`, batch 1):

1. Start from the voice prompt's cached key/values (LM, TTS LM, negative TTS LM).
2. Repeat: take the next window of TEXT_WINDOW text tokens (if any are left): run it through
   the LM, then through the TTS LM as the LM's hidden states plus the "text" type embedding.
   Then produce up to SPEECH_WINDOW frames; for each: sample one latent with the diffusion head
   (solver + guidance: the TTS LM's last hidden state against the negative TTS LM's), decode it
   to hop_length samples through the codec's streaming cache, embed it with the acoustic
   connector and feed it (type "speech") to the TTS LM and to the negative TTS LM, and stop when
   the end-of-speech classifier on the TTS LM's new last hidden state says so.
3. Stop too when the TTS LM would hold more than `max_length` positions.

Noise: each latent draws (2, vae_dim) standard normal values from the session's generator and
starts from the first row, as the official code draws them, so seeds give the official latents.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import torch

from voxpipe.core.guidance import Guidance
from voxpipe.core.solver import Solver
from voxpipe.plugins.vibevoice.codec import AcousticCodec
from voxpipe.plugins.vibevoice.denoiser import HeadDenoiser, LatentCondition
from voxpipe.plugins.vibevoice.model import RealtimeModel
from voxpipe.plugins.vibevoice.voices import PromptCache, VoicePrompt

TEXT_WINDOW = 5
SPEECH_WINDOW = 6


def new_cache(prompt: PromptCache, dtype: torch.dtype, device: torch.device):
    """A transformers DynamicCache holding a copy-free view of the prompt's key/values."""
    from transformers.cache_utils import DynamicCache

    cache = DynamicCache()
    for index, (key, value) in enumerate(zip(prompt.keys, prompt.values)):
        cache.update(key.to(device, dtype), value.to(device, dtype), index)
    return cache


def _cache_argument(model: torch.nn.Module) -> str:
    """transformers >= 5.2x calls the key/value cache `cache`; older versions `past_key_values`."""
    return "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"


@dataclass
class _Stack:
    """One Qwen2 stack with its cache and the number of positions it holds."""

    model: torch.nn.Module
    cache: object
    length: int

    def run(self, embeds: torch.Tensor) -> torch.Tensor:
        """(1, n, H) -> last hidden states (1, n, H); the cache grows by n positions."""
        positions = torch.arange(self.length, self.length + embeds.shape[1], device=embeds.device).unsqueeze(0)
        cache_argument = _cache_argument(self.model)
        out = self.model(inputs_embeds=embeds, position_ids=positions, use_cache=True, **{cache_argument: self.cache})
        self.length += embeds.shape[1]
        return out.last_hidden_state


@dataclass
class GenerationSettings:
    num_steps: int | None
    cfg_scale: float
    max_length: int


class RealtimeSession:
    """One utterance: `frames(text_ids)` yields (C, hop) float32 audio per latent frame."""

    def __init__(self, model: RealtimeModel, codec: AcousticCodec, solver: Solver, guidance: Guidance,
                 denoiser: HeadDenoiser, prompt: VoicePrompt, settings: GenerationSettings,
                 generator: torch.Generator) -> None:
        self.model = model
        self.codec = codec
        self.solver = solver
        self.guidance = guidance
        self.denoiser = denoiser
        self.settings = settings
        self.generator = generator
        parameter = next(model.parameters())
        self.dtype, self.device = parameter.dtype, parameter.device
        self.lm = _Stack(model.language_model, new_cache(prompt.lm, self.dtype, self.device), prompt.lm.length)
        self.tts = _Stack(model.tts_language_model, new_cache(prompt.tts_lm, self.dtype, self.device),
                          prompt.tts_lm.length)
        self.negative = _Stack(model.tts_language_model, new_cache(prompt.neg_tts_lm, self.dtype, self.device),
                               prompt.neg_tts_lm.length)
        self.condition = prompt.tts_lm.last_hidden.to(self.device, self.dtype)
        self.negative_condition = prompt.neg_tts_lm.last_hidden.to(self.device, self.dtype)
        self.decoder = codec.stream()
        self.latents: list[torch.Tensor] = []
        self.finished = False

    def _type(self, kind: int) -> torch.Tensor:
        return self.model.tts_input_types(torch.tensor([[kind]], device=self.device))

    def feed_text(self, ids: list[int]) -> None:
        """One text window through the LM and the TTS LM."""
        tokens = torch.tensor([ids], device=self.device)
        hidden = self.lm.run(self.model.language_model.embed_tokens(tokens))
        self.condition = self.tts.run(hidden + self._type(1))[:, -1]

    def sample_latent(self) -> torch.Tensor:
        """(1, vae_dim) latent for the current conditions."""
        noise = torch.randn(2, self.model.config.acoustic.vae_dim, generator=self.generator, dtype=torch.float32)
        noise = noise.to(self.device, self.dtype)[:1]
        cond = LatentCondition(self.condition, self.negative_condition)
        field = self.guidance.field(self.denoiser, cond, self.settings.cfg_scale)
        return self.solver.sample(field, noise, num_steps=self.settings.num_steps)

    def speech_frame(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Sample and decode one latent: its audio (C, hop) and its connector embedding (1, 1, H)."""
        latent = self.sample_latent().unsqueeze(1)  # (1, 1, vae_dim)
        self.latents.append(latent[0, 0])
        scaled = latent / self.model.speech_scaling_factor - self.model.speech_bias_factor
        audio = self.decoder.decode(scaled)[0]
        return audio, self.model.acoustic_connector(latent)

    def _feed_speech(self, embed: torch.Tensor) -> None:
        self.condition = self.tts.run(embed + self._type(0))[:, -1]
        self.negative_condition = self.negative.run(embed + self._type(0))[:, -1]
        probability = torch.sigmoid(self.model.tts_eos_classifier(self.condition))
        self.finished = bool(probability[0, 0] > 0.5)

    def frames(self, text_ids: list[int]) -> Iterator[torch.Tensor]:
        """Audio (C, hop) per generated latent frame, as soon as it is decoded."""
        max_length = self.settings.max_length
        window = 0
        while not self.finished:
            with torch.inference_mode():
                ids = text_ids[window * TEXT_WINDOW:(window + 1) * TEXT_WINDOW]
                window += 1
                if ids:
                    if self.tts.length + len(ids) > max_length:
                        return
                    self.feed_text(ids)
            for _ in range(SPEECH_WINDOW):
                with torch.inference_mode():
                    audio, embed = self.speech_frame()
                yield audio
                if self.tts.length + 1 > max_length:
                    return
                with torch.inference_mode():
                    self._feed_speech(embed)
                if self.finished:
                    return

    def run(self, text_ids: list[int], on_audio: Callable[[torch.Tensor], None]) -> None:
        for audio in self.frames(text_ids):
            on_audio(audio)
