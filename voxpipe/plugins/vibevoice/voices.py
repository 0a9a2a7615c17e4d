"""Voice prompts of VibeVoice-Realtime: the cached key/values of the LM and TTS LM (and of their
negative-prompt twins) after reading a voice's prompt.

Two file forms:
- the official `.pt` (`torch.save` of {"lm", "tts_lm", "neg_lm", "neg_tts_lm"} model outputs
  holding `last_hidden_state` and a transformers `DynamicCache`), read with torch's weights-only
  unpickler where the transformers classes are replaced by inert stand-ins: no code from the file
  runs and transformers is not needed to read it;
- a voxpipe `.voice` file (safetensors) holding the same tensors, written by `to_voice`.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from voxpipe.core.errors import VoiceFileError

PARTS = ("lm", "tts_lm", "neg_lm", "neg_tts_lm")


@dataclass
class PromptCache:
    """One model's cached prompt: per layer (1, kv_heads, L, head_dim) keys and values, and the
    last position's hidden state (1, H)."""

    keys: list[torch.Tensor]
    values: list[torch.Tensor]
    last_hidden: torch.Tensor

    @property
    def length(self) -> int:
        return int(self.keys[0].shape[2])


@dataclass
class VoicePrompt:
    lm: PromptCache
    tts_lm: PromptCache
    neg_lm: PromptCache
    neg_tts_lm: PromptCache

    def part(self, name: str) -> PromptCache:
        return getattr(self, name)

    def tensors(self) -> dict[str, torch.Tensor]:
        out: dict[str, torch.Tensor] = {}
        for name in PARTS:
            cache = self.part(name)
            out[f"{name}.last_hidden"] = cache.last_hidden
            for index, (key, value) in enumerate(zip(cache.keys, cache.values)):
                out[f"{name}.key.{index}"] = key
                out[f"{name}.value.{index}"] = value
        return out

    @classmethod
    def from_tensors(cls, tensors: dict[str, torch.Tensor], source: str) -> VoicePrompt:
        parts = {}
        for name in PARTS:
            if f"{name}.last_hidden" not in tensors:
                raise VoiceFileError(f"{source}: no tensor {name}.last_hidden (not a VibeVoice-Realtime voice)")
            count = sum(1 for key in tensors if key.startswith(f"{name}.key."))
            if count == 0:
                raise VoiceFileError(f"{source}: no {name}.key.* tensors (the cached prompt is empty)")
            try:
                keys = [tensors[f"{name}.key.{i}"] for i in range(count)]
                values = [tensors[f"{name}.value.{i}"] for i in range(count)]
            except KeyError as error:
                raise VoiceFileError(f"{source}: missing tensor {error.args[0]}") from None
            parts[name] = PromptCache(keys, values, tensors[f"{name}.last_hidden"])
        return cls(**parts)


# ---- the official .pt format ----------------------------------------------------------------------
_OUTPUT_FIELDS = ("last_hidden_state", "past_key_values", "hidden_states", "attentions")


def _model_output(*args: Any) -> OrderedDict[str, Any]:
    """Stands in for transformers' ModelOutput classes (pickled as cls(*field values) plus items):
    a plain OrderedDict, the only mapping the weights-only unpickler fills."""
    return OrderedDict((name, value) for name, value in zip(_OUTPUT_FIELDS, args) if value is not None)


def _causal_lm_output(*args: Any) -> OrderedDict[str, Any]:
    return _model_output(*args)


class _Cache:
    """Stands in for transformers' DynamicCache (and its per-layer objects in newer versions)."""

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)


_STAND_INS = [
    (_model_output, "transformers.modeling_outputs.BaseModelOutputWithPast"),
    (_causal_lm_output, "vibevoice.modular.modeling_vibevoice_streaming_inference.VibeVoiceCausalLMOutputWithPast"),
    (_Cache, "transformers.cache_utils.DynamicCache"),
    (_Cache, "transformers.cache_utils.DynamicLayer"),
    (_Cache, "transformers.cache_utils.Cache"),
]


def _layers(cache: Any, where: str) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    state = getattr(cache, "__dict__", {})
    if "key_cache" in state and "value_cache" in state:  # transformers < 4.56
        keys, values = list(state["key_cache"]), list(state["value_cache"])
    elif "layers" in state:  # transformers >= 4.56: one object per layer
        keys = [getattr(layer, "keys", None) for layer in state["layers"]]
        values = [getattr(layer, "values", None) for layer in state["layers"]]
    else:
        raise VoiceFileError(f"{where}: past_key_values is not a DynamicCache this reader knows "
                             f"(attributes: {', '.join(sorted(state)) or 'none'})")
    if not keys or not all(isinstance(t, torch.Tensor) and t.dim() == 4 for t in keys + values):
        raise VoiceFileError(f"{where}: past_key_values holds no (1, heads, length, head_dim) tensors")
    return keys, values


def read_official_prompt(path: str | Path) -> VoicePrompt:
    """Read an official VibeVoice-Realtime voice `.pt` safely (weights-only unpickling)."""
    path = Path(path)
    if not path.is_file():
        raise VoiceFileError(f"voice file not found: {path}")
    try:
        with torch.serialization.safe_globals(_STAND_INS):
            data = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as error:  # noqa: BLE001 - the unpickler raises many types: all mean "unreadable"
        raise VoiceFileError(f"{path} is not a readable VibeVoice voice prompt: {str(error).splitlines()[0]}") from None
    if not isinstance(data, dict) or any(name not in data for name in PARTS):
        found = sorted(data) if isinstance(data, dict) else type(data).__name__
        raise VoiceFileError(f"{path}: expected a dict with {', '.join(PARTS)}; found {found}")
    parts = {}
    for name in PARTS:
        where = f"{path} [{name}]"
        output = data[name]
        if not isinstance(output, dict) or "last_hidden_state" not in output or "past_key_values" not in output:
            raise VoiceFileError(f"{where}: expected last_hidden_state and past_key_values")
        hidden = output["last_hidden_state"]
        if not isinstance(hidden, torch.Tensor) or hidden.dim() != 3 or hidden.shape[0] != 1:
            raise VoiceFileError(f"{where}: last_hidden_state should be (1, length, hidden)")
        keys, values = _layers(output["past_key_values"], where)
        parts[name] = PromptCache([k.float() for k in keys], [v.float() for v in values], hidden[:, -1].float())
    return VoicePrompt(**parts)
