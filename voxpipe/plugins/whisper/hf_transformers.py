"""`transformers-whisper`: what LuxTTS runs on a prompt without transcript,
`transformers.pipeline("automatic-speech-recognition", model="openai/whisper-base")` on the
prompt loaded at 16 kHz, `return_timestamps=True`. transformers is imported on first use and
the model comes from the Hugging Face Hub (or its cache).
"""

from __future__ import annotations

from pydantic import Field

from voxpipe.core.audio import Audio
from voxpipe.core.component import Params
from voxpipe.core.errors import WeightsError
from voxpipe.core.transcriber import PromptTranscriber
from voxpipe.plugins.whisper.common import PROMPT_TEXT_HINT, WHISPER_SAMPLE_RATE, require, whisper_input


class TransformersWhisperParams(Params):
    model: str = Field("openai/whisper-base", description="Hub id or local directory of a transformers Whisper model")
    device: str = Field("cpu", description="torch device for the pipeline (cpu, cuda, cuda:0, ...)")
    language: str | None = Field(None, description="spoken language; None lets Whisper detect it (as LuxTTS)")


class TransformersWhisperTranscriber(PromptTranscriber):
    """Whisper through a transformers ASR pipeline (LuxTTS's transcriber); loaded on first use."""

    name = "transformers-whisper"
    description = "Whisper via transformers (openai/whisper-base as LuxTTS); downloads the model"
    Params = TransformersWhisperParams

    def __init__(self, model: str, device: str, language: str | None) -> None:
        require("transformers", self.name, "transformers")
        self.model_name = model
        self.device = device
        self.language = language
        self._pipeline = None

    @property
    def pipeline(self):
        if self._pipeline is None:
            from transformers import pipeline

            try:
                self._pipeline = pipeline("automatic-speech-recognition", model=self.model_name, device=self.device)
            except Exception as error:  # no network / not cached / not a Whisper model
                raise WeightsError(
                    f"cannot load the transformers Whisper model {self.model_name!r}: {type(error).__name__}: {error}. "
                    f"It is downloaded from the Hugging Face Hub unless cached; use the offline 'faster-whisper' "
                    f"transcriber, {PROMPT_TEXT_HINT}"
                ) from None
        return self._pipeline

    def transcribe(self, audio: Audio) -> str:
        """Audio (any rate) -> transcript (16 kHz mono input, timestamps on for long prompts)."""
        inputs = {"raw": whisper_input(audio), "sampling_rate": WHISPER_SAMPLE_RATE}
        kwargs = {"generate_kwargs": {"language": self.language}} if self.language else {}
        result = self.pipeline(inputs, return_timestamps=True, **kwargs)
        return str(result["text"]).strip()

    def describe(self) -> dict:
        return {"model": self.model_name, "device": self.device}
