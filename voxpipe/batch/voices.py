"""The `voice` column: a `.voice` file (voxpipe voice create) or a built-in voice name.

The one place that knows how a manifest's voice becomes what `Pipeline.synthesize` takes, and how
to tell up front whether the pipeline accepts it (so an unknown voice is reported with its line
number before any synthesis).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from pathlib import Path

VOICE_SUFFIX = ".voice"


def is_voice_file(spec: str) -> bool:
    """A spec naming a file (ends in .voice or contains a path separator), not a built-in name."""
    return spec.lower().endswith(VOICE_SUFFIX) or "/" in spec or os.sep in spec


def normalize_voice(spec: str | None, base_dir: Path) -> str | None:
    """Voice files become absolute paths (relative ones are relative to `base_dir`, the
    manifest's directory); names stay as they are."""
    if spec is None or not is_voice_file(spec):
        return spec
    path = Path(spec).expanduser()
    return str(path if path.is_absolute() else (base_dir / path).resolve())


class VoiceCache:
    """Reads each voice file once per worker."""

    def __init__(self) -> None:
        self._loaded: dict[str, object] = {}

    def get(self, spec: str | None):
        """What `synthesize` takes as `voice`: a loaded `Voice`, a name, or None (the default)."""
        if spec is None or not is_voice_file(spec):
            return spec
        if spec not in self._loaded:
            from voxpipe.core.voice import Voice

            self._loaded[spec] = Voice.load(spec)
        return self._loaded[spec]


def voice_problems(specs: Iterable[str], family, load_pipeline: Callable[[], object]) -> dict[str, str]:
    """{spec: why the pipeline cannot use it} for normalized voice specs.

    family: the pipeline's synthesizer class (`options.family_class`). load_pipeline: builds the
    pipeline; called only when built-in voice names must be checked (a family that clones voices
    and has no built-in ones rejects names without loading anything). Voice files are read and
    their family checked (their fit to this exact configuration is checked per item)."""
    from voxpipe.core.errors import VoxpipeError
    from voxpipe.core.synthesizer import Synthesizer
    from voxpipe.core.voice import Voice

    specs = sorted(set(specs))
    problems: dict[str, str] = {}
    for spec in (spec for spec in specs if is_voice_file(spec)):
        try:  # any family may take voice files of its own (e.g. a Kokoro style pack)
            Voice.load(spec).check_compatible(family.name, {}, source=spec)
        except VoxpipeError as error:
            problems[spec] = f"unknown voice: {error}"
    names = [spec for spec in specs if not is_voice_file(spec)]
    if names and family.clones_voices and family.voices is Synthesizer.voices:
        for spec in names:
            problems[spec] = (f"unknown voice {spec!r}: synthesizer {family.name!r} clones voices; give a .voice "
                              "file (voxpipe voice create), relative to the manifest or absolute")
    elif names:
        pipeline = load_pipeline()
        for spec in names:
            try:
                pipeline.load_voice(spec)
            except VoxpipeError as error:
                problems[spec] = f"unknown voice: {error}"
    return problems
