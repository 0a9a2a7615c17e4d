"""benchmarks/roofline.py: the floor the side-by-side benchmark prints (work / measured GEMM rate)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import roofline


def test_counted_work_is_the_matrix_multiplies_and_convolutions():
    a, b = torch.randn(8, 16), torch.randn(16, 4)
    conv = torch.nn.Conv1d(3, 5, kernel_size=7)
    x = torch.randn(1, 3, 20)

    def synthesize():
        torch.relu(a @ b)  # element-wise work is not counted
        conv(x)

    expected = 2 * 8 * 16 * 4 + 2 * 5 * 3 * 7 * (20 - 7 + 1)
    assert round(roofline.synthesis_gflops(synthesize) * 1e9) == expected


def test_onednn_linear_of_the_fused_kernels_is_counted():
    from voxpipe.core import onednn

    x, weight, bias = torch.randn(2, 8, 16), torch.randn(4, 16), torch.randn(4)

    def synthesize():
        with torch.no_grad():
            onednn.linear(x, weight, bias)

    if onednn.LINEAR is None:
        pytest.skip("this torch build has no oneDNN linear")
    assert round(roofline.synthesis_gflops(synthesize) * 1e9) == 2 * 2 * 8 * 16 * 4


def test_floors_and_report():
    rates = {"fp32": 50.0, "int8": 100.0, "bf16": 0.0}
    assert roofline.floors(200.0, rates) == {"fp32": 4.0, "int8": 2.0}  # an unmeasured rate has no floor
    lines = roofline.report(200.0, rates, official_seconds=10.0)
    assert lines[0].startswith("work: 200.0 GFLOP")
    assert "fp32: GEMM 50 GFLOP/s" in lines[1] and "floor 4.00 s, at most 2.50x the official path" in lines[1]
    assert "floor 2.00 s, at most 5.00x" in lines[2]
    assert all("official" not in line for line in roofline.report(200.0, rates, official_seconds=None))


def test_gemm_rates_measure_each_precision_torch_runs():
    rates = roofline.gemm_rates(rows=16, repeats=1)
    assert rates["fp32"] > 0 and rates["bf16"] > 0
    assert set(rates) <= {"fp32", "bf16", "int8"}
