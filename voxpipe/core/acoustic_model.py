"""Acoustic model interface (the flow-matching family's sub-component kind `acoustic_model`).

A flow-matching model exposes two calls, and nothing about sampling: `condition()` builds the
per-utterance conditions once, `velocity()` evaluates the vector field. Guidance wraps
`velocity`, a Solver integrates it. Models that emit audio themselves are families of their own
(`voxpipe.core.synthesizer`).
"""

from __future__ import annotations

import torch

from voxpipe.core.component import Component
from voxpipe.core.conditions import Conditions
from voxpipe.core.errors import TextError


def check_condition_inputs(
    model: "AcousticModel",
    prompt_tokens: list[list[int]],
    tokens: list[list[int]],
    prompt_features: torch.Tensor,
    prompt_features_lens: torch.Tensor,
) -> None:
    """The batch agreement every `condition()` needs; empty token lists are TextErrors (the
    frame count is derived from the prompt's tokens per frame)."""
    batch = prompt_features.shape[0]
    if not (len(prompt_tokens) == len(tokens) == batch == len(prompt_features_lens)):
        raise ValueError(
            f"batch sizes differ: {len(prompt_tokens)} prompt token lists, {len(tokens)} token lists, "
            f"{batch} prompt feature rows, {len(prompt_features_lens)} prompt lengths"
        )
    if any(len(seq) == 0 for seq in prompt_tokens):
        raise TextError("a prompt transcript has no tokens: the output length is derived from it")
    if any(len(seq) == 0 for seq in tokens):
        raise TextError("a text to synthesize has no tokens")
    if prompt_features.shape[-1] != model.feature_dim:
        raise ValueError(f"prompt features have {prompt_features.shape[-1]} channels; {model.name} expects {model.feature_dim}")


class AcousticModel(Component):
    """Attributes set by implementations (read from their checkpoint's config):

    feature_dim:  F, channels of the features it consumes and emits (2 x mel bins for stereo).
    sample_rate:  Hz of the audio the features' frame grid is counted in.
    hop_length:   samples per feature frame.
    feat_scale:   features are the extractor's output times this factor.
    vocab:        token -> id the model was trained with, pad_id its padding id.
    uses_guidance_scale_input: True when the guidance scale is an input of `velocity`
                  (distilled models) rather than applied by classifier-free guidance.
    num_channels: audio channels of the output (2 for stereo models).
    """

    kind = "acoustic_model"
    feature_dim: int = 0
    sample_rate: int = 0
    hop_length: int = 0
    feat_scale: float = 1.0
    vocab: dict[str, int] | None = None
    pad_id: int = 0
    uses_guidance_scale_input: bool = False
    num_channels: int = 1

    def condition(
        self,
        prompt_tokens: list[list[int]],
        tokens: list[list[int]],
        prompt_features: torch.Tensor,
        prompt_features_lens: torch.Tensor,
        speed: float | torch.Tensor = 1.0,
    ) -> Conditions:
        """Build conditions for a batch.

        prompt_features: (B, Tp, F) already multiplied by `feat_scale`, zero past each length.
        prompt_features_lens: (B,) int64 frames. speed: > 1 is faster (fewer frames).
        """
        raise NotImplementedError

    def velocity(
        self,
        x: torch.Tensor,
        t: torch.Tensor,
        cond: Conditions,
        guidance_scale: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Vector field at state x (B, T, F) and time t (0-dim or (B,)), one decoder call."""
        raise NotImplementedError

    def describe(self) -> dict:
        info = {"sample_rate": self.sample_rate, "feature_dim": self.feature_dim, "hop_length": self.hop_length}
        if self.vocab is not None:
            info["vocab_size"] = len(self.vocab)
        return info
