"""Zipformer building blocks whose fast path differs from the exported one."""

import pytest
import torch

from voxpipe.plugins.zipvoice import scaling
from voxpipe.plugins.zipvoice.scaling import Linear
from voxpipe.plugins.zipvoice.zipformer import (
    depthwise_conv_over_time,
    relative_to_absolute,
    set_kernels,
)


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


@pytest.mark.parametrize("batch", [1, 3])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_depthwise_conv_over_time_is_the_conv_in_channels_last_memory(batch, dtype):
    frames, channels = 20, 16
    conv = torch.nn.Conv1d(channels, channels, 7, padding=3, groups=channels).to(dtype)
    generator = torch.Generator().manual_seed(2)
    x = torch.randn(frames, batch, channels, generator=generator).to(dtype).permute(1, 2, 0)  # (B, C, T) of (T, B, C)
    with torch.no_grad():
        got, expected = depthwise_conv_over_time(conv, x), conv(x)
    tolerance = 1e-6 if dtype == torch.float32 else 2e-2
    torch.testing.assert_close(got.float(), expected.float(), rtol=tolerance, atol=tolerance)
    # channels-last result = oneDNN's NHWC depthwise kernel ran; its slow 1-D path returns (B, C, T) contiguous
    assert got.shape == (batch, channels, frames) and got.stride() == (frames * channels, 1, channels)


def test_fused_linear_runs_float32_inference_on_onednn_and_keeps_autograd(monkeypatch):
    calls = []
    real = scaling._ONEDNN_LINEAR
    if real is None:
        pytest.skip("this torch build has no oneDNN linear")
    monkeypatch.setattr(scaling, "_ONEDNN_LINEAR", lambda *args: calls.append(args[0].dtype) or real(*args))
    generator = torch.Generator().manual_seed(3)
    x, weight, bias = (torch.randn(*shape, generator=generator) for shape in ((5, 2, 8), (4, 8), (4,)))
    with torch.no_grad():
        got = scaling.fused_linear(x, weight, bias)
        scaling.fused_linear(x.bfloat16(), weight.bfloat16(), bias.bfloat16())  # torch's own bf16 path
    assert calls == [torch.float32]
    torch.testing.assert_close(got, torch.nn.functional.linear(x, weight, bias), rtol=1e-5, atol=1e-5)
    trained = weight.clone().requires_grad_()  # oneDNN's kernel has no backward: training keeps torch's
    scaling.fused_linear(x, trained, bias).sum().backward()
    assert calls == [torch.float32] and trained.grad is not None


def test_linear_keeps_the_state_dict_names_and_switches_with_the_kernels():
    layer = Linear(8, 4)
    assert list(layer.state_dict()) == ["weight", "bias"] and isinstance(layer, torch.nn.Linear)
    set_kernels(layer, "fused")
    assert layer.fused
    set_kernels(layer, "reference")
    assert not layer.fused
