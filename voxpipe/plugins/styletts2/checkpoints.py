"""Official Kokoro checkpoints -> the family's components, strictly.

Kokoro's `kokoro-v1_0.pth` is `{module: state_dict}` with modules `bert`, `bert_encoder`,
`predictor`, `text_encoder`, `decoder`. Keys may carry DataParallel's `module.` prefix and
weight-normalized layers come as `weight_g`/`weight_v` (torch.nn.utils.weight_norm) or
`parametrizations.weight.original0/1` (torch.nn.utils.parametrizations.weight_norm); both are
folded into one `weight` here (w = g v / |v|, norm over all but the first dimension).

Strict means: every parameter of the components must come from the file and every tensor of
the file must land somewhere, except these, each for a stated reason:
- `bert.pooler.*`, `bert.embeddings.position_ids`: ALBERT's pooler and a position buffer that
  TTS does not use (transformers builds the buffer itself);
- AdaIN instance-norm `norm.weight`/`norm.bias` may be absent: StyleTTS2 trained them without an
  affine transform (Kokoro's files omit them and the official loader leaves them at 1 and 0),
  so absent means identity.

StyleTTS2's own checkpoints (`epochs_2nd_*.pth`) are `{'net': {module: state_dict}, ...}`
(`read_official_checkpoint`): besides the modules above they hold `style_encoder` and
`predictor_encoder` (spectrally normalized convolutions: `weight_orig`/`weight_u`/`weight_v`
are folded into `weight` = weight_orig / (u . W v), as torch's spectral_norm computes it in
eval mode) and `diffusion` (the transformer denoiser, saved twice as `unet.*` and
`diffusion.net.*` because the official model registers it under both names; the two copies
must agree). Training-only modules (`text_aligner`, `pitch_extractor`, `mpd`, `msd`, `wd`:
alignment, pitch teacher and discriminators) are skipped.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from voxpipe.core.checkpoints import state_dict_mismatches
from voxpipe.core.errors import WeightsError

UNUSED_KEYS = {"bert": ("pooler.weight", "pooler.bias", "embeddings.position_ids")}
"""Official keys with no counterpart, per official module (see the module docstring)."""
TRAINING_ONLY_MODULES = ("text_aligner", "pitch_extractor", "mpd", "msd", "wd")
"""Modules of a StyleTTS2 checkpoint that inference does not use (see the module docstring)."""
REFERENCE_ENCODER_MODULES = ("style_encoder", "predictor_encoder")
"""The reference-audio encoders of a checkpoint (a single-speaker model's inference never reads them)."""
DIFFUSION_ALIASES = ("unet.", "diffusion.net.")
"""The two names the official diffusion model saves its denoiser under."""


def target_modules(plbert: nn.Module, predictor: nn.Module, text_encoder: nn.Module,
                   decoder: nn.Module) -> dict[str, nn.Module]:
    """Official module name -> the module of ours its state dict loads into."""
    return {"bert": plbert.bert, "bert_encoder": plbert.bert_encoder, "predictor": predictor,
            "text_encoder": text_encoder, "decoder": decoder}


def fold_weight_norm(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Replace (g, v) pairs of either weight-norm spelling by `weight` = g v / |v|."""
    pairs = {
        "weight_g": "weight_v",
        "parametrizations.weight.original0": "parametrizations.weight.original1",
    }
    folded = dict(state)
    for key in list(state):
        for g_name, v_name in pairs.items():
            if not key.endswith("." + g_name) and key != g_name:
                continue
            prefix = key[: len(key) - len(g_name)]
            v_key = prefix + v_name
            if v_key not in state:
                raise WeightsError(f"weight-normalized {prefix.rstrip('.') or 'layer'} has {g_name} but no {v_name}")
            g, v = state[key].float(), state[v_key].float()
            norm = v.flatten(1).norm(dim=1).reshape(-1, *([1] * (v.dim() - 1)))
            folded[prefix + "weight"] = g * v / norm
            del folded[key], folded[v_key]
    return folded


def fold_spectral_norm(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Replace (weight_orig, weight_u, weight_v) triples by `weight` = weight_orig / sigma,
    sigma = u . (W v) with W = weight_orig flattened to (out, -1) (spectral_norm in eval mode)."""
    folded = dict(state)
    for key in list(state):
        if not (key.endswith(".weight_orig") or key == "weight_orig"):
            continue
        prefix = key[: len(key) - len("weight_orig")]
        u_key, v_key = prefix + "weight_u", prefix + "weight_v"
        if u_key not in state or v_key not in state:
            raise WeightsError(f"spectrally normalized {prefix.rstrip('.') or 'layer'} has weight_orig but no "
                               "weight_u/weight_v")
        weight, u, v = state[key].float(), state[u_key].float(), state[v_key].float()
        sigma = torch.dot(u, weight.flatten(1) @ v)
        folded[prefix + "weight"] = weight / sigma
        del folded[key], folded[u_key], folded[v_key]
    return folded


def normalize_module_state(name: str, state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """One official module's state dict -> our key spelling (prefix stripped, weight norm folded,
    declared-unused keys dropped)."""
    stripped = {key.removeprefix("module."): value for key, value in state.items()}
    folded = fold_spectral_norm(fold_weight_norm(stripped))
    for key in UNUSED_KEYS.get(name, ()):
        folded.pop(key, None)
    return folded


def _fill_identity_instance_norms(module: nn.Module, state: dict[str, torch.Tensor]) -> None:
    """Absent AdaIN instance-norm affine parameters = identity (see the module docstring)."""
    for name, child in module.named_modules():
        if isinstance(child, nn.InstanceNorm1d) and child.affine:
            state.setdefault(f"{name}.weight", torch.ones_like(child.weight))
            state.setdefault(f"{name}.bias", torch.zeros_like(child.bias))


def load_official_modules(targets: dict[str, nn.Module], checkpoint: dict, source: str | Path) -> None:
    """Load `{module: state_dict}` into `targets` strictly; WeightsError naming the file, the
    module and the missing/unexpected/mis-shaped keys otherwise. Nothing is loaded unless
    everything fits."""
    if not isinstance(checkpoint, dict) or not all(isinstance(v, dict) for v in checkpoint.values()):
        raise WeightsError(f"{source}: expected a mapping of module name -> state dict (Kokoro's layout)")
    missing = sorted(set(targets) - set(checkpoint))
    unexpected = sorted(set(checkpoint) - set(targets))
    if missing or unexpected:
        raise WeightsError(f"{source}: modules do not match: missing {missing or 'none'}, unexpected "
                           f"{unexpected or 'none'} (expected {sorted(targets)})")
    prepared, problems = {}, []
    for name, module in targets.items():
        state = normalize_module_state(name, checkpoint[name])
        _fill_identity_instance_norms(module, state)
        mismatches = state_dict_mismatches(module, state)
        if mismatches:
            problems.append(f"module {name!r}: {'; '.join(mismatches)}")
        prepared[name] = state
    if problems:
        raise WeightsError(f"{source} does not fit the configured components: " + " | ".join(problems))
    for name, module in targets.items():
        module.load_state_dict(prepared[name], strict=True)


def read_pth(path: Path) -> dict:
    """torch.load without code execution (weights_only), errors naming the file."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except (OSError, RuntimeError, EOFError, ValueError) as error:
        raise WeightsError(f"{path} is not a readable torch checkpoint: {type(error).__name__}: {error}") from None


def merge_diffusion_aliases(state: dict[str, torch.Tensor], source: str | Path) -> dict[str, torch.Tensor]:
    """The official `diffusion` module's state (`unet.*` and `diffusion.net.*`, one denoiser
    saved twice) -> the denoiser's own keys; WeightsError when the copies differ or other keys
    are present."""
    merged: dict[str, torch.Tensor] = {}
    others = []
    for key, value in state.items():
        key = key.removeprefix("module.")
        alias = next((a for a in DIFFUSION_ALIASES if key.startswith(a)), None)
        if alias is None:
            others.append(key)
            continue
        name = key[len(alias):]
        if name in merged and not torch.equal(merged[name], value):
            raise WeightsError(f"{source}: module 'diffusion' saves {name} twice (unet./diffusion.net.) with "
                               "different values")
        merged[name] = value
    if others:
        raise WeightsError(f"{source}: module 'diffusion' has keys outside {'/'.join(DIFFUSION_ALIASES)}: "
                           f"{', '.join(sorted(others)[:5])}")
    return merged


def read_official_checkpoint(path: Path) -> tuple[dict[str, dict], str]:
    """A checkpoint file -> ({module: state_dict}, layout), layout "styletts2" for StyleTTS2's
    `{'net': {...}}` (training-only modules dropped, the diffusion aliases merged) or "kokoro"
    for Kokoro's `{module: state_dict}`."""
    checkpoint = read_pth(path)
    if not isinstance(checkpoint, dict):
        raise WeightsError(f"{path}: expected a dict checkpoint, got {type(checkpoint).__name__}")
    if "net" not in checkpoint:
        return checkpoint, "kokoro"
    net = checkpoint["net"]
    if not isinstance(net, dict) or not all(isinstance(v, dict) for v in net.values()):
        raise WeightsError(f"{path}: 'net' must map module names to state dicts (StyleTTS2's layout)")
    modules = {name: state for name, state in net.items() if name not in TRAINING_ONLY_MODULES}
    if "diffusion" in modules:
        modules["diffusion"] = merge_diffusion_aliases(modules["diffusion"], path)
    return modules, "styletts2"
