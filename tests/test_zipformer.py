"""Zipformer building blocks whose fast path differs from the exported one."""

import torch

from voxpipe.plugins.zipvoice.zipformer import relative_to_absolute


def reference_shift(rel: torch.Tensor) -> torch.Tensor:
    seq_len = rel.shape[-2]
    out = torch.empty(*rel.shape[:-1], seq_len)
    for i in range(seq_len):
        for j in range(seq_len):
            out[..., i, j] = rel[..., i, seq_len - 1 + j - i]
    return out


def test_relative_to_absolute_strided_view_matches_definition():
    rel = torch.randn(4, 2, 9, 17, generator=torch.Generator().manual_seed(0))
    assert torch.equal(relative_to_absolute(rel), reference_shift(rel))
    # Non-contiguous input (as matmul outputs can be) gives the same values.
    assert torch.equal(relative_to_absolute(rel.transpose(0, 1)), reference_shift(rel.transpose(0, 1)))


def test_export_path_gives_the_same_values(monkeypatch):
    rel = torch.randn(3, 1, 6, 11, generator=torch.Generator().manual_seed(1))
    monkeypatch.setattr(torch.onnx, "is_in_onnx_export", lambda: True)
    assert torch.equal(relative_to_absolute(rel), reference_shift(rel))
