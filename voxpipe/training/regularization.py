"""The trainer's side of the Zipformer's training-time regularisers (`training.regularize`).

The regularisers themselves are `voxpipe/plugins/zipvoice/regularizers.py`; here the trainer
attaches them to the network it trains and drives their clock as train_zipvoice.py does:
batch count = optimizer steps x max_duration x processes / 50 s (+ 100000 when starting from a
checkpoint, i.e. fine-tuning or distillation), refreshed every 10 batches of an epoch. Coins come
from python's `random` and masks from the run's torch.Generator; both states are in every
checkpoint already, and the Whiten modules' adaptive probabilities are saved next to them, so a
resumed run repeats an uninterrupted one exactly.
"""

from __future__ import annotations

import random

import torch

from voxpipe.plugins.zipvoice.regularizers import (
    TrainingClock,
    attach_regularizers,
    load_whiten_state,
    official_batch_count,
    whiten_state,
)
from voxpipe.training.recipe import Recipe


def start_regularizers(recipe: Recipe, network: torch.nn.Module, generator: torch.Generator) -> TrainingClock | None:
    """Attach the official regularisers to `network` when the recipe enables them; the clock to tick."""
    if not recipe.training.regularize:
        return None
    clock = TrainingClock(generator=generator, coins=random)
    attach_regularizers(network, clock)
    return clock


def tick(clock: TrainingClock | None, recipe: Recipe, step: int, batch_in_epoch: int, world_size: int) -> None:
    """Set the batch count for optimizer step `step` (from 1), batch `batch_in_epoch` (from 1) of its epoch."""
    if clock is not None:
        clock.batch_count = official_batch_count(step, batch_in_epoch, recipe.data.max_duration, world_size,
                                                 fine_tuning=recipe.init_from is not None)


def own_state(network: torch.nn.Module) -> dict[str, float]:
    """This process's regulariser state for a checkpoint (empty when none are attached)."""
    return whiten_state(network)


def restore_state(network: torch.nn.Module, state: dict[str, float] | None) -> None:
    """Back to a checkpoint's state (a checkpoint without one, e.g. `regularize: false`, keeps the start state)."""
    load_whiten_state(network, state)


__all__ = ["own_state", "restore_state", "start_regularizers", "tick"]
