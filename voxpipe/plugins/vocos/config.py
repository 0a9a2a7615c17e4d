"""Read a Vocos-style `config.yaml` (`{section: {class_path, init_args}}`) into typed specs.

The published configs name Python classes (`vocos.models.VocosBackbone`, ...). We never import
them: each known class path maps to a spec of the module we build ourselves, and anything else
is an error naming the file, the section and the class paths we understand.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import yaml

from voxpipe.core.errors import ConfigError, WeightsError


class ModelConfigError(WeightsError, ConfigError):
    """The config.yaml shipped with a vocoder checkpoint is missing, unreadable or not understood.

    It is both a weights problem (the file belongs to the checkpoint) and a configuration
    problem, so either `except` catches it.
    """


@dataclass(frozen=True)
class MelSpec:
    """`vocos.feature_extractors.MelSpectrogramFeatures`: only its buffer shapes matter here."""

    sample_rate: int
    n_fft: int
    hop_length: int
    n_mels: int
    padding: str


@dataclass(frozen=True)
class BackboneSpec:
    """`vocos.models.VocosBackbone` (ConvNeXt blocks, no AdaLayerNorm)."""

    input_channels: int
    dim: int
    intermediate_dim: int
    num_layers: int
    layer_scale: bool  # False when layer_scale_init_value <= 0 (blocks then have no `gamma`)


@dataclass(frozen=True)
class HeadSpec:
    """`vocos.heads.ISTFTHead`."""

    dim: int
    n_fft: int
    hop_length: int
    padding: str


@dataclass(frozen=True)
class UpsamplerSpec:
    """`linacodec.vocoder.upsampler_block.UpSamplerBlock`."""

    in_channels: int
    upsample_factors: tuple[int, ...]
    kernel_sizes: tuple[int, ...]


PADDINGS = ("center", "same")
GROUP_NORM_GROUPS = 32  # fixed in LinaCodec's ResnetBlock


class _Section:
    """Typed access to one `init_args` mapping, with errors that name file and key path."""

    def __init__(self, path: Path, section: str, args: dict[str, Any], known: set[str]):
        self.path, self.section, self.args = path, section, args
        unknown = sorted(set(args) - known)
        if unknown:
            raise ModelConfigError(
                f"{path}: {section}.init_args has unsupported keys {unknown}; supported: {sorted(known)}"
            )

    def _where(self, key: str) -> str:
        return f"{self.path}: {self.section}.init_args.{key}"

    def integer(self, key: str, default: int | None = None, minimum: int = 1) -> int:
        if key not in self.args:
            if default is None:
                raise ModelConfigError(f"{self._where(key)} is missing (an integer is required)")
            return default
        value = self.args[key]
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise ModelConfigError(f"{self._where(key)} = {value!r}; expected an integer >= {minimum}")
        return value

    def choice(self, key: str, choices: tuple[str, ...], default: str | None = None) -> str:
        value = self.args.get(key, default)
        if value is None:
            raise ModelConfigError(f"{self._where(key)} is missing (one of {', '.join(choices)})")
        if value not in choices:
            raise ModelConfigError(f"{self._where(key)} = {value!r}; expected one of {', '.join(choices)}")
        return value

    def integer_list(self, key: str, default: tuple[int, ...] | None = None) -> tuple[int, ...]:
        value = self.args.get(key)
        if value is None:
            if default is None:
                raise ModelConfigError(f"{self._where(key)} is missing (a list of integers is required)")
            return default
        if not isinstance(value, (list, tuple)) or not all(isinstance(v, int) and v >= 1 for v in value):
            raise ModelConfigError(f"{self._where(key)} = {value!r}; expected a list of positive integers")
        return tuple(value)


def _mel(s: _Section) -> MelSpec:
    return MelSpec(
        sample_rate=s.integer("sample_rate", 24000),
        n_fft=s.integer("n_fft", 1024),
        hop_length=s.integer("hop_length", 256),
        n_mels=s.integer("n_mels", 100),
        padding=s.choice("padding", PADDINGS, "center"),
    )


def _backbone(s: _Section) -> BackboneSpec:
    if s.args.get("adanorm_num_embeddings") is not None:
        raise ModelConfigError(
            f"{s._where('adanorm_num_embeddings')} is set: the bandwidth-conditioned (EnCodec) Vocos "
            "is not supported; only mel-spectrogram Vocos models are"
        )
    scale = s.args.get("layer_scale_init_value")
    return BackboneSpec(
        input_channels=s.integer("input_channels"),
        dim=s.integer("dim"),
        intermediate_dim=s.integer("intermediate_dim"),
        num_layers=s.integer("num_layers"),
        # Vocos: `layer_scale_init_value or 1 / num_layers`, and gamma exists only if that is > 0.
        layer_scale=not (scale is not None and scale < 0),
    )


def _head(s: _Section) -> HeadSpec:
    return HeadSpec(
        dim=s.integer("dim"),
        n_fft=s.integer("n_fft"),
        hop_length=s.integer("hop_length"),
        padding=s.choice("padding", PADDINGS, "same"),  # Vocos' default
    )


def _upsampler(s: _Section) -> UpsamplerSpec:
    factors = s.integer_list("upsample_factors")
    kernels = s.integer_list("kernel_sizes", default=(8,) * len(factors))  # LinaCodec's default
    if len(kernels) != len(factors):
        raise ModelConfigError(
            f"{s._where('kernel_sizes')} has {len(kernels)} entries but upsample_factors has {len(factors)}"
        )
    spec = UpsamplerSpec(in_channels=s.integer("in_channels"), upsample_factors=factors, kernel_sizes=kernels)
    # Each stage halves the channels and normalises them with GroupNorm(32 groups).
    divisor = GROUP_NORM_GROUPS * 2 ** len(factors)
    if spec.in_channels % divisor:
        raise ModelConfigError(
            f"{s._where('in_channels')} = {spec.in_channels} is not divisible by {divisor} "
            f"(halved {len(factors)} times, then split into {GROUP_NORM_GROUPS} groups)"
        )
    return spec


# class_path -> (spec it builds, accepted init_args keys, builder)
_CLASSES: dict[str, tuple[type, set[str], Callable[[_Section], Any]]] = {
    "vocos.feature_extractors.MelSpectrogramFeatures": (
        MelSpec,
        # f_min/f_max/norm/mel_scale only change the stored filterbank buffer, which we load as is.
        {"sample_rate", "n_fft", "hop_length", "n_mels", "padding", "f_min", "f_max", "norm", "mel_scale"},
        _mel,
    ),
    "vocos.models.VocosBackbone": (
        BackboneSpec,
        {"input_channels", "dim", "intermediate_dim", "num_layers", "layer_scale_init_value", "adanorm_num_embeddings"},
        _backbone,
    ),
    "vocos.heads.ISTFTHead": (HeadSpec, {"dim", "n_fft", "hop_length", "padding"}, _head),
    "linacodec.vocoder.upsampler_block.UpSamplerBlock": (
        UpsamplerSpec,
        {"in_channels", "upsample_factors", "kernel_sizes"},
        _upsampler,
    ),
}

# The spec each section must produce.
_SECTION_TYPES: dict[str, type] = {
    "feature_extractor": MelSpec,
    "backbone": BackboneSpec,
    "head": HeadSpec,
    "upsampler": UpsamplerSpec,
    "head_48k": HeadSpec,
}


def read_yaml(path: Path) -> dict[str, Any]:
    """config.yaml -> mapping; a ModelConfigError names the file if it cannot be parsed."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ModelConfigError(f"vocoder config not found: {path}") from None
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as error:
        raise ModelConfigError(f"cannot read vocoder config {path}: {error}") from None
    if not isinstance(data, dict):
        raise ModelConfigError(f"{path}: expected a mapping of sections (feature_extractor, backbone, head, ...)")
    return data


def parse_sections(path: Path, sections: tuple[str, ...]) -> dict[str, Any]:
    """Read `path` and build one spec per required section (other sections are ignored)."""
    data = read_yaml(path)
    specs: dict[str, Any] = {}
    for section in sections:
        entry = data.get(section)
        if entry is None:
            found = ", ".join(map(str, data)) or "none"
            raise ModelConfigError(f"{path}: section {section!r} is missing (found: {found})")
        if not isinstance(entry, dict) or "class_path" not in entry:
            raise ModelConfigError(f"{path}: {section}.class_path is missing")
        class_path = entry["class_path"]
        known = _CLASSES.get(class_path)
        if known is None or known[0] is not _SECTION_TYPES[section]:
            allowed = [name for name, (spec, _, _) in _CLASSES.items() if spec is _SECTION_TYPES[section]]
            raise ModelConfigError(
                f"{path}: {section}.class_path {class_path!r} is not supported; expected {' or '.join(allowed)}"
            )
        args = entry.get("init_args") or {}
        if not isinstance(args, dict):
            raise ModelConfigError(f"{path}: {section}.init_args must be a mapping, got {type(args).__name__}")
        _, keys, build = known
        specs[section] = build(_Section(path, section, args, keys))
    return specs
