"""Write a trained ZipVoice-family network in the official model-directory layout.

    export_model(network_or_state_dict, directory, model_config={...}, vocab={token: id},
                 variant="zipvoice", feature={"sampling_rate": 24000, "type": "vocos"})

writes, each file atomically (a failed export leaves any previous file intact):

  model.pt           {"model": state_dict}, float32 tensors: what the official
                     `infer_zipvoice.py --model-dir` and `load_checkpoint` read
  model.safetensors  the same state dict (voxpipe's loader reads it first, without pickle;
                     writing both keeps a stale one from shadowing the new weights)
  model.json         {"model": constructor arguments, "feature": {...}}
  tokens.txt         token<TAB>id per line

`model_config` is the "model" object of model.json (the official constructor arguments, without
vocab_size / pad_id, which come from tokens.txt). The state dict may come from a float64 running
average (`voxpipe.training.average`); it is stored as float32. Before anything is written, a
network is built from the config and tokens (on the meta device) and the state dict is checked
against it key by key, so an export that the loader would refuse fails here, naming the keys.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from voxpipe.core.checkpoints import state_dict_mismatches
from voxpipe.core.errors import ConfigError, WeightsError
from voxpipe.core.files import (
    write_atomically,
    write_bytes_atomically,
    write_text_atomically,
)
from voxpipe.plugins.zipvoice.loading import model_kwargs, network_class

DEFAULT_FEATURE = {"sampling_rate": 24000, "type": "vocos"}


def _state_dict(source: nn.Module | dict[str, Tensor], dtype: torch.dtype) -> dict[str, Tensor]:
    if isinstance(source, nn.Module):
        source = getattr(source, "module", source).state_dict()
    return {
        name: (value.detach().to(dtype) if torch.is_floating_point(value) else value.detach()).cpu().contiguous()
        for name, value in source.items()
    }


def tokens_text(vocab: dict[str, int]) -> str:
    """tokens.txt content, ordered by id; ids must be 0..N-1 without gaps (embedding rows)."""
    ids = sorted(vocab.values())
    if ids != list(range(len(ids))):
        raise ConfigError(f"token ids must be 0..{len(ids) - 1} without gaps or repeats")
    return "".join(f"{token}\t{index}\n" for token, index in sorted(vocab.items(), key=lambda item: item[1]))


def export_model(
    source: nn.Module | dict[str, Tensor],
    directory: str | Path,
    *,
    model_config: dict[str, Any],
    vocab: dict[str, int],
    variant: str = "zipvoice",
    feature: dict[str, Any] | None = None,
    dtype: torch.dtype = torch.float32,
) -> dict[str, Path]:
    """Export (see the module docstring); returns {"checkpoint", "safetensors", "config", "tokens"} paths."""
    directory = Path(directory)
    config = {"model": dict(model_config), "feature": dict(DEFAULT_FEATURE if feature is None else feature)}
    json_config = json.dumps(config, indent=2, sort_keys=False) + "\n"
    tokens = tokens_text(vocab)
    state_dict = _state_dict(source, dtype)

    kwargs = model_kwargs(variant, config["model"], vocab, directory / "model.json")
    try:
        with torch.device("meta"):
            reference = network_class(variant)(**kwargs)
    except (TypeError, ValueError) as error:
        raise ConfigError(f"cannot build {variant!r} from model_config {config['model']}: {error}") from None
    problems = state_dict_mismatches(reference, state_dict)
    if problems:
        raise WeightsError(f"the weights do not fit a {variant!r} model built from this config and "
                           f"vocabulary ({len(vocab)} tokens): " + "; ".join(problems))

    directory.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    torch.save({"model": state_dict}, buffer)
    paths = {
        "checkpoint": write_bytes_atomically(directory / "model.pt", buffer.getvalue()),
        "safetensors": write_atomically(directory / "model.safetensors", lambda tmp: _save_safetensors(state_dict, tmp)),
        "config": write_text_atomically(directory / "model.json", json_config),
        "tokens": write_text_atomically(directory / "tokens.txt", tokens),
    }
    return paths


def _save_safetensors(state_dict: dict[str, Tensor], path: Path) -> None:
    from safetensors.torch import save_file

    # safetensors refuses tensors that share memory; the ZipVoice networks have none, but a
    # clone keeps a future tied weight from failing the export.
    seen: set[int] = set()
    unique = {}
    for name, value in state_dict.items():
        unique[name] = value.clone() if value.data_ptr() in seen else value
        seen.add(value.data_ptr())
    save_file(unique, str(path), metadata={"format": "pt"})


__all__ = ["DEFAULT_FEATURE", "export_model", "tokens_text"]
