"""VibeVoice-Realtime's networks around the diffusion head, loaded strictly from the HF layout.

- `language_model`: the lower Qwen2 layers (text only; no final norm),
- `tts_language_model`: the upper Qwen2 layers (text hidden states and speech latents),
- `tts_input_types`: a 2-row embedding added to TTS LM inputs (1 = text, 0 = speech),
- `acoustic_connector`: latent (vae_dim) -> LM embedding (Linear, RMSNorm, Linear),
- `prediction_head`: the diffusion head; `tts_eos_classifier`: end-of-speech probability,
- `speech_scaling_factor` / `speech_bias_factor`: latent normalisation (decode x / s - b).

The Qwen2 stacks are `transformers`' Qwen2Model (any 4.51.3 <= version < 6).
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from voxpipe.core.errors import WeightsError
from voxpipe.plugins.vibevoice.config import StreamingModelConfig, read_json
from voxpipe.plugins.vibevoice.head import DiffusionHead, RMSNorm
from voxpipe.plugins.vibevoice.loading import load_strict, read_state_dict, take_prefix


def _import_transformers():
    try:
        import transformers
        from transformers import Qwen2Config, Qwen2Model
    except ImportError:
        raise WeightsError("the vibevoice family needs transformers: pip install 'voxpipe[vibevoice]'") from None
    return transformers, Qwen2Config, Qwen2Model


class SpeechConnector(nn.Module):
    def __init__(self, latent_dim: int, hidden: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(latent_dim, hidden)
        self.norm = RMSNorm(hidden, 1e-6)
        self.fc2 = nn.Linear(hidden, hidden)

    def forward(self, latents: torch.Tensor) -> torch.Tensor:
        """(B, T, vae_dim) -> (B, T, hidden)."""
        return self.fc2(self.norm(self.fc1(latents)))


class EndOfSpeechClassifier(nn.Module):
    def __init__(self, hidden: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(hidden, hidden)
        self.fc2 = nn.Linear(hidden, 1)

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        """(B, hidden) -> (B, 1) logits (> 0: speech has ended)."""
        return self.fc2(torch.relu(self.fc1(hidden)))


def qwen2_stack(config: StreamingModelConfig, layers: int, final_norm: bool, attention: str) -> nn.Module:
    _, Qwen2Config, Qwen2Model = _import_transformers()
    values = dict(config.decoder)
    values.update(num_hidden_layers=layers, use_cache=True)
    for key in ("architectures", "torch_dtype", "dtype", "transformers_version"):
        values.pop(key, None)
    qwen = Qwen2Config(**values)
    qwen._attn_implementation = attention
    model = Qwen2Model(qwen)
    if not final_norm:
        model.norm = nn.Identity()
    return model


class RealtimeModel(nn.Module):
    """Every network of VibeVoice-Realtime except the acoustic tokenizer (a codec component)."""

    def __init__(self, config: StreamingModelConfig, attention: str = "sdpa") -> None:
        super().__init__()
        self.config = config
        hidden = config.hidden_size
        self.language_model = qwen2_stack(config, config.lm_num_hidden_layers, False, attention)
        self.tts_language_model = qwen2_stack(config, config.tts_backbone_num_hidden_layers, True, attention)
        self.tts_input_types = nn.Embedding(2, hidden)
        self.acoustic_connector = SpeechConnector(config.acoustic.vae_dim, hidden)
        self.prediction_head = DiffusionHead(config.head)
        self.tts_eos_classifier = EndOfSpeechClassifier(hidden)
        self.register_buffer("speech_scaling_factor", torch.tensor(float("nan")))
        self.register_buffer("speech_bias_factor", torch.tensor(float("nan")))


def load_realtime(folder: Path, attention: str = "sdpa") -> tuple[RealtimeModel, dict[str, torch.Tensor], StreamingModelConfig]:
    """The model of a VibeVoice-Realtime folder, strictly loaded, and the folder's remaining
    (acoustic tokenizer) tensors."""
    config_path = folder / "config.json"
    config = StreamingModelConfig.from_dict(read_json(config_path), str(config_path))
    model = RealtimeModel(config, attention)
    state = read_state_dict(folder)
    tokenizer_state = {key: state.pop(key) for key in [k for k in state if k.startswith("model.acoustic_tokenizer.")]}
    mine = take_prefix(state, "model.")
    mine.update({f"tts_eos_classifier.{k}": v for k, v in take_prefix(state, "tts_eos_classifier.").items()})
    if state:
        raise WeightsError(f"{folder}: unexpected keys: {', '.join(sorted(state)[:5])}")
    load_strict(model, mine, str(folder), "model.")
    for name in ("speech_scaling_factor", "speech_bias_factor"):
        value = getattr(model, name)
        if not bool(torch.isfinite(value)) or (name == "speech_scaling_factor" and float(value) == 0):
            raise WeightsError(f"{folder}: model.{name} is {float(value)}; expected a finite (non-zero) number")
    return model.eval(), tokenizer_state, config
