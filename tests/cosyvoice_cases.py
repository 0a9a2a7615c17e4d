"""Shared by the CosyVoice parity tests: where their fixture cases are (one folder with a
manifest.json each) and how a result is compared with the official one."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

HERE = Path(__file__).resolve().parent / "fixtures" / "cosyvoice"


def fixture_cases(prefix: str) -> list[Path]:
    """Every `<prefix>*/manifest.json` folder under tests/fixtures/cosyvoice/ and, when
    VOXPIPE_FIXTURES is set, under $VOXPIPE_FIXTURES/cosyvoice/ too; sorted, no repeats."""
    roots = [HERE]
    if os.environ.get("VOXPIPE_FIXTURES"):
        roots.append(Path(os.environ["VOXPIPE_FIXTURES"]).expanduser() / "cosyvoice")
    return sorted({path.parent for root in roots for path in root.glob(f"{prefix}*/manifest.json")})


def assert_close(name: str, ours: torch.Tensor, official: np.ndarray, tolerance: float) -> None:
    """max |ours - official| <= tolerance x max(1, max |official|), shapes equal; messages name `name`."""
    ours_np = ours.detach().cpu().numpy()
    assert ours_np.shape == official.shape, f"{name}: shape {ours_np.shape} vs official {official.shape}"
    scale = max(1.0, float(np.abs(official).max()))
    error = float(np.abs(ours_np - official).max())
    assert error <= tolerance * scale, f"{name}: max |difference| {error:.3g} > {tolerance} x {scale:.3g}"
