"""The `kernels` choice of torch components: reference (the official operation order, the parity
path) or fused (the same functions with faster CPU kernels, rounding differently; bounded in the
families' tests). A module class opts in by declaring a class attribute `fused = False`."""

from __future__ import annotations

from torch import nn

KERNELS = ("reference", "fused")


def set_fused(module: nn.Module, kernels: str) -> None:
    """Set `fused` on every module under `module` whose class declares it (ValueError for an
    unknown `kernels`)."""
    if kernels not in KERNELS:
        raise ValueError(f"kernels={kernels!r}; expected one of {KERNELS}")
    for sub in module.modules():
        if hasattr(type(sub), "fused"):
            sub.fused = kernels == "fused"
