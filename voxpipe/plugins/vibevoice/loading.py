"""Reading the official Hugging Face layout: `config.json` + `model.safetensors` or shards listed
in `model.safetensors.index.json`, loaded strictly (every key used, every parameter filled)."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from voxpipe.core.checkpoints import state_dict_mismatches
from voxpipe.core.errors import WeightsError
from voxpipe.plugins.vibevoice.config import read_json

INDEX_FILE = "model.safetensors.index.json"
SINGLE_FILE = "model.safetensors"


def model_folder(path: str | Path) -> Path:
    """The folder holding `config.json` (given the folder or its config.json)."""
    path = Path(path).expanduser()
    folder = path.parent if path.is_file() and path.name == "config.json" else path
    if not folder.is_dir():
        raise WeightsError(f"model folder not found: {folder} (expected a folder with config.json and safetensors)")
    return folder


def shard_files(folder: Path) -> list[Path]:
    """The safetensors files of a folder, from the index when there is one."""
    index = folder / INDEX_FILE
    if index.is_file():
        data = read_json(index)
        weight_map = data.get("weight_map") if isinstance(data, dict) else None
        if not isinstance(weight_map, dict) or not weight_map:
            raise WeightsError(f"{index}: missing or empty 'weight_map'")
        names = sorted(set(map(str, weight_map.values())))
        files = [folder / name for name in names]
        absent = [str(f) for f in files if not f.is_file()]
        if absent:
            raise WeightsError(f"{index} lists shards that are missing: {', '.join(absent)}")
        return files
    single = folder / SINGLE_FILE
    if not single.is_file():
        raise WeightsError(f"{folder} has neither {SINGLE_FILE} nor {INDEX_FILE}")
    return [single]


def read_state_dict(folder: Path) -> dict[str, torch.Tensor]:
    """Every tensor of the folder's safetensors files (a key in two shards is an error)."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    tensors: dict[str, torch.Tensor] = {}
    for file in shard_files(folder):
        try:
            shard = load_file(str(file))
        except (SafetensorError, OSError, ValueError, RuntimeError) as error:
            raise WeightsError(f"{file} is not a readable safetensors file: {error}") from None
        repeated = sorted(set(shard) & set(tensors))
        if repeated:
            raise WeightsError(f"{file}: keys also in another shard: {', '.join(repeated[:5])}")
        tensors.update(shard)
    return tensors


def take_prefix(state: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    """The tensors under `prefix` with the prefix removed (removed from `state`)."""
    keys = [key for key in state if key.startswith(prefix)]
    return {key[len(prefix):]: state.pop(key) for key in keys}


class _Prefixed:
    """A module's state dict seen under a key prefix (for messages naming the file's keys)."""

    def __init__(self, module: nn.Module, prefix: str) -> None:
        self.module, self.prefix = module, prefix

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {self.prefix + key: value for key, value in self.module.state_dict().items()}


def load_strict(module: nn.Module, state: dict[str, torch.Tensor], where: str, prefix: str = "") -> None:
    """Load or raise WeightsError naming the missing/unexpected/mis-shaped keys (with `prefix`,
    as the file spells them) and the file."""
    problems = state_dict_mismatches(_Prefixed(module, prefix), {prefix + k: v for k, v in state.items()})
    if problems:
        raise WeightsError(f"{where} does not match the model its config describes: " + "; ".join(problems))
    dtype = next(module.parameters()).dtype
    module.load_state_dict({key: value.to(dtype) for key, value in state.items()}, strict=True)
