"""Load a ZipVoice-family model from a directory in the official layout.

A model directory holds
  model.pt (``{"model": state_dict}``) and/or model.safetensors (the same flat state dict),
  model.json (LuxTTS names it config.json): ``{"model": {constructor args}, "feature": {...}}``,
  tokens.txt: ``token<TAB>id`` per line (one token is a single space: never strip tokens).
vocab_size and pad_id are not in model.json: vocab_size = number of entries of tokens.txt,
pad_id = id of "_"; dialog models also take spk_a_id / spk_b_id = ids of "[S1]" / "[S2]".
"""

from __future__ import annotations

import inspect
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from voxpipe.core.checkpoints import state_dict_mismatches
from voxpipe.core.errors import ConfigError, WeightsError
from voxpipe.core.tokenizer import read_tokens_file
from voxpipe.plugins.zipvoice.model import (
    ZipVoice,
    ZipVoiceDialog,
)



def network_class(variant: str) -> type[ZipVoice]:
    """The torch network of a registered ZipVoice acoustic model (its `network`), by name."""
    from voxpipe.core.errors import RegistryError
    from voxpipe.registry import get_registry

    registry = get_registry()
    try:
        network = getattr(registry.get("acoustic_model", variant).cls, "network", None)
    except RegistryError:
        network = None
    if network is None:
        known = [n for n in registry.names("acoustic_model") if getattr(registry.get("acoustic_model", n).cls, "network", None)]
        raise ConfigError(f"unknown ZipVoice variant {variant!r}; expected one of {known}")
    return network
CHECKPOINT_NAMES = ("model.safetensors", "model.pt")  # safetensors first: loads without pickle
CONFIG_NAMES = ("model.json", "config.json")
TOKENS_NAMES = ("tokens.txt",)
PAD_TOKEN = "_"
SPEAKER_TOKENS = ("[S1]", "[S2]")


@dataclass
class LoadedModel:
    """A model with weights loaded, in eval mode, plus what was read to build it."""

    model: ZipVoice
    variant: str
    vocab: dict[str, int]
    config: dict[str, Any]
    files: dict[str, Path] = field(default_factory=dict)

    @property
    def sample_rate(self) -> int:
        return int(self.config.get("feature", {}).get("sampling_rate", 24000))

    @property
    def feature_type(self) -> str:
        return str(self.config.get("feature", {}).get("type", "vocos"))


# -- files -------------------------------------------------------------------------------------
def resolve_weights_location(location: str, what: str = "model directory") -> Path:
    """A local directory, or an `hf://org/repo[/path]` location fetched/cached by voxpipe."""
    from voxpipe.core.weights import resolve_path

    return resolve_path(location, what=what)


def find_file(directory: Path, override: str | None, candidates: tuple[str, ...], what: str) -> Path:
    """`override` (a name inside `directory` or a path), else the first candidate present."""
    names = (override,) if override else candidates
    for name in names:
        path = Path(name).expanduser()
        path = path if path.is_absolute() else directory / path
        if path.is_file():
            return path
    looked = ", ".join(names)
    raise WeightsError(f"{what} not found: looked for {looked} in {directory}")


def read_tokens(path: Path) -> dict[str, int]:
    """tokens.txt -> {token: id} (`voxpipe.core.tokenizer.read_tokens_file`, the one reader)."""
    return read_tokens_file(path)


def read_config(path: Path) -> dict[str, Any]:
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as error:
        raise ConfigError(f"cannot read model config {path}: {error}") from None
    if not isinstance(config, dict) or not isinstance(config.get("model"), dict):
        raise ConfigError(f"{path} has no 'model' object of constructor arguments")
    return config


def read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """model.pt ({"model": sd} or a bare sd) or model.safetensors -> flat state dict (CPU)."""
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            return load_file(str(path), device="cpu")
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # noqa: BLE001 - any unreadable file (corrupt, pickle refused) is a WeightsError
        raise WeightsError(f"cannot read checkpoint {path}: {type(error).__name__}: {error}") from None
    if isinstance(checkpoint, dict) and isinstance(checkpoint.get("model"), dict):
        checkpoint = checkpoint["model"]
    if not isinstance(checkpoint, dict) or not all(isinstance(v, torch.Tensor) for v in checkpoint.values()):
        raise WeightsError(f"{path} is not a state dict (expected {{'model': {{name: tensor}}}})")
    return checkpoint


