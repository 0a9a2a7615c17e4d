"""Streaming synthesis: text pushed piece by piece, PCM16 `AudioChunk`s out while it arrives.

`StreamingSession(pipeline, voice, seed=...)` (see `session.py`); the chunking policy and its
whole-text equivalent `sentence_pipeline(pipeline)` are in `chunking.py`; the incremental
cross-fade and edge-silence trim in `assembly.py`.
"""

from voxpipe.streaming.chunking import SentenceChunker, TextPlanner, sentence_pipeline
from voxpipe.streaming.session import StreamingSession, pipeline_lock, stream_text

__all__ = ["SentenceChunker", "StreamingSession", "TextPlanner", "pipeline_lock", "sentence_pipeline", "stream_text"]
