"""Synthesize (or read) every item of a test set with every run, and measure it.

A run is either a pipeline (config + overrides) whose output is synthesized and timed, or a
directory of existing audio (`<dir>/<item id>.<wav|flac|ogg|mp3>`) made by anything else, e.g.
another TTS system or human recordings. All inputs are checked before the first model loads.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from voxpipe.core.audio import Audio
from voxpipe.core.errors import AudioError, ConfigError
from voxpipe.eval.interfaces import (
    QualityPredictor,
    SpeakerEncoder,
    SpeechRecognizer,
    cosine_similarity,
)
from voxpipe.eval.testset import TestItem, TestSet

AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".mp3")
WARM_UP_TEXT = "This sentence warms the models up."
DEFAULT_INSTRUMENTS = {"recognizer": "whisper", "speaker_encoder": "resemblyzer", "quality": "dnsmos"}

ITEM_KEYS = (
    "id", "category", "text", "audio", "duration_s", "synthesis_s", "rtf",
    "hypothesis", "reference_normalized", "hypothesis_normalized",
    "word_errors", "reference_words", "wer", "char_errors", "reference_chars", "cer",
    "speaker_similarity", "quality",
)
"""Keys of every item record, always present (None when not measured), in this order."""


@dataclass
class Instruments:
    """The measuring components; None skips that metric."""

    recognizer: SpeechRecognizer | None = None
    speaker_encoder: SpeakerEncoder | None = None
    quality: QualityPredictor | None = None

    @property
    def quality_names(self) -> tuple[str, ...]:
        return tuple(self.quality.metrics) if self.quality is not None else ()

    def describe(self) -> dict[str, Any]:
        out = {}
        for kind in ("recognizer", "speaker_encoder", "quality"):
            component = getattr(self, kind)
            out[kind] = None if component is None else {"type": component.name, **component.describe()}
        if self.quality is not None:
            out["quality"]["metrics"] = list(self.quality.metrics)
        return out


def build_instruments(names: Mapping[str, str | None] | None = None,
                      options: Mapping[str, Mapping[str, Any]] | None = None, registry=None) -> Instruments:
    """Components from the registry by kind: `names` {kind: name or None to skip} (default
    `DEFAULT_INSTRUMENTS`), `options` {kind: params} validated by each component's Params."""
    from pydantic import ValidationError

    from voxpipe.registry import get_registry

    registry = registry or get_registry()
    names = {**DEFAULT_INSTRUMENTS, **(names or {})}
    options = dict(options or {})
    unknown = sorted(set(names) - set(DEFAULT_INSTRUMENTS)) + sorted(set(options) - set(DEFAULT_INSTRUMENTS))
    if unknown:
        raise ConfigError(f"unknown instrument kind(s) {', '.join(unknown)}; expected {', '.join(DEFAULT_INSTRUMENTS)}")
    built = {}
    for kind, name in names.items():
        if name is None:
            if options.get(kind):
                raise ConfigError(f"options given for {kind} but the {kind} is switched off")
            built[kind] = None
            continue
        info = registry.get(kind, name)
        try:
            params = info.params_model.model_validate(dict(options.get(kind, {})))
        except ValidationError as error:
            problems = "; ".join(f"{kind}.{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in error.errors())
            raise ConfigError(f"{kind} {name!r}: {problems}") from None
        built[kind] = info.cls.from_params(params)
    return Instruments(**built)


@dataclass
class RunSpec:
    """One column of the comparison: a pipeline, or a directory of existing audio."""

    label: str
    config: str | Path | Mapping[str, Any] | None = None
    overrides: list[str] = field(default_factory=list)
    audio_dir: Path | None = None

    def describe(self) -> dict[str, Any]:
        config = self.config if isinstance(self.config, (str, type(None))) else (
            str(self.config) if isinstance(self.config, Path) else "(mapping)")
        return {"label": self.label, "config": config, "overrides": list(self.overrides),
                "audio_dir": str(self.audio_dir) if self.audio_dir else None}


@dataclass
class VoiceChoice:
    """Where voices come from when a test item names none."""

    voice: str | None = None
    """Built-in voice name or .voice file for every item."""
    prompt: Path | None = None
    """Prompt audio for cloning pipelines when an item has no reference."""
    prompt_text: str | None = None


Progress = Callable[[str], None]


def _stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def evaluate(test_set: TestSet, runs: list[RunSpec], instruments: Instruments, *, seed: int = 0,
             voices: VoiceChoice | None = None, weights_dir: str | None = None, audio_out: Path | None = None,
             progress: Progress | None = _stderr) -> dict[str, Any]:
    """Measure every item of `test_set` in every run -> the report document (see `report`).

    audio_out: keep each run's audio as `<audio_out>/<label>/<id>.wav`.
    """
    from voxpipe.eval.report import build_document

    if not runs:
        raise ConfigError("nothing to evaluate: give at least one pipeline (--config) or audio directory (--audio-dir)")
    voices = voices or VoiceChoice()
    say = progress or (lambda message: None)
    _check_inputs(test_set, runs, instruments, voices)
    references = _ReferenceEmbeddings(instruments.speaker_encoder)
    results = []
    for run in runs:
        source = _audio_source(run, test_set, voices, seed, weights_dir)
        items = []
        for number, item in enumerate(test_set.items, 1):
            audio, synthesis_s = source(item)
            saved = None
            if audio_out is not None:
                directory = Path(audio_out) / _safe_name(run.label)
                directory.mkdir(parents=True, exist_ok=True)
                saved = str(audio.save(directory / f"{_safe_name(item.id)}.wav"))
            record = measure(item, audio, instruments, synthesis_s=synthesis_s, references=references)
            record["audio"] = saved
            items.append(record)
            wer = "-" if record["wer"] is None else f"{100 * record['wer']:.0f}%"
            say(f"[{run.label}] {number}/{len(test_set.items)} {item.id}: WER {wer}, heard {record['hypothesis']!r}")
        results.append((run, getattr(source, "sample_rate", None), items))
    return build_document(test_set, results, instruments, seed=seed)


def _safe_name(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name) or "_"


def measure(item: TestItem, audio: Audio, instruments: Instruments, *, synthesis_s: float | None = None,
            references: _ReferenceEmbeddings | None = None) -> dict[str, Any]:
    """One item record (keys `ITEM_KEYS`) for `audio`, the rendering of `item.text`."""
    from voxpipe.audio.io import check_audio

    check_audio(audio, source=f"the audio of item {item.id!r}", min_seconds=0.0)
    record: dict[str, Any] = dict.fromkeys(ITEM_KEYS)
    record.update(id=item.id, category=item.category, text=item.text, duration_s=audio.duration,
                  synthesis_s=synthesis_s)
    if synthesis_s is not None:
        record["rtf"] = synthesis_s / audio.duration
    if instruments.recognizer is not None:
        from voxpipe.eval.text import char_edits, normalize, word_edits

        hypothesis = instruments.recognizer.recognize(audio)
        reference, heard = normalize(item.text), normalize(hypothesis)
        words, chars = word_edits(reference, heard), char_edits(reference, heard)
        record.update(hypothesis=hypothesis, reference_normalized=reference, hypothesis_normalized=heard,
                      word_errors=words.errors, reference_words=words.reference_length, wer=words.rate,
                      char_errors=chars.errors, reference_chars=chars.reference_length, cer=chars.rate)
    if instruments.speaker_encoder is not None and item.reference is not None:
        references = references or _ReferenceEmbeddings(instruments.speaker_encoder)
        record["speaker_similarity"] = cosine_similarity(
            instruments.speaker_encoder.embed(audio), references.get(item.reference))
    if instruments.quality is not None:
        scores = instruments.quality.score(audio)
        if set(scores) != set(instruments.quality.metrics):
            raise ConfigError(f"quality {instruments.quality.name!r} returned {sorted(scores)}, "
                              f"declared {list(instruments.quality.metrics)}")
        record["quality"] = {name: float(scores[name]) for name in instruments.quality.metrics}
    return record


class _ReferenceEmbeddings:
    """Speaker embeddings of reference files, computed once per file."""

    def __init__(self, encoder: SpeakerEncoder | None) -> None:
        self.encoder = encoder
        self._cache: dict[Path, Any] = {}

    def get(self, path: Path):
        if path not in self._cache:
            from voxpipe.audio.io import read_audio

            self._cache[path] = self.encoder.embed(read_audio(path))
        return self._cache[path]


# ---- checks before any model loads ----------------------------------------------------------------
def _check_inputs(test_set: TestSet, runs: list[RunSpec], instruments: Instruments, voices: VoiceChoice) -> None:
    from voxpipe.audio.io import check_audio, read_audio

    labels = [run.label for run in runs]
    duplicates = sorted({label for label in labels if labels.count(label) > 1})
    if duplicates:
        raise ConfigError(f"run labels must be unique; repeated: {', '.join(duplicates)} (use --label)")
    if instruments.recognizer is not None:
        from voxpipe.eval.text import normalize

        for item in test_set.items:
            if not normalize(item.text):
                raise ConfigError(f"test set {test_set.source}: item {item.id!r}: text {item.text!r} has no "
                                  "words left after normalization, so WER is undefined")
    for path in sorted({item.reference for item in test_set.items if item.reference is not None}):
        check_audio(read_audio(path), source=f"reference audio {path}")
    if voices.prompt is not None:
        check_audio(read_audio(voices.prompt), source=f"prompt audio {voices.prompt}")
    for run in runs:
        if run.audio_dir is None:
            continue
        if not Path(run.audio_dir).is_dir():
            raise AudioError(f"--audio-dir {run.audio_dir}: not a directory")
        missing = [item.id for item in test_set.items if _find_audio(run.audio_dir, item.id) is None]
        if missing:
            shown = ", ".join(missing[:5]) + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
            raise AudioError(f"--audio-dir {run.audio_dir}: no audio for item(s) {shown}; expected "
                             f"<id>{' or <id>'.join(AUDIO_SUFFIXES)}")
        for item in test_set.items:
            read_audio(_find_audio(run.audio_dir, item.id))  # AudioError naming an undecodable file


def _find_audio(directory: Path, item_id: str) -> Path | None:
    for suffix in AUDIO_SUFFIXES:
        for name in (item_id, _safe_name(item_id)):
            path = Path(directory) / f"{name}{suffix}"
            if path.is_file():
                return path
    return None


# ---- where audio comes from -------------------------------------------------------------------------
def _audio_source(run: RunSpec, test_set: TestSet, voices: VoiceChoice, seed: int, weights_dir: str | None):
    """A callable item -> (Audio, synthesis seconds or None)."""
    if run.audio_dir is not None:
        from voxpipe.audio.io import read_audio

        def read(item: TestItem):
            return read_audio(_find_audio(run.audio_dir, item.id)), None

        return read
    return _Synthesizer(run, voices, seed, weights_dir)


class _Synthesizer:
    """Synthesizes items with one pipeline; prompts are encoded once per reference."""

    def __init__(self, run: RunSpec, voices: VoiceChoice, seed: int, weights_dir: str | None) -> None:
        from voxpipe.core.pipeline import Pipeline

        self.run = run
        self.voices = voices
        self.seed = seed
        self.pipeline = Pipeline.from_config(run.config, run.overrides, weights_dir=weights_dir)
        self.sample_rate = self.pipeline.sample_rate
        self._prompts: dict[tuple[str, str | None], Any] = {}
        self._warmed_up = False

    def voice_for(self, item: TestItem):
        from voxpipe.core.voice import Voice

        named = item.voice or self.voices.voice
        if named:
            return Voice.load(named) if named.endswith(".voice") else named
        if not clones_voice(self.pipeline):
            return None
        if item.reference is not None:
            prompt, text = item.reference, item.reference_text
        elif self.voices.prompt is not None:
            prompt, text = self.voices.prompt, self.voices.prompt_text
        else:
            raise ConfigError(f"run {self.run.label!r} clones a voice but item {item.id!r} has no reference audio: "
                              "give --prompt ref.wav --prompt-text '...', --voice x.voice, or use a test set with "
                              "reference clips (--test-set arctic)")
        key = (str(prompt), text)
        if key not in self._prompts:
            self._prompts[key] = self.pipeline.encode_prompt(str(prompt), text)
        return self._prompts[key]

    def __call__(self, item: TestItem) -> tuple[Audio, float]:
        voice = self.voice_for(item)
        if not self._warmed_up:  # first-call costs (lazy model loads, allocator) stay out of the RTF
            self.pipeline.synthesize(WARM_UP_TEXT, voice, seed=self.seed)
            self._warmed_up = True
        started = time.perf_counter()
        audio = self.pipeline.synthesize(item.text, voice, seed=self.seed)
        return audio, time.perf_counter() - started


def clones_voice(pipeline) -> bool:
    """True when the pipeline speaks in the voice of a prompt (needs a Voice), False when it has
    built-in voices: the family's `clones_voices` declaration."""
    return bool(pipeline.synthesizer.clones_voices)
