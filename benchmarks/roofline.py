"""The lowest time the CPU at hand allows for a synthesis: its work in FLOPs over measured GEMM rates.

A speed ratio only says how two programs compare; the floor says how much any program could still
gain on this machine. `synthesis_gflops` counts the matrix-multiply and convolution work of one
synthesis with `torch.utils.flop_counter` (what dominates a Zipformer decoder; element-wise ops,
softmax and FFTs are not counted, so the floor is a lower bound). `gemm_rates` measures the
sustained rate of the decoder's commonest multiply, (frames x 512) @ (512 x 1536), in each
precision torch offers on CPU: fp32, bf16 and int8 (a dynamically quantized Linear, fbgemm: the
int8 rate without VNNI is bounded by the AVX2 pmaddubsw path). floor = work / rate.
"""

from __future__ import annotations

import math

import time
import warnings

# The decoder's commonest GEMM: feed-forward and convolution projections of the 512-wide stacks.
GEMM_SHAPE = (512, 1536)


def _rate(call, flops: float, repeats: int) -> float:
    """Sustained rate of `call` in GFLOP/s after a warm-up (best of three batches of `repeats`)."""
    for _ in range(2):
        call()
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        for _ in range(repeats):
            call()
        best = min(best, (time.perf_counter() - start) / repeats)
    return flops / best / 1e9


def gemm_rates(rows: int, repeats: int = 10) -> dict[str, float]:
    """GFLOP/s (int8: GOP/s) of a (rows x 512) @ (512 x 1536) Linear in fp32, bf16 and int8, at the
    current torch thread count. A precision torch cannot run here is left out."""
    import torch

    in_features, out_features = GEMM_SHAPE
    flops = 2.0 * rows * in_features * out_features
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(rows, in_features, generator=generator)
    linear = torch.nn.Linear(in_features, out_features)
    rates: dict[str, float] = {}
    with torch.inference_mode():
        rates["fp32"] = _rate(lambda: linear(x), flops, repeats)
        x_bf16, linear_bf16 = x.bfloat16(), torch.nn.Linear(in_features, out_features).bfloat16()
        # emulated bf16 can be 10x slower than fp32: fewer repeats keep the measurement short
        rates["bf16"] = _rate(lambda: linear_bf16(x_bf16), flops, max(1, repeats // 5))
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # torch.ao's deprecation notice (the kernels are unchanged)
                quantized = torch.ao.quantization.quantize_dynamic(
                    torch.nn.Sequential(linear), {torch.nn.Linear}, dtype=torch.qint8)
            rates["int8"] = _rate(lambda: quantized(x), flops, repeats)
        except (RuntimeError, AttributeError):  # no quantized engine in this torch build
            pass
    return rates


def _onednn_linear_flops(x_shape, weight_shape, *args, out_shape=None, **kwargs) -> int:
    """oneDNN's linear (the fused kernels' GEMMs): 2 * outputs * inputs per output."""
    return 2 * math.prod(out_shape) * x_shape[-1]


def synthesis_gflops(synthesize) -> float:
    """GFLOP of matrix multiplies and convolutions in one call of `synthesize()` (torch code only),
    oneDNN's linear included (torch's counter knows only aten's matrix operators, so a fused-kernel
    path would otherwise count ~6 % of its work)."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    custom = {}
    if torch.backends.mkldnn.is_available() and hasattr(torch.ops.mkldnn, "_linear_pointwise"):
        custom[torch.ops.mkldnn._linear_pointwise] = _onednn_linear_flops  # keyed by packet
    counter = FlopCounterMode(display=False, custom_mapping=custom)
    with counter:
        synthesize()
    return counter.get_total_flops() / 1e9


def floors(gflop: float, rates: dict[str, float]) -> dict[str, float]:
    """Seconds the counted work takes at each measured rate: no program can be faster at that precision."""
    return {precision: gflop / rate for precision, rate in rates.items() if rate > 0}


def report(gflop: float, rates: dict[str, float], official_seconds: float | None) -> list[str]:
    """Printable lines: the work, each precision's rate and floor, and the largest speed-up over
    the official path that each precision could give on this machine."""
    lines = [f"work: {gflop:.1f} GFLOP per synthesis (matrix multiplies + convolutions, torch.utils.flop_counter)"]
    for precision, seconds in floors(gflop, rates).items():
        line = f"  {precision}: GEMM {rates[precision]:.0f} GFLOP/s at {GEMM_SHAPE} -> floor {seconds:.2f} s"
        if official_seconds:
            line += f", at most {official_seconds / seconds:.2f}x the official path"
        lines.append(line)
    return lines
