"""Training checkpoints that resume exactly, and the random-number state they carry.

A checkpoint `<dir>/checkpoint-<step>.pt` is one `torch.save` mapping, written atomically
(`voxpipe.core.files.write_atomically`: a killed run never leaves a truncated file behind):

  step, epoch, batch_in_epoch   where training stands (the sampler state: lhotse's
                                DynamicBucketingSampler is a pure function of its seed, the
                                epoch and the batches already taken from it)
  seconds_seen                  audio seconds trained on (all processes; Eden's hour counter)
  world_size                    processes that wrote it (resuming needs the same number)
  model, model_avg              state dicts of the network and its running average (or None)
  optimizer, scheduler, scaler  their state dicts (scaler: fp16 grad scaler, or None)
  rng                           one entry per process: torch CPU (+ CUDA) generator states,
                                python `random`, numpy, the loss's own torch.Generator and the
                                Whiten probabilities of the Zipformer regularisers (`regularizers`)
  model_config, vocab           the network's model.json and tokens, to export without the recipe
  loss                          training.loss of the run (a resume with another loss is refused)
  regularize                    training.regularize of the run (a resume with the other value is refused)
  teacher                       distill-stage2: the EMA teacher's state dict (else None; the fixed
                                stage-1 teacher is reloaded from the recipe's `teacher`)
  teacher_digest                distill-stage1: sha256 of that teacher's weights (a resume with another
                                teacher is refused); else None

Everything in it loads with `torch.load(weights_only=True)` (no pickled code).
"""

from __future__ import annotations

import random
import re
from pathlib import Path
from typing import Any

import numpy as np
import torch

from voxpipe.core.errors import WeightsError
from voxpipe.core.files import write_atomically

CHECKPOINT_PATTERN = re.compile(r"^checkpoint-(\d+)\.pt$")


def checkpoint_path(directory: Path, step: int) -> Path:
    return Path(directory) / f"checkpoint-{step}.pt"


def checkpoint_step(path: Path) -> int:
    """The optimizer step in a checkpoint's file name (checkpoint-<step>.pt)."""
    match = CHECKPOINT_PATTERN.match(Path(path).name)
    if match is None:
        raise ValueError(f"{path}: not a checkpoint-<step>.pt file")
    return int(match.group(1))


def list_checkpoints(directory: Path) -> list[Path]:
    """Checkpoints in `directory`, oldest (lowest step) first."""
    directory = Path(directory)
    if not directory.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in directory.iterdir() if (m := CHECKPOINT_PATTERN.match(p.name))]
    return [path for _, path in sorted(found)]


def latest_checkpoint(directory: Path) -> Path | None:
    found = list_checkpoints(directory)
    return found[-1] if found else None


def save_checkpoint(path: Path, state: dict[str, Any], keep_last: int | None = None) -> Path:
    """Write `state` atomically to `path`; then delete all but the newest `keep_last` checkpoints."""
    write_atomically(path, lambda temporary: torch.save(state, temporary))
    if keep_last is not None:
        for old in list_checkpoints(path.parent)[:-keep_last]:
            old.unlink(missing_ok=True)
    return path


def load_checkpoint(path: Path) -> dict[str, Any]:
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # noqa: BLE001 - a truncated or foreign file is a WeightsError
        raise WeightsError(f"cannot read training checkpoint {path}: {type(error).__name__}: {error}") from None
    missing = [key for key in ("step", "model", "optimizer", "rng") if key not in state]
    if missing:
        raise WeightsError(f"{path} is not a voxpipe training checkpoint (missing {', '.join(missing)})")
    return state


# ---- random-number state -------------------------------------------------------------------------
def rng_state(generator: torch.Generator) -> dict[str, Any]:
    """Every random source training draws from, as plain tensors/lists (weights_only-loadable)."""
    numpy_state = np.random.get_state(legacy=False)
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "python": _to_lists(random.getstate()),
        "numpy": {"key": torch.from_numpy(numpy_state["state"]["key"].astype(np.int64)),
                  "pos": int(numpy_state["state"]["pos"]), "has_gauss": int(numpy_state["has_gauss"]),
                  "gauss": float(numpy_state["gauss"])},
        "generator": generator.get_state(),
    }


def set_rng_state(state: dict[str, Any], generator: torch.Generator) -> None:
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    random.setstate(_to_tuples(state["python"]))
    numpy_state = state["numpy"]
    np.random.set_state({"bit_generator": "MT19937",
                         "state": {"key": numpy_state["key"].numpy().astype(np.uint32), "pos": numpy_state["pos"]},
                         "has_gauss": numpy_state["has_gauss"], "gauss": numpy_state["gauss"]})
    generator.set_state(state["generator"])


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % (1 << 32))
    torch.manual_seed(seed)


def _to_lists(value):
    return [_to_lists(item) for item in value] if isinstance(value, (tuple, list)) else value


def _to_tuples(value):
    return tuple(_to_tuples(item) for item in value) if isinstance(value, list) else value
