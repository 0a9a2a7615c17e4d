"""Zipformer building blocks whose fast path differs from the exported one."""

import copy

import pytest
import torch

from voxpipe.core import onednn
from voxpipe.plugins.zipvoice import scaling
from voxpipe.plugins.zipvoice.scaling import (
    ActivationAndLinear,
    Linear,
    pack_weights,
    packed_weight,
)
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
    real = onednn.LINEAR
    if real is None:
        pytest.skip("this torch build has no oneDNN linear")
    monkeypatch.setattr(onednn, "LINEAR", lambda *args: calls.append(args[0].dtype) or real(*args))
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


def _fused_bf16_layers(prepack: bool) -> list[torch.nn.Module]:
    torch.manual_seed(4)
    layers = [Linear(16, 8).bfloat16(), ActivationAndLinear(16, 8, activation="SwooshL").bfloat16()]
    for layer in layers:
        set_kernels(layer, "fused", prepack=prepack)
    return layers


@pytest.mark.skipif(not scaling.bf16_weight_packing_available(), reason="no oneDNN bf16 weight packing on this CPU")
def test_prepacked_bf16_weights_give_the_same_bits_and_follow_weight_changes():
    x = torch.randn(5, 2, 16, generator=torch.Generator().manual_seed(5)).bfloat16()
    plain_layers, packed_layers = _fused_bf16_layers(False), _fused_bf16_layers(True)
    assert pack_weights(packed_layers[0]) == 1 and pack_weights(plain_layers[0]) == 0
    with torch.no_grad():
        for plain, packed in zip(plain_layers, packed_layers):
            assert packed_weight(plain, x) is None and packed_weight(packed, x).is_mkldnn
            assert torch.equal(packed(x), plain(x))
            # A permuted input: torch adds the bias after rounding the product (`_linear`), oneDNN
            # before; the packed path rounds as torch does for the same input made contiguous.
            permuted = x.permute(1, 0, 2)
            assert torch.equal(packed(permuted), plain(permuted.contiguous()))
        layer = packed_layers[0]
        first = packed_weight(layer, x)
        layer.load_state_dict({name: value + 1 for name, value in layer.state_dict().items()})  # in place
        assert packed_weight(layer, x) is not first
        assert torch.equal(layer(x), torch.nn.functional.linear(x, layer.weight, layer.bias))
        clone = copy.deepcopy(layer)  # oneDNN tensors cannot be copied: the clone packs its own
        assert torch.equal(clone(x), layer(x)) and packed_weight(clone, x) is not packed_weight(layer, x)
    assert packed_weight(layer, x) is None  # autograd on: torch's linear, gradients flow
    layer.weight.requires_grad_(True)
    layer(x).float().sum().backward()
    assert layer.weight.grad is not None


def test_prepacking_is_off_for_reference_kernels_other_dtypes_and_inference_tensors():
    x = torch.randn(3, 16)
    layer = Linear(16, 8)
    set_kernels(layer, "reference", prepack=True)
    assert not layer.prepack
    set_kernels(layer, "fused", prepack=True)
    with torch.no_grad():
        assert packed_weight(layer, x) is None  # float32: no packing, oneDNN's plain-weight kernel
    with torch.inference_mode():
        frozen = Linear(16, 8).bfloat16()  # inference tensors: no version counter to notice changes
    set_kernels(frozen, "fused", prepack=True)
    with torch.no_grad():
        assert packed_weight(frozen, x.bfloat16()) is None
        torch.testing.assert_close(frozen(x.bfloat16()), torch.nn.functional.linear(x.bfloat16(), frozen.weight, frozen.bias))
