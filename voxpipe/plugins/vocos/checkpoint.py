"""Find, read and strictly load vocoder checkpoints (with weight-norm folding)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from voxpipe.core.checkpoints import state_dict_mismatches
from voxpipe.core.errors import WeightsError

CONFIG_NAME = "config.yaml"


@dataclass(frozen=True)
class CheckpointFiles:
    config: Path
    checkpoint: Path


def find_files(
    location: Path, checkpoint_names: tuple[str, ...], subdirs: tuple[str, ...], what: str
) -> CheckpointFiles:
    """config.yaml + the first present checkpoint name, in `location` or one of its `subdirs`.

    `location` may also be the checkpoint file itself (its directory then holds config.yaml).
    """
    if location.is_file():
        config = location.parent / CONFIG_NAME
        if not config.is_file():
            raise WeightsError(f"{what}: {CONFIG_NAME} not found next to checkpoint {location} (looked for {config})")
        return CheckpointFiles(config, location)
    directories = [location / sub if sub else location for sub in subdirs]
    for directory in directories:
        if not (directory / CONFIG_NAME).is_file():
            continue
        for name in checkpoint_names:
            if (directory / name).is_file():
                return CheckpointFiles(directory / CONFIG_NAME, directory / name)
        raise WeightsError(
            f"{what}: found {directory / CONFIG_NAME} but no checkpoint next to it; looked for "
            f"{', '.join(checkpoint_names)} in {directory}"
        )
    raise WeightsError(
        f"{what}: no {CONFIG_NAME} found; looked in {', '.join(str(d) for d in directories)} "
        f"(expected {CONFIG_NAME} and one of {', '.join(checkpoint_names)})"
    )


def read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """A `torch.save`d state dict (bare, or under "state_dict") or a .safetensors file, on CPU."""
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            return load_file(str(path), device="cpu")
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # truncated file, not a checkpoint, pickle refused, ...
        raise WeightsError(f"cannot read checkpoint {path}: {type(error).__name__}: {error}") from None
    if isinstance(data, dict) and isinstance(data.get("state_dict"), dict):
        data = data["state_dict"]
    if not isinstance(data, dict) or not all(isinstance(v, torch.Tensor) for v in data.values()):
        raise WeightsError(f"{path} is not a state dict (expected a mapping of parameter names to tensors)")
    return dict(data)


# Weight norm stored as magnitude g and direction v: the old hook API (`weight_g`/`weight_v`) or
# torch.nn.utils.parametrizations (`parametrizations.weight.original0`/`original1`).
_WEIGHT_NORM_KEYS = (
    (re.compile(r"^(?P<prefix>.*)\.weight_g$"), "weight_v"),
    (re.compile(r"^(?P<prefix>.*)\.parametrizations\.weight\.original0$"), "parametrizations.weight.original1"),
)


def _norm_dim(g: torch.Tensor, v: torch.Tensor) -> int | None:
    """The axis weight norm kept (g has v's size there and 1 elsewhere); None = whole-tensor norm."""
    if g.numel() == 1:
        return None
    for dim in range(v.dim()):
        if g.dim() == v.dim() and g.shape[dim] == v.shape[dim] and g.numel() == v.shape[dim]:
            return dim
    raise ValueError(f"weight-norm magnitude of shape {tuple(g.shape)} does not fit direction {tuple(v.shape)}")


def fold_weight_norm_pair(g: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """weight = g * v / ||v||, the norm taken over every axis but the one g keeps."""
    dim = _norm_dim(g, v)
    v32, g32 = v.float(), g.float()
    if dim is None:
        norm = v32.norm()
    else:
        moved = v32.movedim(dim, 0)
        norm = moved.reshape(moved.shape[0], -1).norm(dim=1).reshape(g.shape)
    return v32 * (g32 / norm)


def fold_weight_norm(state_dict: dict[str, torch.Tensor], source: Path) -> dict[str, torch.Tensor]:
    """Replace every (g, v) weight-norm pair by the plain `<prefix>.weight` it stands for."""
    folded = dict(state_dict)
    for key in list(state_dict):
        for pattern, direction_suffix in _WEIGHT_NORM_KEYS:
            match = pattern.match(key)
            if not match:
                continue
            prefix = match["prefix"]
            direction_key = f"{prefix}.{direction_suffix}"
            if direction_key not in state_dict:
                raise WeightsError(f"{source}: weight-norm magnitude {key} has no direction tensor {direction_key}")
            try:
                folded[f"{prefix}.weight"] = fold_weight_norm_pair(state_dict[key], state_dict[direction_key])
            except ValueError as error:
                raise WeightsError(f"{source}: cannot fold weight norm of {prefix}: {error}") from None
            del folded[key], folded[direction_key]
    return folded


def load_strict(model: nn.Module, state_dict: dict[str, torch.Tensor], files: CheckpointFiles) -> None:
    """Load with every key and shape matching, or raise WeightsError listing the first mismatches."""
    problems = state_dict_mismatches(model, state_dict)
    if problems:
        raise WeightsError(
            f"checkpoint {files.checkpoint} does not match the model described by {files.config}: "
            + "; ".join(problems)
        )
    model.load_state_dict(state_dict, strict=True)
