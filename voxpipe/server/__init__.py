"""OpenAI-compatible HTTP speech server (`voxpipe serve`): FastAPI app over a `Pipeline`.

Needs the `serve` extra (fastapi, uvicorn). See docs/streaming.md.
"""

from voxpipe.server.app import ServerSettings, SpeechRequest, create_app
from voxpipe.server.voices import UnknownVoice, VoiceCatalog
from voxpipe.server.wav import wav_header

__all__ = ["ServerSettings", "SpeechRequest", "UnknownVoice", "VoiceCatalog", "create_app", "wav_header"]
