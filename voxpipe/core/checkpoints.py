"""Strict state-dict comparison shared by every loader of official checkpoints."""

from __future__ import annotations

import torch


def _first(keys: list[str], limit: int) -> str:
    return ", ".join(keys[:limit]) + (f", ... ({len(keys)} in all)" if len(keys) > limit else "")


def state_dict_mismatches(model: torch.nn.Module, state_dict: dict[str, torch.Tensor]) -> list[str]:
    """What keeps `model.load_state_dict(state_dict, strict=True)` from working, as short
    phrases naming the first missing, unexpected and mis-shaped keys; empty when it fits."""
    expected = model.state_dict()
    missing = [k for k in expected if k not in state_dict]
    unexpected = [k for k in state_dict if k not in expected]
    mis_shaped = [
        f"{k} {tuple(state_dict[k].shape)} vs model {tuple(v.shape)}"
        for k, v in expected.items()
        if k in state_dict and state_dict[k].shape != v.shape
    ]
    problems = []
    if missing:
        problems.append(f"missing keys: {_first(missing, 5)}")
    if unexpected:
        problems.append(f"unexpected keys: {_first(unexpected, 5)}")
    if mis_shaped:
        problems.append(f"shape mismatches: {_first(mis_shaped, 3)}")
    return problems
