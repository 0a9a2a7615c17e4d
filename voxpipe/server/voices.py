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
    """Voice name -> what `StreamingSession` takes (a family voice, or a built-in voice name)."""

    files: dict[str, object]
    builtin: list[str]
    ignored: list[Path]  # .voice files made for another family

    @classmethod
    def load(cls, pipeline: Pipeline, directory: str | Path | None) -> "VoiceCatalog":
        """Read every `*.voice` file of `directory`, checked against the pipeline's family now, so
        a bad file stops the server at start, naming the file."""
        paths: list[Path] = []
        if directory is not None:
            directory = Path(directory)
            if not directory.is_dir():
                raise ConfigError(f"--voices {directory}: not a directory")
            paths = sorted(directory.glob("*.voice"))
        family = pipeline.synthesizer
        builtin = list(family.voices())
        files, ignored = {}, []
        for path in paths:
            voice = Voice.load(path)
            if voice.family != family.name and builtin:
                ignored.append(path)  # a family with its own voices still serves them
                continue
            try:
                family.resolve_voice(voice)  # checked now; sessions resolve it again per request
                files[path.stem] = voice
            except VoxpipeError as error:
                raise type(error)(f"{path.name}: {error}") from None
        if not files and not builtin:
            where = f"in {directory}" if directory is not None else "(no --voices DIR given)"
            raise ConfigError(f"synthesizer {family.name!r} clones voices: it needs .voice files "
                              f"(voxpipe voice create ...); none found {where}")
        return cls(files, builtin, ignored)

    @property
    def names(self) -> list[str]:
        return sorted(self.files) + [name for name in self.builtin if name not in self.files]

    def describe(self) -> list[dict]:
        return [{"id": name, "object": "voice", "source": "file" if name in self.files else "builtin"}
                for name in self.names]

    def resolve(self, name: str, family=None) -> object:
        """The voice called `name`: a file's voice, or whatever the family accepts by name (its
        built-in voices, and e.g. Kokoro's blends "a:0.6,b:0.4"; `family` checks it)."""
        if name in self.files:
            return self.files[name]
        if family is not None and self.builtin:
            try:
                family.resolve_voice(name)
                return name
            except VoxpipeError:
                pass
        elif name in self.builtin:
            return name
        raise UnknownVoice(name, self.names)
