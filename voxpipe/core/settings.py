"""Pipeline-level settings: the pre/post-processing around the components (`settings:` in YAML)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from voxpipe.core.component import Params


class PipelineSettings(Params):
    """Everything between the components. Defaults are ZipVoice's; configs set LuxTTS's."""

    # --- prompt ---------------------------------------------------------------------------
    prompt_target_rms: float = Field(0.1, gt=0, description="a quieter prompt is raised to this RMS")
    prompt_max_seconds: float | None = Field(None, gt=0, description="prompt audio is cut to this length")
    prompt_remove_silence: bool = Field(False, description="ZipVoice's silence removal on the prompt")
    prompt_resampler: Literal["soxr", "sinc"] = Field(
        "sinc", description="soxr = librosa.load (LuxTTS), sinc = torchaudio Resample (ZipVoice)"
    )
    add_final_punctuation: bool = Field(True, description="append '.' to transcript/text lacking final punctuation")
    # --- generation -----------------------------------------------------------------------
    speed: float = Field(1.0, gt=0, description="user speed; > 1 is faster")
    speed_factor: float = Field(1.0, gt=0, description="fixed multiplier on speed (LuxTTS uses 1.3)")
    seed: int | None = Field(None, description="noise seed when none is given per call")
    max_chunk_seconds: float = Field(25.0, gt=0, description="prompt + chunk duration budget for long text")
    batch_max_seconds: float = Field(100.0, gt=0, description="chunks are batched up to this many seconds of audio (prompt included)")
    # --- output ---------------------------------------------------------------------------
    output_target_rms: float = Field(0.1, gt=0, description="output scaled by prompt_rms / this if the prompt was quieter")
    crossfade_seconds: float = Field(0.1, ge=0, description="linear cross-fade between chunks")
    trim_silence: bool = Field(True, description="shorten leading/trailing silence of the result")
    # --- weights --------------------------------------------------------------------------
    weights_dir: str | None = Field(None, description="local copy of the official layouts (hf:// mapped under it)")
