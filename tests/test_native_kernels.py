"""Native kernels (voxpipe/core/native.py) and those of the fused Zipformer path (Swoosh, attention weights).

The kernel tests need a C compiler (CI and the project's machines have gcc); without one they
skip, and the fallback tests check that the torch path then carries on.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from voxpipe.core import native
from voxpipe.plugins.zipvoice import native_kernels, scaling

needs_compiler = pytest.mark.skipif(native.find_compiler() is None, reason="no C compiler on this machine")
OFFSETS = (1.0, 4.0)  # Swoosh-R, Swoosh-L


@pytest.fixture
def fresh_cache(tmp_path, monkeypatch):
    """Native kernels built into an empty cache directory, forgotten again afterwards."""
    monkeypatch.setenv("VOXPIPE_CACHE_DIR", str(tmp_path))
    monkeypatch.delenv(native.SWITCH_ENV, raising=False)
    native_kernels.reset()
    yield tmp_path
    native_kernels.reset()


def exact_swoosh(x: torch.Tensor, offset: float) -> torch.Tensor:
    """softplus(x - offset) - 0.08 x in float64."""
    x = x.double()
    return torch.nn.functional.softplus(x - offset) - scaling.SWOOSH_SLOPE * x


def every_bf16_value() -> torch.Tensor:
    return torch.arange(65536, dtype=torch.int32).to(torch.int16).view(torch.bfloat16)


@needs_compiler
@pytest.mark.parametrize("offset", OFFSETS)
def test_bf16_swoosh_is_correctly_rounded_for_every_input(fresh_cache, offset):
    x = every_bf16_value()
    got = native_kernels.swoosh_without_constant(x, offset, scaling.SWOOSH_SLOPE)
    assert got is not None, native_kernels.prepare()
    exact = exact_swoosh(x, offset)
    finite = torch.isfinite(exact)
    assert int(finite.sum()) == 65536 - 256  # all but the 254 NaNs and +-inf
    assert torch.equal(got[finite], exact[finite].to(torch.bfloat16))
    assert torch.isnan(got[torch.isnan(exact)]).all()  # NaN inputs, and inf - inf for +inf
    assert float(got[x == float("-inf")]) == float("inf")


@needs_compiler
@pytest.mark.parametrize("offset", OFFSETS)
def test_float32_swoosh_is_within_two_roundings(fresh_cache, offset):
    x = torch.cat([torch.linspace(-120, 120, 480_001), torch.tensor([1e-30, -1e-30, 3e38, -3e38])])
    got = native_kernels.swoosh_without_constant(x, offset, scaling.SWOOSH_SLOPE)
    assert got is not None and got.dtype == torch.float32
    exact = exact_swoosh(x, offset)
    error = (got.double() - exact).abs()
    # 2^-22 |y|: two float32 roundings (z and 0.08 x partly cancel, e.g. y ~ 8 from z ~ 12)
    assert bool((error <= 1e-7 + 2 ** -22 * exact.abs()).all()), f"max error {float(error.max()):.3e}"


@needs_compiler
def test_threads_and_layout_do_not_change_the_bits(fresh_cache):
    x = (3 * torch.randn(64, 3000, generator=torch.Generator().manual_seed(0))).bfloat16()
    with_threads = []
    for threads in (1, 2):
        previous = torch.get_num_threads()
        torch.set_num_threads(threads)
        try:
            with_threads.append(native_kernels.swoosh_without_constant(x, 4.0, scaling.SWOOSH_SLOPE))
        finally:
            torch.set_num_threads(previous)
    assert torch.equal(with_threads[0], with_threads[1])
    transposed = native_kernels.swoosh_without_constant(x.t(), 4.0, scaling.SWOOSH_SLOPE)
    assert torch.equal(transposed, with_threads[0].t())


@needs_compiler
def test_fused_path_uses_the_kernel_and_keeps_working_without_it(fresh_cache, monkeypatch):
    x = (3 * torch.randn(4000, generator=torch.Generator().manual_seed(1))).bfloat16()
    assert native_kernels.prepare().startswith("compiled with")
    native_result = scaling._swoosh_fused_without_constant(x, 4.0)
    assert torch.equal(native_result, exact_swoosh(x, 4.0).to(torch.bfloat16))

    monkeypatch.setenv(native.SWITCH_ENV, "0")
    native_kernels.reset()
    assert native_kernels.prepare() == "off (VOXPIPE_NATIVE_KERNELS=0)"
    assert native_kernels.swoosh_without_constant(x, 4.0, scaling.SWOOSH_SLOPE) is None
    torch_result = scaling._swoosh_fused_without_constant(x, 4.0)
    error = (torch_result.double() - exact_swoosh(x, 4.0)).abs() / exact_swoosh(x, 4.0).abs().clamp(min=1.0)
    assert float(error.max()) <= 2 ** -6
    assert not torch.equal(torch_result, native_result)  # the torch ops round several times


def test_without_a_compiler_the_torch_path_runs(fresh_cache, monkeypatch):
    monkeypatch.setenv("CC", "/nonexistent/cc")
    assert native.find_compiler() is None
    assert native_kernels.prepare() == "unavailable: no C compiler found (install gcc or clang, or set CC)"
    x = torch.linspace(-10, 10, 101)
    assert native_kernels.swoosh_without_constant(x, 1.0, scaling.SWOOSH_SLOPE) is None
    assert torch.allclose(scaling._swoosh_fused_without_constant(x, 1.0).double(), exact_swoosh(x, 1.0), atol=1e-6)


def test_a_refusing_compiler_is_remembered_not_retried(fresh_cache, monkeypatch, tmp_path):
    refusing = tmp_path / "refusing-cc"
    calls = tmp_path / "calls"
    refusing.write_text(f"#!/bin/sh\necho x >> {calls}\necho 'error: not today' >&2\nexit 1\n")
    refusing.chmod(0o755)
    monkeypatch.setenv("CC", str(refusing))
    status = native_kernels.prepare()
    assert status == "unavailable: refusing-cc could not build native_kernels.c: error: not today", status
    attempts = len(calls.read_text().splitlines())  # `--version` once, then each set of flags
    assert len(list((fresh_cache / "native").glob("*.failed"))) == 3
    native_kernels.reset()
    assert native_kernels.prepare() == status
    assert len(calls.read_text().splitlines()) == attempts + 1  # only `--version` again
    assert not list((fresh_cache / "native").glob("*.so"))


@needs_compiler
def test_a_built_library_is_reused(fresh_cache):
    first = native_kernels.prepare()
    libraries = list((fresh_cache / "native").glob("native_kernels-*.so"))
    assert len(libraries) == 1 and str(libraries[0]) in first
    built = os.stat(libraries[0])
    native_kernels.reset()
    assert native_kernels.prepare() == first
    again = os.stat(libraries[0])
    assert (again.st_ino, again.st_mtime_ns) == (built.st_ino, built.st_mtime_ns)
    assert not [p for p in (fresh_cache / "native").iterdir() if p.name.startswith(".")]  # no temporaries left


@needs_compiler
def test_no_native_kernel_where_autograd_or_other_dtypes_need_torch(fresh_cache):
    leaf = torch.linspace(-5, 5, 11, requires_grad=True)
    assert native_kernels.swoosh_without_constant(leaf, 1.0, scaling.SWOOSH_SLOPE) is None
    assert native_kernels.swoosh_without_constant(leaf.detach().half(), 1.0, scaling.SWOOSH_SLOPE) is None
    assert native_kernels.swoosh_without_constant(leaf.detach().double(), 1.0, scaling.SWOOSH_SLOPE) is None
    with torch.no_grad():
        assert native_kernels.swoosh_without_constant(leaf, 1.0, scaling.SWOOSH_SLOPE) is not None


def exact_attention_weights(scores, p, pos, key_padding_mask):
    """The reference definition in float64: content + relative-position scores, padding, softmax."""
    from voxpipe.plugins.zipvoice.zipformer import relative_to_absolute

    relative = torch.matmul(p.double(), pos.double().unsqueeze(1))  # (H, B, T, 2T-1)
    full = scores.double() + relative_to_absolute(relative)
    if key_padding_mask is not None:
        full = full.masked_fill(key_padding_mask.unsqueeze(1), -1000)
    return full.softmax(dim=-1)


def attention_inputs(dtype, heads=4, batch=2, frames=45, pos_dim=4, seed=0):
    generator = torch.Generator().manual_seed(seed)
    scores = (3 * torch.randn(heads, batch, frames, frames, generator=generator)).to(dtype)
    p = torch.randn(frames, batch, heads, pos_dim, generator=generator).to(dtype).permute(2, 1, 0, 3)  # a view, as in the layer
    pos = torch.randn(heads, pos_dim, 2 * frames - 1, generator=generator).to(dtype)
    mask = torch.zeros(batch, frames, dtype=torch.bool)
    mask[-1, frames - 9:] = True
    return scores, p, pos, mask


@needs_compiler
@pytest.mark.parametrize("dtype, bound", [(torch.float32, 1e-6), (torch.bfloat16, 2 ** -9)])
def test_attention_weights_match_the_definition(fresh_cache, dtype, bound):
    """Within one rounding of the weights (bf16: half a step at 0.5); the torch ops, which round the
    position scores and their sum to bf16 first, are ~10x further off in bf16."""
    scores, p, pos, mask = attention_inputs(dtype)
    got = native_kernels.relative_attention_weights(scores, p, pos, mask)
    assert got is not None and got.dtype == dtype and got.shape == scores.shape
    exact = exact_attention_weights(scores, p, pos, mask)
    assert float((got.double() - exact).abs().max()) <= bound
    assert float(got[:, -1, :, -9:].abs().max()) == 0.0  # padded keys get no weight
    no_mask = native_kernels.relative_attention_weights(scores, p, pos, None)
    assert float((no_mask.double() - exact_attention_weights(scores, p, pos, None)).abs().max()) <= bound


@needs_compiler
def test_attention_weights_propagate_nan_and_take_a_fully_padded_row(fresh_cache):
    scores, p, pos, mask = attention_inputs(torch.float32, batch=1)
    scores[1, 0, 3, 5] = float("nan")
    got = native_kernels.relative_attention_weights(scores, p, pos, None)
    exact = exact_attention_weights(scores, p, pos, None)
    assert torch.equal(torch.isnan(got), torch.isnan(exact)) and bool(torch.isnan(got[1, 0, 3]).all())
    mask[:] = True  # every key padded: -1000 everywhere (the NaN too), so uniform weights
    got = native_kernels.relative_attention_weights(scores, p, pos, mask)
    assert torch.allclose(got.double(), exact_attention_weights(scores, p, pos, mask), atol=1e-7)
    assert torch.allclose(got, torch.full_like(got, 1 / got.shape[-1]))


@needs_compiler
def test_fused_layer_takes_the_native_attention_and_matches_the_reference_layer(fresh_cache):
    from voxpipe.plugins.zipvoice.zipformer import (
        RelPositionMultiheadAttentionWeights,
        compact_rel_pos_encoding,
        set_kernels,
    )

    torch.manual_seed(0)
    layer = RelPositionMultiheadAttentionWeights(embed_dim=32, pos_dim=16, num_heads=4, query_head_dim=8, pos_head_dim=4)
    x = torch.randn(40, 2, 32)
    pos_emb = compact_rel_pos_encoding(40, 16)
    mask = torch.zeros(2, 40, dtype=torch.bool)
    mask[1, 33:] = True
    with torch.no_grad():
        reference = layer(x, pos_emb, mask)
        set_kernels(layer, "fused")
        calls = []
        original = native_kernels.relative_attention_weights
        try:
            native_kernels.relative_attention_weights = lambda *a: calls.append(1) or original(*a)
            fused = layer(x, pos_emb, mask)
        finally:
            native_kernels.relative_attention_weights = original
    assert calls and torch.allclose(fused, reference, atol=1e-6)


@needs_compiler
def test_a_cache_directory_others_may_write_to_is_made_private_first(fresh_cache):
    directory = fresh_cache / "native"
    directory.mkdir(mode=0o777)
    directory.chmod(0o777)  # e.g. made under umask 0 or by hand: anyone could plant a library there
    status = native_kernels.prepare()
    assert str(directory) in status and not directory.stat().st_mode & 0o022


@needs_compiler
def test_an_unusable_cache_directory_builds_a_private_copy_and_removes_it(fresh_cache, monkeypatch):
    import tempfile

    blocker = fresh_cache / "not-a-directory"
    blocker.write_text("")
    monkeypatch.setenv("VOXPIPE_CACHE_DIR", str(blocker))
    leftovers = set(Path(tempfile.gettempdir()).glob("voxpipe-native-*"))
    status = native_kernels.prepare()
    assert status.endswith("a private temporary copy (the cache directory is not usable)"), status
    x = torch.linspace(-5, 5, 101)
    assert native_kernels.swoosh_without_constant(x, 1.0, scaling.SWOOSH_SLOPE) is not None
    assert set(Path(tempfile.gettempdir()).glob("voxpipe-native-*")) == leftovers


@needs_compiler
def test_attention_weights_leave_wide_position_heads_to_torch(fresh_cache):
    scores, p, pos, mask = attention_inputs(torch.float32, frames=9, pos_dim=65)  # the C kernel takes D <= 64
    assert native_kernels.relative_attention_weights(scores, p, pos, mask) is None
    scores, p, pos, mask = attention_inputs(torch.float32, frames=9, pos_dim=64)
    assert native_kernels.relative_attention_weights(scores, p, pos, mask) is not None
