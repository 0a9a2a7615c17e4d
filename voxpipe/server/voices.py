"""The voices a server offers: `.voice` files of a directory (by file stem) for pipelines that
clone a prompt, the model's own voices for pipelines that have them (Kokoro)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from voxpipe.core.errors import ConfigError, VoxpipeError
from voxpipe.core.pipeline import Pipeline
from voxpipe.core.voice import Voice


class UnknownVoice(VoxpipeError):
    """A request named a voice the server does not have."""

    def __init__(self, name: str, available: list[str]) -> None:
        super().__init__(f"unknown voice {name!r}; available voices: {', '.join(available) or '(none)'}")
        self.name, self.available = name, available


@dataclass
class VoiceCatalog:
    """Voice name -> what `StreamingSession` takes (a `Voice`, or a built-in voice name)."""

    files: dict[str, Voice]
    builtin: list[str]
    ignored: list[Path]  # .voice files a pipeline with built-in voices cannot use

    @classmethod
    def load(cls, pipeline: Pipeline, directory: str | Path | None) -> "VoiceCatalog":
        """Read every `*.voice` file of `directory` (checked against the pipeline now, so a
        bad file stops the server at start, naming the file)."""
        paths: list[Path] = []
        if directory is not None:
            directory = Path(directory)
            if not directory.is_dir():
                raise ConfigError(f"--voices {directory}: not a directory")
            paths = sorted(directory.glob("*.voice"))
        clones = pipeline.acoustic_model.output == "features"
        if not clones:
            builtin = list(getattr(pipeline.acoustic_model, "voices", []) or [])
            return cls({}, builtin, paths)
        if not paths:
            where = f"in {directory}" if directory is not None else "(no --voices DIR given)"
            raise ConfigError(f"acoustic_model {pipeline.acoustic_model.name!r} clones voices: it needs .voice files "
                              f"(voxpipe voice create ...); none found {where}")
        files = {}
        for path in paths:
            voice = Voice.load(path)
            try:
                pipeline.check_voice(voice)
            except ConfigError as error:
                raise ConfigError(f"{path}: {error}") from None
            files[path.stem] = voice
        return cls(files, [], [])

    @property
    def names(self) -> list[str]:
        return sorted(self.files) + [name for name in self.builtin if name not in self.files]

    def describe(self) -> list[dict]:
        return [{"id": name, "object": "voice", "source": "file" if name in self.files else "builtin"}
                for name in self.names]

    def resolve(self, name: str) -> Voice | str:
        if name in self.files:
            return self.files[name]
        if name in self.builtin or self._is_blend(name):
            return name
        raise UnknownVoice(name, self.names)

    def _is_blend(self, name: str) -> bool:
        """"a:0.6,b:0.4" made of built-in voices (the model checks the weights)."""
        parts = [part.split(":")[0].strip() for part in name.split(",")]
        return len(parts) > 1 and all(part in self.builtin for part in parts)