# -- building ------------------------------------------------------------------------------------
def detect_variant(state_dict: dict[str, torch.Tensor]) -> str:
    """Best guess of the model family a state dict belongs to (for error hints)."""
    if "spk_embed.weight" in state_dict:
        return "zipvoice-dialog-stereo" if "fm_decoder.in_proj.0.weight" in state_dict else "zipvoice-dialog"
    if "fm_decoder.guidance_scale_embed.weight" in state_dict:
        return "zipvoice-distill"
    return "zipvoice"


def model_kwargs(variant: str, model_config: dict[str, Any], vocab: dict[str, int], config_path: Path) -> dict[str, Any]:
    """Constructor arguments: model.json's "model" object + ids taken from tokens.txt."""
    cls = network_class(variant)
    accepted = set(inspect.signature(ZipVoice.__init__).parameters) - {"self"}
    unknown = sorted(set(model_config) - accepted)
    if unknown:
        raise ConfigError(f"{config_path}: unknown model arguments {unknown}; accepted: {sorted(accepted)}")
    if PAD_TOKEN not in vocab:
        raise ConfigError(f"tokens file has no pad token {PAD_TOKEN!r}")
    kwargs = dict(model_config, vocab_size=len(vocab), pad_id=vocab[PAD_TOKEN])
    if issubclass(cls, ZipVoiceDialog):
        missing = [token for token in SPEAKER_TOKENS if token not in vocab]
        if missing:
            raise ConfigError(f"{variant} needs speaker tokens {missing} in its tokens file")
        kwargs.update(spk_a_id=vocab[SPEAKER_TOKENS[0]], spk_b_id=vocab[SPEAKER_TOKENS[1]])
    return kwargs


def check_state_dict(model: torch.nn.Module, state_dict: dict[str, torch.Tensor], variant: str, files: dict[str, Path]) -> None:
    """Raise WeightsError naming the first missing / unexpected / mis-shaped keys."""
    problems = state_dict_mismatches(model, state_dict)
    if not problems:
        return
    guess = detect_variant(state_dict)
    hint = f" The checkpoint looks like a {guess!r} model." if guess != variant else ""
    raise WeightsError(
        f"checkpoint {files['checkpoint']} does not match a {variant!r} model built from config "
        f"{files['config']} and tokens {files['tokens']} (vocab_size {len(model.embed.weight)}): "
        + "; ".join(problems)
        + "."
        + hint
    )


def load_model(
    location: str | Path,
    variant: str = "zipvoice",
    checkpoint: str | None = None,
    config: str | None = None,
    tokens: str | None = None,
    device: str | torch.device = "cpu",
    dtype: torch.dtype = torch.float32,
) -> LoadedModel:
    """Build `variant` from the files in `location` and load its weights strictly.

    checkpoint / config / tokens override the file names (relative to the directory, or paths).
    """
    network = network_class(variant)
    directory = resolve_weights_location(str(location), what=f"{variant} model directory")
    if not directory.is_dir():
        raise WeightsError(f"{variant} model directory expected, got a file: {directory}")
    files = {
        "checkpoint": find_file(directory, checkpoint, CHECKPOINT_NAMES, "checkpoint"),
        "config": find_file(directory, config, CONFIG_NAMES, "model config"),
        "tokens": find_file(directory, tokens, TOKENS_NAMES, "tokens file"),
    }
    model_config = read_config(files["config"])
    vocab = read_tokens(files["tokens"])
    kwargs = model_kwargs(variant, model_config["model"], vocab, files["config"])
    try:
        with torch.device("meta"):  # no random init: every parameter comes from the checkpoint
            model = network(**kwargs)
    except (TypeError, ValueError) as error:
        raise ConfigError(f"{files['config']}: cannot build {variant!r}: {error}") from None
    state_dict = read_state_dict(files["checkpoint"])
    check_state_dict(model, state_dict, variant, files)
    # Copy into fresh allocations rather than `assign`: tensors from a safetensors mmap can be
    # oddly aligned, which changes which SIMD kernels run (and float rounding).
    # Ordinary tensors even when called under torch.inference_mode(): inference tensors have no
    # version counters, which the fused kernels' cached folded biases rely on.
    with torch.inference_mode(False):
        model = model.to_empty(device=device)
        model.load_state_dict(state_dict, strict=True)
        model = model.to(dtype=dtype).eval()
    return LoadedModel(model=model, variant=variant, vocab=vocab, config=model_config, files=files)
