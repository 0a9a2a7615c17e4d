"""`Pipeline`: composes the registered components into prompt encoding and synthesis.

The path of one request (see docs/architecture.md):

    prompt audio -> load/resample -> prompt preparation (silence, RMS) -> FeatureExtractor -> Voice
    text -> TextNormalizer -> TextChunker -> Tokenizer -> ids
    AcousticModel.condition -> Guidance.field -> Solver.sample -> Vocoder.decode
         -> clamp, loudness match -> cross-fade -> edge-silence trim -> Audio
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import torch

from voxpipe.core.acoustic_model import AcousticModel
from voxpipe.core.audio import Audio
from voxpipe.core.batching import batch_by_duration
from voxpipe.core.compatibility import check_pipeline
from voxpipe.core.config import PipelineConfig, build_config
from voxpipe.core.errors import ConfigError, TextError, VoxpipeError
from voxpipe.core.settings import PipelineSettings
from voxpipe.core.solver import draw_noise
from voxpipe.core.text import TextSpan
from voxpipe.core.voice import Voice
from voxpipe.dsp.crossfade import crossfade_concat
from voxpipe.dsp.loudness import match_prompt_loudness

FINAL_PUNCTUATION = ";:,.!?；：，。！？"


def add_final_punctuation(text: str) -> str:
    """Append '.' when the text does not end in punctuation (ZipVoice's `add_punctuation`)."""
    text = text.strip()
    if text and text[-1] not in FINAL_PUNCTUATION:
        text += "."
    return text


@dataclass
class Chunk:
    """One piece of one input text, ready for the acoustic model."""

    text_index: int
    span: TextSpan | None  # None when the chunker cut the token sequence (no character span)
    token_ids: list[int]


class Pipeline:
    """A text-to-speech pipeline.

    Build it from a YAML file (`Pipeline.from_config("configs/luxtts.yaml")`) or compose it
    directly (`Pipeline(tokenizer=..., features=..., acoustic_model=..., ...)`). Component
    compatibility is checked here, at build time.
    """

    def __init__(
        self,
        *,
        acoustic_model: AcousticModel,
        tokenizer=None,
        features=None,
        vocoder=None,
        solver=None,
        guidance=None,
        normalizer=None,
        chunker=None,
        transcriber=None,
        settings: PipelineSettings | Mapping[str, Any] | None = None,
        config: PipelineConfig | None = None,
    ) -> None:
        self.acoustic_model = acoustic_model
        self.tokenizer = tokenizer
        self.features = features
        self.vocoder = vocoder
        self.solver = solver
        self.guidance = guidance
        self.normalizer = normalizer
        self.chunker = chunker
        self.transcriber = transcriber
        if settings is None:
            settings = PipelineSettings()
        elif not isinstance(settings, PipelineSettings):
            settings = PipelineSettings.model_validate(dict(settings))
        self.settings = settings
        self.config = config
        if tokenizer is None:
            raise ConfigError("a pipeline needs a tokenizer")
        check_pipeline(
            features=features, tokenizer=tokenizer, acoustic_model=acoustic_model,
            vocoder=vocoder, solver=solver, guidance=guidance,
        )

    # ---- construction --------------------------------------------------------------------
    @classmethod
    def from_config(
        cls,
        source: str | Path | Mapping[str, Any],
        overrides: Iterable[str] | Mapping[str, Any] = (),
        *,
        weights_dir: str | None = None,
        registry=None,
    ) -> "Pipeline":
        """Build from a pipeline file (path or bundled name like "luxtts") or a mapping."""
        config = build_config(source, overrides, registry=registry, weights_dir=weights_dir)
        built: dict[str, Any] = {}
        for kind, component in config.components.items():
            try:
                built[kind] = component.info.cls.from_params(component.params)
            except VoxpipeError as error:
                raise type(error)(f"{config.source}: {kind} {component.info.name!r}: {error}") from None
        return cls(**built, settings=config.settings, config=config)

    @property
    def sample_rate(self) -> int:
        """Hz of the audio this pipeline produces."""
        if self.acoustic_model.output == "waveform":
            return self.acoustic_model.sample_rate
        return self.vocoder.sample_rate

    @property
    def num_channels(self) -> int:
        return getattr(self.acoustic_model, "num_channels", 1)

    # ---- prompt --------------------------------------------------------------------------
    def encode_prompt(
        self,
        audio: Audio | str | Path | Sequence[Audio | str | Path],
        text: str | Sequence[str] | None = None,
    ) -> Voice:
        """Encode a speaker prompt once (features, token ids, transcript, original RMS).

        audio: an `Audio` or a sound-file path; for two-speaker dialog models also a pair
        (speaker 1, speaker 2), joined in time (mono models) or placed on one channel each
        (stereo models), as ZipVoice-Dialog does. text: the transcript (a pair of transcripts
        is joined as "[S1]t1[S2]t2"); transcribed with the pipeline's transcriber (default:
        offline faster-whisper) when None.
        """
        if self.acoustic_model.output != "features":
            raise ConfigError(
                f"acoustic_model {self.acoustic_model.name!r} does not clone voices from a prompt; "
                "pass one of its built-in voices by name instead"
            )
        from voxpipe.audio.prompt import join_prompt_clips, load_prompt_clip, prepare_prompt

        sources = list(audio) if isinstance(audio, (list, tuple)) else [audio]
        if not 1 <= len(sources) <= 2:
            raise ConfigError(f"a prompt is one audio, or two for dialog models; got {len(sources)}")
        settings, channels = self.settings, self.features.num_channels
        clips = [
            load_prompt_clip(source, self.features.sample_rate, keep_channels=channels > 1,
                             max_seconds=settings.prompt_max_seconds, resampler=settings.prompt_resampler)
            for source in sources
        ]
        if text is None:
            text = [self._transcribe(clip) for clip in clips]
        texts = [text] if isinstance(text, str) else list(text)
        if len(texts) != len(clips):
            raise ConfigError(f"{len(clips)} prompt audio(s) but {len(texts)} transcript(s)")
        if self.settings.add_final_punctuation:
            texts = [add_final_punctuation(t) for t in texts]
        transcript = texts[0] if len(texts) == 1 else f"[S1]{texts[0]}[S2]{texts[1]}"
        prepared, prompt_rms = prepare_prompt(
            join_prompt_clips(clips, channels), target_rms=self.settings.prompt_target_rms,
            remove_silence=self.settings.prompt_remove_silence,
        )
        features = self.features(prepared.samples) * self.acoustic_model.feat_scale
        token_ids = self.tokenizer.encode(transcript)
        if not token_ids:
            raise TextError(f"the prompt transcript {transcript!r} has no tokens")
        return Voice(
            prompt_features=features.to(torch.float32),
            prompt_token_ids=token_ids,
            transcript=transcript,
            prompt_rms=float(prompt_rms),
            settings={
                "source": ["<audio>" if isinstance(s, Audio) else str(s) for s in sources],
                "num_samples": prepared.num_samples,
                "sample_rate": self.features.sample_rate,
                "hop_length": self.features.hop_length,
                "feature_dim": int(features.shape[-1]),
                "feat_scale": self.acoustic_model.feat_scale,
                "features": self.features.name,
                "tokenizer": self.tokenizer.name,
                "acoustic_model": self.acoustic_model.name,
                "prompt_target_rms": self.settings.prompt_target_rms,
                "prompt_remove_silence": self.settings.prompt_remove_silence,
                "prompt_resampler": self.settings.prompt_resampler,
            },
        )

    def _transcribe(self, audio: Audio) -> str:
        transcriber = self.transcriber
        if transcriber is None:
            from voxpipe.registry import get_registry

            try:
                info = get_registry().get("transcriber", "faster-whisper")
                transcriber = self.transcriber = info.cls.from_params(info.params_model())
            except VoxpipeError as error:
                raise VoxpipeError(
                    f"the prompt has no transcript and no transcriber could be loaded ({error}); "
                    "pass the transcript instead (--prompt-text / encode_prompt(audio, text=...))"
                ) from None
        text = transcriber.transcribe(audio).strip()
        if not text:
            raise TextError("the transcriber heard no words in the prompt; pass its transcript (--prompt-text)")
        return text

    def stream(self, voice: Voice | str | None = None, **options):
        """A streaming session: `push_text()`, `flush()`, iterate `AudioChunk`s (see
        voxpipe.streaming.StreamingSession for the options and the chunking policy)."""
        from voxpipe.streaming import StreamingSession

        return StreamingSession(self, voice, **options)

    def check_voice(self, voice: Voice) -> None:
        """Raise ConfigError if `voice` was not made for this pipeline's features and model."""
        expected = self.acoustic_model.feature_dim
        if voice.prompt_features.shape[-1] != expected:
            raise ConfigError(
                f"voice has {voice.prompt_features.shape[-1]}-dim features but acoustic_model "
                f"{self.acoustic_model.name!r} expects {expected}"
            )
        made_at = voice.settings.get("sample_rate")
        if made_at is not None and self.features is not None and made_at != self.features.sample_rate:
            raise ConfigError(f"voice was encoded at {made_at} Hz but this pipeline's features run at {self.features.sample_rate} Hz")

    # ---- text ----------------------------------------------------------------------------
    def prepare_text(self, text: str) -> str:
        if self.normalizer is not None:
            text = self.normalizer.normalize(text)
        if self.settings.add_final_punctuation:
            text = add_final_punctuation(text)
        return text

    def chunk_text(self, text: str, max_tokens: int) -> list[TextSpan]:
        """Split prepared text into spans of at most `max_tokens` tokens (when possible)."""
        text = text.strip()
        if self.chunker is None:
            return [TextSpan(text, 0, len(text))]
        return self.chunker.split(text, max_tokens, measure=lambda piece: len(self.tokenizer.tokenize(piece)))

    def token_budget(self, voice: Voice | None, speed: float) -> tuple[int, float, float]:
        """(max tokens per chunk, prompt seconds, seconds per token) from the prompt's rate.

        As ZipVoice: a chunk plus the prompt should last about `max_chunk_seconds`.
        """
        if voice is None:
            return getattr(self.acoustic_model, "max_tokens", 400), 0.0, 0.0
        rate = voice.settings.get("sample_rate") or self.features.sample_rate
        samples = voice.settings.get("num_samples") or voice.num_frames * (self.features.hop_length)
        prompt_seconds = samples / rate
        token_seconds = prompt_seconds / (len(voice.prompt_token_ids) * speed)
        budget = int((self.settings.max_chunk_seconds - prompt_seconds) / token_seconds)
        return max(budget, 1), prompt_seconds, token_seconds

    # ---- generation ----------------------------------------------------------------------
    @torch.inference_mode()
    def generate_features(
        self,
        voice: Voice,
        token_ids: Sequence[Sequence[int]],
        *,
        speed: float = 1.0,
        num_steps: int | None = None,
        guidance_scale: float | None = None,
        t_shift: float | None = None,
        noise: torch.Tensor | None = None,
        seeds: Sequence[int] | None = None,
    ) -> list[torch.Tensor]:
        """One batch through condition -> guidance -> solver.

        speed is the effective speed (after `speed_factor`). noise: (B, T, F) initial state;
        else each item's (T_i, F) noise is drawn from its own seed in `seeds` (so an item's
        result does not depend on what it is batched with), zero beyond its length. Returns
        the generated (prompt removed) features of each item, (T_i', F), model feature space.
        """
        model, batch = self.acoustic_model, len(token_ids)
        prompt = voice.prompt_features.unsqueeze(0).expand(batch, -1, -1)
        prompt_lens = torch.full((batch,), voice.num_frames, dtype=torch.int64)
        cond = model.condition([list(voice.prompt_token_ids)] * batch, [list(t) for t in token_ids], prompt, prompt_lens, speed)
        shape = (batch, cond.num_frames, model.feature_dim)
        if noise is None:
            seeds = list(seeds) if seeds is not None else [int(torch.randint(0, 2**62, ())) for _ in range(batch)]
            noise = torch.zeros(shape)
            for i, (seed, length) in enumerate(zip(seeds, cond.features_lens.tolist())):
                noise[i, :length] = draw_noise((length, model.feature_dim), seed=seed)
        elif tuple(noise.shape) != shape:
            raise ConfigError(f"noise has shape {tuple(noise.shape)}; this batch needs (B, T, F) = {shape}")
        scale = self.guidance.scale if guidance_scale is None else guidance_scale
        field = self.guidance.field(model, cond, scale)
        x1 = self.solver.sample(field, noise, num_steps=num_steps, t_shift=t_shift)
        return [
            x1[i, int(cond.prompt_features_lens[i]) : int(cond.features_lens[i])]
            for i in range(batch)
        ]

    @torch.inference_mode()
    def decode(self, features: torch.Tensor, voice: Voice) -> torch.Tensor:
        """Generated features (T, F) in model space -> waveform (C, N): undo the feature scale,
        vocode each channel, clamp to [-1, 1], and scale down to a quieter prompt's loudness."""
        unscaled = features.T / self.acoustic_model.feat_scale  # (F, T)
        channels = unscaled.chunk(self.num_channels, dim=0)
        wave = torch.cat([self.vocoder.decode(c.unsqueeze(0)) for c in channels], dim=0)
        if not bool(torch.isfinite(wave).all()):
            raise VoxpipeError(
                f"vocoder {self.vocoder.name!r} produced non-finite samples from features in "
                f"[{float(unscaled.min()):.3g}, {float(unscaled.max()):.3g}]; the acoustic model's weights or "
                "feature scale do not fit this vocoder"
            )
        return match_prompt_loudness(wave, voice.prompt_rms, self.settings.output_target_rms)

    def synthesize(
        self,
        text: str | Sequence[str],
        voice: Voice | str | None = None,
        *,
        speed: float | None = None,
        num_steps: int | None = None,
        guidance_scale: float | None = None,
        t_shift: float | None = None,
        seed: int | None = None,
        noise: torch.Tensor | Sequence[torch.Tensor] | None = None,
        progress: bool = False,
    ) -> Audio | list[Audio]:
        """Text (or many texts, generated in shared batches) -> Audio.

        voice: a `Voice` from `encode_prompt` for cloning models, a built-in voice name for
        models with their own voices. seed: makes the result deterministic (default: the
        `settings.seed`, else random). noise: explicit initial states, one (B, T, F) tensor per
        batch (parity testing).
        """
        texts = [text] if isinstance(text, str) else list(text)
        if not texts or any(not t.strip() for t in texts):
            raise TextError("nothing to synthesize: the text is empty")
        speed = self.settings.speed if speed is None else speed
        if speed <= 0:
            raise ConfigError(f"speed must be > 0, got {speed}")
        seed = self.settings.seed if seed is None else seed
        if seed is None:
            seed = int(torch.randint(0, 2**62, ()))
        if self.acoustic_model.output == "waveform":
            audios = [self._synthesize_waveform(t, voice, speed, progress) for t in texts]
        else:
            if not isinstance(voice, Voice):
                raise ConfigError(
                    f"acoustic_model {self.acoustic_model.name!r} clones a voice: pass a Voice "
                    "(pipeline.encode_prompt(...) or Voice.load(...)) or a prompt (--prompt / --voice)"
                )
            audios = self._synthesize_features(
                texts, voice, speed, num_steps, guidance_scale, t_shift, seed, noise, progress
            )
        return audios[0] if isinstance(text, str) else audios

    def plan_chunks(self, texts: Sequence[str], voice: Voice | None, speed: float) -> list[Chunk]:
        """Normalize, chunk under the duration budget and tokenize every text.

        A chunker that cuts token sequences (`split_tokens`, ZipVoice's rule) gets the tokens of
        the whole text, as the official script does, so every chunk holds exactly the tokens the
        whole text has there; its chunks carry no character span (`span` None). Other chunkers
        cut the text and each piece is tokenized (spans kept, e.g. for streaming).
        """
        max_tokens = self.token_budget(voice, speed)[0]
        split_tokens = getattr(self.chunker, "split_tokens", None)
        by_tokens = split_tokens is not None and hasattr(self.tokenizer, "tokens_to_ids")
        chunks: list[Chunk] = []
        for index, text in enumerate(texts):
            prepared = self.prepare_text(text)
            if by_tokens:
                self.tokenizer.encode(prepared)  # reports unknown symbols once for the whole text
                pieces = [self.tokenizer.tokens_to_ids(piece) for piece in split_tokens(self.tokenizer.tokenize(prepared), max_tokens)]
                chunks += [Chunk(index, None, ids) for ids in pieces if ids]
                continue
            for span in self.chunk_text(prepared, max_tokens):
                ids = self.tokenizer.encode(span.text)
                if ids:
                    chunks.append(Chunk(index, span, ids))
        return chunks

    def _synthesize_features(self, texts, voice, speed, num_steps, guidance_scale, t_shift, seed, noise, progress):
        self.check_voice(voice)
        effective_speed = speed * self.settings.speed_factor
        chunks = self.plan_chunks(texts, voice, effective_speed)
        if not chunks:
            raise TextError(f"no speakable tokens in {texts!r}")
        _, prompt_seconds, token_seconds = self.token_budget(voice, effective_speed)
        batches = batch_by_duration(
            [len(c.token_ids) for c in chunks], self.settings.batch_max_seconds, prompt_seconds, token_seconds
        )
        if noise is not None:
            noise = [noise] if isinstance(noise, torch.Tensor) else list(noise)
            if len(noise) != len(batches):
                raise ConfigError(f"{len(noise)} noise tensors given for {len(batches)} batches")
        waves: dict[int, torch.Tensor] = {}
        for number, batch in enumerate(_progress(batches, progress, "batches")):
            features = self.generate_features(
                voice, [chunks[i].token_ids for i in batch], speed=effective_speed, num_steps=num_steps,
                guidance_scale=guidance_scale, t_shift=t_shift,
                noise=None if noise is None else noise[number], seeds=[chunk_seed(seed, i) for i in batch],
            )
            for index, item in zip(batch, features):
                waves[index] = self.decode(item, voice)
        return [self._assemble([waves[i] for i, c in enumerate(chunks) if c.text_index == t]) for t in range(len(texts))]

    def _synthesize_waveform(self, text, voice, speed, progress) -> Audio:
        chunks = self.plan_chunks([text], None, speed)
        if not chunks:
            raise TextError(f"no speakable tokens in {text!r}")
        waves = [
            self.acoustic_model.generate_waveform(chunk.token_ids, voice, speed).reshape(1, -1)
            for chunk in _progress(chunks, progress, "chunks")
        ]
        return self._assemble(waves)

    def _assemble(self, waves: list[torch.Tensor]) -> Audio:
        """(C, N_i) chunk waveforms in text order -> one Audio: cross-fade, then trim edge silence."""
        rate = self.sample_rate
        wave = crossfade_concat(waves, int(self.settings.crossfade_seconds * rate))
        if self.settings.trim_silence:
            from voxpipe.audio.silence import trim_edge_silence

            wave = trim_edge_silence(wave, rate)
        return Audio(wave[0] if wave.shape[0] == 1 else wave, rate)


def chunk_seed(seed: int, chunk_index: int) -> int:
    """The noise seed of the chunk at `chunk_index` of a request seeded with `seed`: the same
    chunk gets the same noise whether it is generated alone, batched, or streamed."""
    return (int(seed) * 1_000_003 + chunk_index) % (2**63 - 1)


def _progress(items, enabled: bool, unit: str):
    if not enabled or len(items) <= 1:
        return items
    from tqdm import tqdm

    return tqdm(items, unit=unit, desc="synthesizing")

