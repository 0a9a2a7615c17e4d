"""Strict loading of the official CosyVoice state dicts (`flow.pt`, `hift.pt`).

The files are plain `torch.save(module.state_dict())` of the official modules, read without
code execution (`weights_only=True`). HiFT's weight-normalized convolutions come as
`parametrizations.weight.original0/1` (torch >= 2.1) or `weight_g`/`weight_v` (older torch); both
are folded into one `weight` with torch's own weight-norm kernel (`torch._weight_norm`, what the
official module's parametrization runs at every call), so the weights are bit-identical to the
official ones: the StyleTTS2 plugin's `fold_weight_norm` (g v / |v|, used for whatever pairs
that kernel cannot take) differs by an ulp, and an ulp in HiFT's F0 predictor drifts the NSF
source's phase over long inputs (measured: 6e-5 on a 2 s full-size case, 0 with this fold). A `generator.` prefix
(a HiFiGan training checkpoint's generator) is stripped, as the official loader does.

Strict: every parameter and buffer of the module comes from the file and every tensor of the file
lands somewhere; otherwise a WeightsError names the file and the missing / unexpected /
mis-shaped keys, before anything is loaded.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import torch
from torch import nn

from voxpipe.core.checkpoints import state_dict_mismatches
from voxpipe.core.errors import ConfigError, WeightsError
from voxpipe.plugins.styletts2.checkpoints import fold_weight_norm

HYPERPARAM_FILES = ("cosyvoice2.yaml", "cosyvoice3.yaml", "cosyvoice.yaml")
"""The official hyper-parameter file names, in the order a model folder is searched."""


def pick_file(key: str, given: str | None, folder: Path | None, names: tuple[str, ...]) -> Path:
    """An explicitly given file, else the first of `names` in the model folder; errors naming both."""
    if given is not None:
        path = Path(given).expanduser()
        if not path.is_file():
            raise WeightsError(f"CosyVoice {key} file not found: {path}")
        return path
    if folder is None:
        raise ConfigError(f"CosyVoice: set {key} or model_dir (the official model folder holding {names[0]})")
    for name in names:
        if (folder / name).is_file():
            return folder / name
    raise WeightsError(f"CosyVoice model folder {folder} has no {' / '.join(names)} (set {key} or model_dir)")


def model_folder(model_dir: str | Path | None) -> Path | None:
    """The official model folder `model_dir` (checked to exist), or None when not given."""
    from voxpipe.core.weights import resolve_path

    return None if model_dir is None else resolve_path(str(model_dir), what="CosyVoice model folder")


def pick_official_files(model_dir: str | Path | None, hyperparams: str | None, weights: str | None,
                        weights_name: str) -> tuple[Path, Path]:
    """(hyper-parameter yaml, weights file) of a flow/HiFT-like component: given paths win over
    the model folder's official files."""
    folder = model_folder(model_dir)
    return (pick_file("hyperparams", hyperparams, folder, HYPERPARAM_FILES),
            pick_file("weights", weights, folder, (weights_name,)))


def read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """torch.load(weights_only) of a state dict, errors naming the file."""
    if not path.is_file():
        raise WeightsError(f"CosyVoice weights file not found: {path}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except (OSError, RuntimeError, EOFError, ValueError, AttributeError, pickle.UnpicklingError) as error:
        raise WeightsError(f"{path} is not a readable torch state dict: {type(error).__name__}: {error}") from None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise WeightsError(f"{path}: expected a state dict of tensors (the official module's state_dict())")
    return state


_WEIGHT_NORM_PAIRS = (("parametrizations.weight.original0", "parametrizations.weight.original1"),
                      ("weight_g", "weight_v"))


def fold_weight_norm_exactly(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """(g, v) pairs -> `weight` as torch's weight norm computes it (dim 0); anything else,
    including an incomplete pair, is left to `fold_weight_norm` (which names a missing half)."""
    kernel = getattr(torch, "_weight_norm", None)
    folded = dict(state)
    for key, value in state.items():
        for g_name, v_name in _WEIGHT_NORM_PAIRS:
            prefix = key[: -len(g_name)]
            if kernel is None or not key.endswith(g_name) or prefix + v_name not in state:
                continue
            g, v = value.float(), state[prefix + v_name].float()
            if g.dim() != v.dim():
                continue
            folded[prefix + "weight"] = kernel(v, g, 0)
            del folded[key], folded[prefix + v_name]
    return fold_weight_norm(folded)


def load_official(module: nn.Module, path: Path, *, strip_prefix: str = "") -> None:
    """Load `path` into `module` strictly (weight norm folded, `strip_prefix` removed)."""
    state = read_state_dict(path)
    if strip_prefix:
        state = {key.removeprefix(strip_prefix): value for key, value in state.items()}
    state = fold_weight_norm_exactly(state)
    expected = module.state_dict()
    state = {key: value.to(expected[key].dtype) if key in expected else value for key, value in state.items()}
    load_strictly(module, state, path, fits="the model its hyper-parameters describe")


def load_strictly(module: nn.Module, state: dict[str, torch.Tensor], path: Path, *, fits: str,
                  assign: bool = False) -> None:
    """`module.load_state_dict(state, strict=True)` after checking every key and shape first:
    a WeightsError names `path`, what it should fit and the missing / unexpected / mis-shaped keys."""
    problems = state_dict_mismatches(module, state)
    if problems:
        raise WeightsError(f"{path} does not fit {fits}: " + "; ".join(problems))
    module.load_state_dict(state, strict=True, assign=assign)
