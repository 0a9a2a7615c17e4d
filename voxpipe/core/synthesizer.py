"""The model-family interface: token sequences + a voice -> waveforms.

A `Synthesizer` is one model family (flow matching, Kokoro, Piper, ...). The core pipeline
normalizes, chunks and tokenizes the text and hands the family batches of token id sequences;
the family owns everything between ids and audio (its sub-components are ordinary registered
components, declared as nested YAML sections with `nested()` fields in its `Params`) and
returns one waveform per sequence. The core then cross-fades, trims and wraps them as `Audio`.

What differs between families is declared here, never discovered by the core with
`if family == ...`:

- `Options`: the per-call options the family takes (pydantic, `extra="forbid"`), validated
  when a call starts. An option the family does not support is an error naming the ones it
  takes. Options left as `None` mean "as configured" (the sub-component's own `Params`).
- `clones_voices`: `encode_voice()` builds a voice from reference audio.
- `voices()`: names of built-in voices (a family may accept more, e.g. blends).
- `streams`: chunks can be synthesized one by one as text arrives (streaming sessions).
- `num_channels`: 2 for stereo (dialog) families.
- `chunk_budget()`: how many tokens one chunk may hold for a given voice and options.
- `plan_batches()`: which chunks are generated together.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar, Sequence

import torch
from pydantic import BaseModel, ConfigDict, ValidationError

from voxpipe.core.audio import Audio
from voxpipe.core.component import Component
from voxpipe.core.errors import ConfigError
from voxpipe.core.voice import Voice


class Options(BaseModel):
    """Base of every family's per-call options: unknown options are errors."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class Synthesizer(Component):
    """A model family. Attributes set by implementations:

    sample_rate:   Hz of the waveforms `synthesize` returns.
    num_channels:  channels of those waveforms (2 for stereo dialog models).
    vocab:         token -> id the family was trained with, or None (checked against the
                   pipeline's tokenizer when the pipeline is built).
    """

    kind = "synthesizer"
    Options: ClassVar[type[Options]] = Options
    clones_voices: ClassVar[bool] = False
    streams: ClassVar[bool] = True
    needs_tokenizer: ClassVar[bool] = True  # False when default_tokenizer() provides one
    # The sub-component whose Params carry `--precision` (dtype / precision / kernels): see
    # voxpipe/core/precision.py. A family without it runs float32 as built.
    precision_component: ClassVar[str] = "acoustic_model"
    sample_rate: int = 0
    num_channels: int = 1
    vocab: dict[str, int] | None = None

    # ---- options -------------------------------------------------------------------------
    @classmethod
    def parse_options(cls, values: dict[str, Any] | Options | None = None) -> Options:
        """Validate per-call options (a mapping, `None` values dropped) into `Options`, by the
        class alone: usable before the family is built (no weights loaded)."""
        if isinstance(values, cls.Options):
            return values
        given = {key: value for key, value in dict(values or {}).items() if value is not None}
        try:
            return cls.Options.model_validate(given)
        except ValidationError as error:
            raise ConfigError(options_error(cls, error)) from None

    def options(self, values: dict[str, Any] | Options | None = None) -> Options:
        """`parse_options`, then the limits of this instance's configuration (families override
        this to check e.g. speed against their configured range)."""
        return self.parse_options(values)

    # ---- voices --------------------------------------------------------------------------
    def voices(self) -> list[str]:
        """Names of the family's built-in voices ([] when it has none)."""
        return []

    def resolve_voice(self, voice: Voice | str | None) -> Any:
        """What `synthesize` takes as its voice: from a `Voice` (checked to be this family's and
        config's), a built-in voice name, or None (the default voice). Raise ConfigError naming
        what is accepted otherwise. The pipeline calls it once per call, on what the user gave
        (never on its own result), before any heavy work."""
        raise NotImplementedError

    @classmethod
    def configured_to_clone(cls, params: Any) -> bool:
        """Whether a configuration (the family's validated `Params`, before any weights load)
        makes voices from reference audio: `clones_voices`, unless a family decides per
        configuration (e.g. StyleTTS2 only with a style encoder)."""
        return cls.clones_voices

    def encode_voice(self, sources: Sequence[Audio | str | Path], transcripts: Sequence[str] | None, *,
                     tokenizer=None, transcriber=None) -> Voice:
        """A voice from reference audio (families with `clones_voices`): sources are `Audio`s or
        sound-file paths (the family loads them at its own rate, by its own rules); transcripts
        one per source, or None to use `transcriber` (the pipeline's, may be None)."""
        raise ConfigError(f"synthesizer {self.name!r} does not make voices from reference audio; "
                          f"its voices: {', '.join(self.voices()) or '(none)'}")

    def voice_fingerprint(self) -> dict[str, Any]:
        """What a voice file must have been made with to be usable here (JSON values)."""
        return {}

    def new_voice(self, tensors: dict[str, torch.Tensor], metadata: dict[str, Any]) -> Voice:
        """A `Voice` of this family, stamped with its name and fingerprint."""
        return Voice(family=self.name, tensors=tensors, metadata=metadata,
                     fingerprint=self.voice_fingerprint(), sample_rate=self.sample_rate)

    def check_voice(self, voice: Voice) -> None:
        """Refuse a voice made for another family or an incompatible configuration."""
        voice.check_compatible(self.name, self.voice_fingerprint())

    # ---- text ----------------------------------------------------------------------------
    def default_tokenizer(self):
        """The tokenizer to use when the pipeline names none (e.g. one read from the voice's
        own files), or None when the pipeline must name one."""
        return None

    def prepare_text(self, text: str) -> str:
        """Family text rules applied after normalization (e.g. ZipVoice's final punctuation)."""
        return text

    def chunk_budget(self, voice: Any, options: Options) -> int:
        """Maximum tokens per chunk for this voice and these options."""
        return 400

    def plan_batches(self, lengths: Sequence[int], voice: Any, options: Options) -> list[list[int]]:
        """Indices of the chunks generated together (default: one chunk at a time)."""
        return [[index] for index in range(len(lengths))]

    # ---- generation ----------------------------------------------------------------------
    def synthesize(self, token_ids: Sequence[Sequence[int]], voice: Any, options: Options,
                   seeds: Sequence[int], noise: torch.Tensor | None = None) -> list[torch.Tensor]:
        """One batch of token id sequences -> one (C, N_i) float32 waveform per sequence at
        `sample_rate`, in [-1, 1]. seeds: one per sequence; a sequence's result depends only on
        its own seed, never on what it is batched with. noise: optional explicit initial state
        of stochastic families (parity tests)."""
        raise NotImplementedError

    def describe(self) -> dict:
        return {"sample_rate": self.sample_rate, "num_channels": self.num_channels,
                "clones_voices": self.clones_voices, "streams": self.streams,
                "options": sorted(self.Options.model_fields)}


def options_error(family: type[Synthesizer], error: ValidationError) -> str:
    import difflib

    supported = sorted(family.Options.model_fields)
    lines = []
    for item in error.errors():
        key = ".".join(str(part) for part in item["loc"])
        if item["type"] == "extra_forbidden":
            close = difflib.get_close_matches(key, supported, n=2, cutoff=0.5)
            hint = f"; did you mean {' or '.join(close)}?" if close else ""
            lines.append(f"synthesizer {family.name!r} has no option {key!r}{hint} "
                         f"It takes: {', '.join(supported) or '(no options)'}")
        else:
            value = repr(item.get("input"))
            value = value if len(value) <= 60 else value[:57] + "..."
            lines.append(f"option {key}: {item['msg']}; got {value} (synthesizer {family.name!r})")
    return "\n".join(lines)
