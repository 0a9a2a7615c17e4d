"""Torch thread count for tests: small batch-1 models run faster on one thread on a shared
machine (thread hand-offs dominate), and the setting is restored afterwards."""

from __future__ import annotations

import contextlib

import torch


@contextlib.contextmanager
def one_torch_thread():
    """Run the block with `torch.set_num_threads(1)`, then restore the previous count."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)
