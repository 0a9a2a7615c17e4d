"""Prompt transcriber interface: speech -> text, used when a prompt comes without transcript."""

from __future__ import annotations

from voxpipe.core.audio import Audio
from voxpipe.core.component import Component


class PromptTranscriber(Component):
    kind = "transcriber"

    def transcribe(self, audio: Audio) -> str:
        """Audio (any rate; implementations resample) -> transcript."""
        raise NotImplementedError
