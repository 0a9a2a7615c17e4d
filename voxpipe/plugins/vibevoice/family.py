"""The `vibevoice` family: VibeVoice-Realtime-0.5B (streaming text in, 24 kHz speech out).

Sub-components, each a YAML section and swappable: `codec` (the sigma-VAE acoustic tokenizer,
`vibevoice-acoustic`), `solver` (`dpm-solver`, or any voxpipe solver such as `euler`) and
`guidance` (`vibevoice-cfg`, or `none`). The LM, TTS LM, connector, diffusion head and
end-of-speech classifier come from the model folder (see model.py).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, ClassVar, Literal

import torch
from pydantic import Field

from voxpipe.core.component import Params as BaseParams
from voxpipe.core.component import nested
from voxpipe.core.errors import CompatibilityError, ConfigError, VoiceFileError
from voxpipe.core.synthesizer import Options as BaseOptions
from voxpipe.core.synthesizer import Synthesizer
from voxpipe.core.voice import Voice
from voxpipe.plugins.vibevoice.codec import read_tokenizer
from voxpipe.plugins.vibevoice.denoiser import HeadDenoiser
from voxpipe.plugins.vibevoice.generation import GenerationSettings, RealtimeSession
from voxpipe.plugins.vibevoice.loading import model_folder
from voxpipe.plugins.vibevoice.model import load_realtime
from voxpipe.plugins.vibevoice.schedule import DPMSolver, NoiseSchedule
from voxpipe.plugins.vibevoice.voices import VoicePrompt, read_official_prompt

OFFICIAL_VOICE_SUFFIX = ".pt"


class VibeVoiceRealtime(Synthesizer):
    """VibeVoice-Realtime: Qwen2 LM + TTS LM, per-frame diffusion head, streamed sigma-VAE decode."""

    name: ClassVar[str] = "vibevoice"
    description: ClassVar[str] = "VibeVoice-Realtime-0.5B: next-token diffusion over Qwen2, 24 kHz, streaming"
    needs_tokenizer: ClassVar[bool] = False

    class Params(BaseParams):
        model: str = Field(..., description="model folder: config.json + safetensors (local path or hf://org/repo)")
        voice: str | None = Field(None, description="default voice: a name in voices_dir, or a .pt / .voice file")
        voices_dir: str | None = Field(None, description="folder of official voice prompts (<name>.pt)")
        tokenizer: str | None = Field(None, description="tokenizer.json (default: the model folder's)")
        max_new_tokens: int | None = Field(None, ge=1, description="cap on text + speech positions after the voice "
                                                                   "prompt (default: up to max_position_embeddings)")
        attention: Literal["sdpa", "eager"] = Field("sdpa", description="Qwen2 attention implementation")
        device: str = Field("cpu", description="torch device")
        codec: Any = nested("codec", default={"type": "vibevoice-acoustic"})
        solver: Any = nested("solver", default={"type": "dpm-solver"})
        guidance: Any = nested("guidance", default={"type": "vibevoice-cfg"})

    class Options(BaseOptions):
        cfg_scale: float | None = Field(None, ge=0, le=20, allow_inf_nan=False, description="guidance scale")
        num_steps: int | None = Field(None, ge=1, le=1000, description="diffusion steps per latent")
        max_new_tokens: int | None = Field(None, ge=1, description="cap on text + speech positions")

    def __init__(self, *, model, voice, voices_dir, tokenizer, max_new_tokens, attention, device, codec, solver,
                 guidance) -> None:
        from voxpipe.core.weights import resolve_path

        self.folder = model_folder(resolve_path(model, what="VibeVoice model"))
        self.model, tokenizer_state, self.config = load_realtime(self.folder, attention)
        self.model.to(device)
        if codec.model is None:
            codec.attach(read_tokenizer(self.folder, tokenizer_state))
        if codec.latent_dim != self.config.acoustic.vae_dim:
            raise CompatibilityError(f"codec latents have {codec.latent_dim} dims; the model's {self.config.acoustic.vae_dim}")
        if not codec.has_decoder:
            raise CompatibilityError("the codec has no decoder weights; the vibevoice family decodes latents to audio")
        self.codec, self.solver, self.guidance = codec, solver, guidance
        self.sample_rate = codec.sample_rate
        head = self.config.head
        if isinstance(solver, DPMSolver) and (solver.schedule.num_train_timesteps, solver.schedule.beta_schedule) != (
                head.ddpm_num_steps, head.ddpm_beta_schedule):
            raise CompatibilityError(
                f"solver 'dpm-solver' uses {solver.schedule.num_train_timesteps} steps of {solver.schedule.beta_schedule!r} "
                f"betas; the model was trained with {head.ddpm_num_steps} of {head.ddpm_beta_schedule!r} "
                f"(diffusion_head_config)")
        self.denoiser = HeadDenoiser(self.model.prediction_head, NoiseSchedule(head.ddpm_num_steps, head.ddpm_beta_schedule))
        self.voices_dir = None if voices_dir is None else resolve_path(voices_dir, what="VibeVoice voices folder")
        self.tokenizer_path = tokenizer
        self.max_new_tokens = max_new_tokens
        self.default_voice = voice
        if voice is not None:
            self.resolve_voice(voice)  # a bad default voice fails when the pipeline is built

    # ---- voices --------------------------------------------------------------------------
    def voices(self) -> list[str]:
        if self.voices_dir is None or not self.voices_dir.is_dir():
            return []
        return sorted(p.stem for p in self.voices_dir.glob(f"*{OFFICIAL_VOICE_SUFFIX}"))

    def voice_fingerprint(self) -> dict[str, Any]:
        return self.config.fingerprint()

    def resolve_voice(self, voice: Voice | str | None) -> VoicePrompt:
        """A voice name (voices_dir/<name>.pt), an official .pt prompt or a .voice file path,
        a `Voice` of this family, or None for the configured default."""
        if voice is None:
            voice = self.default_voice
            if voice is None:
                raise ConfigError("synthesizer 'vibevoice' has no default voice: set synthesizer.voice (a name in "
                                  "voices_dir or a voice prompt .pt file) or pass a voice")
        if isinstance(voice, Voice):
            self.check_voice(voice)
            prompt = VoicePrompt.from_tensors(voice.tensors, "voice")
        elif isinstance(voice, (str, Path)):
            prompt = self._prompt_from_path(str(voice))
        else:
            raise ConfigError(f"a vibevoice voice is a name, a .pt/.voice path or a Voice; got {type(voice).__name__}")
        self._check_prompt(prompt, str(voice) if not isinstance(voice, Voice) else "voice")
        return prompt

    def _prompt_from_path(self, text: str) -> VoicePrompt:
        if self.voices_dir is not None and (self.voices_dir / f"{text}{OFFICIAL_VOICE_SUFFIX}").is_file():
            return read_official_prompt(self.voices_dir / f"{text}{OFFICIAL_VOICE_SUFFIX}")
        path = Path(text).expanduser()
        if path.suffix == ".voice":
            voice = Voice.load(path)
            self.check_voice(voice)
            return VoicePrompt.from_tensors(voice.tensors, str(path))
        if path.is_file():
            return read_official_prompt(path)
        names = ", ".join(self.voices()) or "(no voices_dir)"
        raise ConfigError(f"unknown vibevoice voice {text!r}: not a file and not one of: {names}")

    def _check_prompt(self, prompt: VoicePrompt, source: str) -> None:
        """A prompt made for another model size is refused before any generation."""
        facts = self.config.fingerprint()
        expected = {"lm": facts["lm_layers"], "tts_lm": facts["tts_lm_layers"], "neg_lm": facts["lm_layers"],
                    "neg_tts_lm": facts["tts_lm_layers"]}
        for part, layers in expected.items():
            cache = prompt.part(part)
            tensors = cache.keys + cache.values
            if (any(t.dim() != 4 or t.shape[0] != 1 or not t.is_floating_point() for t in tensors)
                    or len({t.shape[2] for t in tensors}) != 1 or cache.last_hidden.dim() != 2):
                raise VoiceFileError(f"{source}: the {part} cache should hold (1, heads, length, head_dim) keys and "
                                     f"values of one length and a (1, hidden) last hidden state")
            shape = tuple(cache.keys[0].shape)
            if (len(cache.keys) != layers or shape[1] != facts["num_key_value_heads"] or shape[3] != facts["head_dim"]
                    or cache.last_hidden.shape[-1] != facts["hidden_size"]):
                raise VoiceFileError(
                    f"{source} is a voice prompt for another model: its {part} cache has {len(cache.keys)} layers of "
                    f"{shape[1]} heads x {shape[3]} dims and hidden size {cache.last_hidden.shape[-1]}; this model "
                    f"needs {layers} layers of {facts['num_key_value_heads']} x {facts['head_dim']}, hidden size "
                    f"{facts['hidden_size']}")

    def to_voice(self, prompt: VoicePrompt, metadata: dict[str, Any] | None = None) -> Voice:
        """An official prompt as a voxpipe `.voice` (safetensors) of this family."""
        return self.new_voice(prompt.tensors(), dict(metadata or {}, source="vibevoice prompt cache"))

    # ---- text ----------------------------------------------------------------------------
    def default_tokenizer(self):
        from voxpipe.plugins.vibevoice.text import VibeVoiceTextTokenizer

        return VibeVoiceTextTokenizer.create(path=self.tokenizer_path or str(self.folder))

    def chunk_budget(self, voice: Any, options: Options) -> int:
        # Each text token brings about 6/5 speech frames plus a tail: keep a chunk well inside
        # the positions left after the prompt.
        room = self._max_length(voice, options) - voice.tts_lm.length
        return max(1, min(400, room // 4))

    def _max_length(self, prompt: VoicePrompt, options: Options) -> int:
        cap = options.max_new_tokens or self.max_new_tokens
        limit = int(self.config.decoder.get("max_position_embeddings", 8192))
        return limit if cap is None else prompt.tts_lm.length + cap

    # ---- generation ----------------------------------------------------------------------
    def session(self, prompt: VoicePrompt, options: Options, seed: int) -> RealtimeSession:
        settings = GenerationSettings(
            num_steps=options.num_steps,
            cfg_scale=self.guidance.scale if options.cfg_scale is None else options.cfg_scale,
            max_length=self._max_length(prompt, options))
        generator = torch.Generator().manual_seed(int(seed))
        return RealtimeSession(self.model, self.codec, self.solver, self.guidance, self.denoiser, prompt, settings,
                               generator)

    def stream_frames(self, token_ids: Sequence[int], voice: VoicePrompt, options: Options,
                      seed: int) -> Iterator[torch.Tensor]:
        """(C, hop) float32 audio per latent frame as it is generated (unclipped)."""
        yield from self.session(voice, options, seed).frames(list(token_ids))

    def synthesize(self, token_ids, voice, options, seeds, noise=None) -> list[torch.Tensor]:
        if noise is not None:
            raise ConfigError("synthesizer 'vibevoice' draws its noise per frame from the seed; it takes no noise")
        waves = []
        for ids, seed in zip(token_ids, seeds):
            frames = list(self.stream_frames(ids, voice, options, seed))
            wave = torch.cat(frames, dim=-1) if frames else torch.zeros(self.codec.model.config.channels, 0)
            waves.append(wave.float().clamp(-1.0, 1.0).cpu())
        return waves

    def describe(self) -> dict:
        info = super().describe()
        info.update(hop_length=self.codec.hop_length, latent_dim=self.codec.latent_dim)
        return info
