"""What an acoustic model's `condition()` hands to guidance and the solver."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch


@dataclass
class Conditions:
    """Per-utterance conditioning of a flow-matching acoustic model, all batch-first.

    text_condition:        (B, T, D) float, text embedding upsampled to frames.
    speech_condition:      (B, T, F) float, prompt features zero-padded to T frames.
    padding_mask:          (B, T) bool, True = frame beyond `features_lens`.
    features_lens:         (B,) int64, total frames (prompt + generated) per item.
    prompt_features_lens:  (B,) int64, prompt frames per item.
    """

    text_condition: torch.Tensor
    speech_condition: torch.Tensor
    padding_mask: torch.Tensor
    features_lens: torch.Tensor
    prompt_features_lens: torch.Tensor

    @property
    def batch_size(self) -> int:
        return int(self.text_condition.shape[0])

    @property
    def num_frames(self) -> int:
        return int(self.padding_mask.shape[1])

    def replace(self, **changes) -> "Conditions":
        return dataclasses.replace(self, **changes)
