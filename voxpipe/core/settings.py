"""Pipeline-level settings (`settings:` in YAML): what the core does around the model family.

Family rules (prompt preparation, text budget, batching, loudness) are the family's own
parameters, in its `synthesizer:` section.
"""

from __future__ import annotations

from pydantic import Field

from voxpipe.core.component import Params


class PipelineSettings(Params):
    """Assembly of the family's chunks into one result, and the limits of one call."""

    seed: int | None = Field(None, description="noise seed when a call gives none (default: random)")
    crossfade_seconds: float = Field(0.1, ge=0, le=10, description="linear cross-fade between chunks")
    trim_silence: bool = Field(True, description="shorten leading/trailing silence of the result")
    first_chunk_max_words: int | None = Field(
        None, ge=1, description="streaming: speak at most this many words of the first sentence first (cut at a "
                                "clause mark if one fits) for sooner first audio; None = whole sentences")
    sample_rate: int | None = Field(None, ge=1000, le=384000,
                                    description="resample the output to this rate (soxr); None = the family's rate")
    max_text_chars: int = Field(100_000, ge=1, description="longest text one call accepts (characters)")
    weights_dir: str | None = Field(None, description="local copy of the official layouts (hf:// mapped under it)")
    retain_freed_memory_mb: int = Field(
        256, ge=0, le=2047,
        description="glibc: blocks below this many MB come from the heap, and up to this much freed memory is kept "
                    "for the next call instead of being unmapped (fewer page faults, voxpipe/core/allocator.py); "
                    "process-wide; 0 = leave malloc as it is")
