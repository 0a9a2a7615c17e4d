"""`Pipeline`: text in, audio out, the same for every model family.

The path of one request (see docs/architecture.md):

    text -> normalizer -> synthesizer.prepare_text -> chunker (under synthesizer.chunk_budget)
         -> tokenizer -> synthesizer.plan_batches -> synthesizer.synthesize -> (C, N) waveforms
         -> cross-fade -> edge-silence trim -> output rate -> Audio

    prompt audio (+ transcript, or the transcriber) -> synthesizer.encode_voice -> Voice

The pipeline knows nothing about how a family makes audio: what differs is declared by the
`Synthesizer` (its `Options`, capabilities and budgets).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import torch

from voxpipe.core.allocator import retain_freed_memory
from voxpipe.core.audio import Audio
from voxpipe.core.compatibility import raise_problems, vocabulary_problems
from voxpipe.core.config import FAMILY_KIND, PipelineConfig, build_config
from voxpipe.core.errors import ConfigError, TextError
from voxpipe.core.precision import resolve
from voxpipe.core.settings import PipelineSettings
from voxpipe.core.synthesizer import Synthesizer
from voxpipe.core.text import TextSpan
from voxpipe.core.voice import Voice
from voxpipe.dsp.crossfade import crossfade_concat


@dataclass
class Chunk:
    """One piece of one input text, ready for the family."""

    text_index: int
    span: TextSpan | None  # None when the chunker cut the token sequence (no character span)
    token_ids: list[int]


class Pipeline:
    """A text-to-speech pipeline.

    Build it from a YAML file (`Pipeline.from_config("configs/luxtts.yaml")`) or compose it
    directly (`Pipeline(synthesizer=..., tokenizer=..., chunker=...)`). Compatibility between the
    tokenizer and the family is checked here, at build time; a family checks its own parts.
    """

    def __init__(
        self,
        *,
        synthesizer: Synthesizer,
        tokenizer=None,
        normalizer=None,
        chunker=None,
        transcriber=None,
        settings: PipelineSettings | Mapping[str, Any] | None = None,
        config: PipelineConfig | None = None,
    ) -> None:
        if not isinstance(synthesizer, Synthesizer):
            raise ConfigError(f"a pipeline needs a synthesizer (a model family), got {type(synthesizer).__name__}")
        tokenizer = tokenizer if tokenizer is not None else synthesizer.default_tokenizer()
        if tokenizer is None:
            raise ConfigError(f"a pipeline needs a tokenizer: synthesizer {synthesizer.name!r} has none of its own")
        self.synthesizer = synthesizer
        self.tokenizer = tokenizer
        self.normalizer = normalizer
        self.chunker = chunker
        self.transcriber = transcriber
        if settings is None:
            settings = PipelineSettings()
        elif not isinstance(settings, PipelineSettings):
            settings = PipelineSettings.model_validate(dict(settings))
        self.settings = settings
        self.config = config
        if settings.retain_freed_memory_mb:
            retain_freed_memory(settings.retain_freed_memory_mb << 20)
        raise_problems(vocabulary_problems(tokenizer, synthesizer))

    # ---- construction --------------------------------------------------------------------
    @classmethod
    def from_config(
        cls,
        source: str | Path | Mapping[str, Any] | PipelineConfig,
        overrides: Iterable[str] | Mapping[str, Any] = (),
        *,
        weights_dir: str | None = None,
        registry=None,
        precision: str | None = None,
        backend: str | None = None,
    ) -> "Pipeline":
        """Build from a pipeline file (path or bundled name like "luxtts"), a mapping, or an
        already validated `PipelineConfig`.

        `precision` (auto, fp32, bf16, int8) and `backend` (torch, onnx) choose the acoustic
        model's arithmetic as the commands' flags do (voxpipe.core.precision.resolve, applied after
        `overrides`); None takes the config as written (the bundled configs: the fp32 parity path).
        """
        if isinstance(source, PipelineConfig):
            if precision is not None or backend is not None:
                raise ConfigError(f"{source.source}: precision/backend need the config's source (a path, a "
                                  "bundled name or a mapping), not an already validated PipelineConfig")
            config = source
        else:
            config = build_config(source, overrides, registry=registry, weights_dir=weights_dir)
            if precision is not None or backend is not None:
                extra, _ = resolve(config, precision, backend)
                if extra:
                    merged = ({**overrides, **dict(item.split("=", 1) for item in extra)}
                              if isinstance(overrides, Mapping) else [*overrides, *extra])
                    config = build_config(source, merged, registry=registry, weights_dir=weights_dir)
        built = {kind: component.build(f"{config.source}: {kind}") for kind, component in config.components.items()}
        if FAMILY_KIND not in built:
            raise ConfigError(f"{config.source}: a pipeline needs a {FAMILY_KIND}")
        return cls(**built, settings=config.settings, config=config)

    @property
    def sample_rate(self) -> int:
        """Hz of the audio this pipeline produces."""
        return self.settings.sample_rate or self.synthesizer.sample_rate

    @property
    def num_channels(self) -> int:
        return self.synthesizer.num_channels

    # ---- options and voices ----------------------------------------------------------------
    def options(self, **values):
        """The family's validated per-call options (ConfigError for unknown or bad ones)."""
        return self.synthesizer.options(values)

    def load_voice(self, voice: Voice | str | Path | None):
        """What the family synthesizes with, from a `Voice`, a `.voice` file path, a built-in
        voice name or None (the family's default); checked now, before any heavy work."""
        if isinstance(voice, Path) or (isinstance(voice, str) and voice.endswith(".voice")):
            voice = Voice.load(voice)
        return self.synthesizer.resolve_voice(voice)

    def check_voice(self, voice: Voice) -> None:
        """Raise ConfigError (or VoiceFileError) if `voice` cannot be used with this pipeline."""
        self.synthesizer.resolve_voice(voice)

    def encode_prompt(
        self,
        audio: Audio | str | Path | Sequence[Audio | str | Path],
        text: str | Sequence[str] | None = None,
    ) -> Voice:
        """A voice from reference audio (families that clone voices).

        audio: an `Audio` or a sound-file path; for two-speaker dialog models also a pair
        (speaker 1, speaker 2). text: the transcript(s); transcribed with the pipeline's
        transcriber when None.
        """
        if not self.synthesizer.clones_voices:
            raise ConfigError(f"synthesizer {self.synthesizer.name!r} does not clone voices from a prompt; choose one "
                              f"of its voices instead: {', '.join(self.synthesizer.voices()) or '(none)'}")
        sources = list(audio) if isinstance(audio, (list, tuple)) else [audio]
        texts = None if text is None else ([text] if isinstance(text, str) else list(text))
        return self.synthesizer.encode_voice(sources, texts, tokenizer=self.tokenizer, transcriber=self.transcriber)

    # ---- text ----------------------------------------------------------------------------
    def check_text(self, texts: Sequence[str]) -> None:
        """TextError for empty text; ConfigError for text over `settings.max_text_chars`."""
        if not texts or any(not isinstance(t, str) or not t.strip() for t in texts):
            raise TextError("nothing to synthesize: the text is empty")
        total = sum(len(t) for t in texts)
        if total > self.settings.max_text_chars:
            raise ConfigError(f"the text has {total} characters; one call takes at most {self.settings.max_text_chars} "
                              "(settings.max_text_chars); split it, or raise the limit")

    def prepare_text(self, text: str) -> str:
        if self.normalizer is not None:
            text = self.normalizer.normalize(text)
        return self.synthesizer.prepare_text(text)

    def chunk_text(self, text: str, max_tokens: int) -> list[TextSpan]:
        """Split prepared text into spans of at most `max_tokens` tokens (when possible)."""
        text = text.strip()
        if self.chunker is None:
            return [TextSpan(text, 0, len(text))]
        return self.chunker.split(text, max_tokens, measure=lambda piece: len(self.tokenizer.tokenize(piece)))

    def plan_chunks(self, texts: Sequence[str], max_tokens: int) -> list[Chunk]:
        """Normalize, chunk under `max_tokens` and tokenize every text.

        A chunker that cuts token sequences (`split_tokens`, ZipVoice's rule) gets the tokens of
        the whole text, as the official script does, so every chunk holds exactly the tokens the
        whole text has there; its chunks carry no character span (`span` None). Other chunkers
        cut the text and each piece is tokenized (spans kept, e.g. for streaming).
        """
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

    # ---- generation ----------------------------------------------------------------------
    def synthesize(
        self,
        text: str | Sequence[str],
        voice: Voice | str | None = None,
        *,
        seed: int | None = None,
        noise: torch.Tensor | Sequence[torch.Tensor] | None = None,
        progress: bool = False,
        **options,
    ) -> Audio | list[Audio]:
        """Text (or many texts, generated in shared batches) -> Audio.

        voice: a `Voice` (from `encode_prompt` or `Voice.load`), a `.voice` path, a built-in voice
        name, or None for the family's default. seed: makes the result deterministic (default:
        `settings.seed`, else random). options: the family's per-call options (e.g. speed,
        num_steps); an option the family does not take is an error. noise: explicit initial
        states, one tensor per batch (parity testing of stochastic families).
        """
        texts = [text] if isinstance(text, str) else list(text)
        self.check_text(texts)
        family = self.synthesizer
        resolved_options = family.options(options)
        resolved_voice = self.load_voice(voice)
        seed = self.settings.seed if seed is None else seed
        if seed is None:
            seed = int(torch.randint(0, 2**62, ()))
        chunks = self.plan_chunks(texts, family.chunk_budget(resolved_voice, resolved_options))
        if not chunks:
            raise TextError(f"no speakable tokens in {_excerpt(texts)}")
        batches = family.plan_batches([len(c.token_ids) for c in chunks], resolved_voice, resolved_options)
        if noise is not None:
            noise = [noise] if isinstance(noise, torch.Tensor) else list(noise)
            if len(noise) != len(batches):
                raise ConfigError(f"{len(noise)} noise tensors given for {len(batches)} batches")
        waves: dict[int, torch.Tensor] = {}
        with torch.inference_mode():
            for number, batch in enumerate(_progress(batches, progress, "batches")):
                made = family.synthesize(
                    [chunks[i].token_ids for i in batch], resolved_voice, resolved_options,
                    [chunk_seed(seed, i) for i in batch], None if noise is None else noise[number],
                )
                waves.update(zip(batch, made))
        audios = [self.assemble([waves[i] for i, c in enumerate(chunks) if c.text_index == t]) for t in range(len(texts))]
        return audios[0] if isinstance(text, str) else audios

    def assemble(self, waves: list[torch.Tensor]) -> Audio:
        """(C, N_i) chunk waveforms in text order -> one Audio: cross-fade, trim edge silence,
        resample to `settings.sample_rate` if set."""
        rate = self.synthesizer.sample_rate
        wave = crossfade_concat(waves, int(self.settings.crossfade_seconds * rate))
        if self.settings.trim_silence:
            from voxpipe.dsp.silence import trim_edge_silence

            wave = trim_edge_silence(wave, rate)
        if self.sample_rate != rate:
            wave = resample_output(wave, rate, self.sample_rate)
        return Audio(wave[0] if wave.shape[0] == 1 else wave, self.sample_rate)


def resample_output(wave: torch.Tensor, rate: int, new_rate: int) -> torch.Tensor:
    """(C, N) at `rate` -> (C, N') at `new_rate` with soxr (high quality)."""
    import numpy as np
    import soxr

    resampled = soxr.resample(wave.T.numpy().astype(np.float32), rate, new_rate, quality="HQ")
    return torch.from_numpy(np.ascontiguousarray(resampled.reshape(-1, wave.shape[0]).T))


def chunk_seed(seed: int, chunk_index: int) -> int:
    """The noise seed of the chunk at `chunk_index` of a request seeded with `seed`: the same
    chunk gets the same noise whether it is generated alone, batched, or streamed."""
    return (int(seed) * 1_000_003 + chunk_index) % (2**63 - 1)


def _excerpt(texts: Sequence[str]) -> str:
    text = " / ".join(texts)
    return repr(text if len(text) <= 80 else text[:77] + "...")


def _progress(items, enabled: bool, unit: str):
    if not enabled or len(items) <= 1:
        return items
    from tqdm import tqdm

    return tqdm(items, unit=unit, desc="synthesizing")
