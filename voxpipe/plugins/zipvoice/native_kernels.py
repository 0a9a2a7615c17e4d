"""Native one-pass kernels of the fused Zipformer path (native_kernels.c, built by voxpipe/core/native.py).

- `swoosh_without_constant(x, offset, slope)`: softplus(x - offset) - slope x computed in float32
  and rounded once (bf16: the correctly rounded value for every finite input);
- `relative_attention_weights(scores, p, pos, key_padding_mask)`: softmax over keys of the
  content scores plus the relative-position scores, padded keys at -1000, without materialising
  the (T, 2T-1) relative scores or rounding the sum before the softmax.

Each returns None where the native kernel does not run and the caller's torch operations must:
no C compiler, VOXPIPE_NATIVE_KERNELS=0, autograd, tracing/export/torch.compile, tensors off the
CPU or of another dtype, or more than one torch thread with a library that cannot share torch's
OpenMP pool (one native thread is no faster than torch's pool of two).

Full-size LuxTTS, 2 threads, one process alternating (docs/performance.md): the Swoosh of one
938 x 1920 bf16 activation 1.28 -> 0.64 ms, one 938-frame layer's attention weights 3.96 ->
1.22 ms; a decoder call 1.10x (bf16) and 1.05x (float32) faster, a whole bf16 synthesis 1.08x.
"""

from __future__ import annotations

import ctypes
import functools
from pathlib import Path

import torch
from torch import Tensor

from voxpipe.core import native

SOURCE = Path(__file__).with_name("native_kernels.c")
DTYPES = {torch.bfloat16: "bf16", torch.float32: "f32"}
_pointer, _size = ctypes.c_void_p, ctypes.c_int64
SIGNATURES = {
    # (x, y, n, offset, slope, threads): x and y contiguous, n values
    "swoosh": ([_pointer, _pointer, _size, ctypes.c_float, ctypes.c_float, ctypes.c_int], None),
    # (scores, p, pos, pad or NULL, weights, H, B, T, D, threads) -> 0, or -1 (no row buffer, or D above
    # the C file's MAX_POS_DIM: use torch)
    "rel_softmax": ([_pointer] * 5 + [_size] * 4 + [ctypes.c_int], ctypes.c_int),
}


@functools.cache
def _kernels() -> tuple[dict, bool] | None:
    """({(kernel, dtype): C function}, threads_ok), or None when the library is unavailable."""
    loaded = native.load(SOURCE)
    if loaded.library is None:
        return None
    functions = {}
    for kernel, (argtypes, restype) in SIGNATURES.items():
        for dtype, suffix in DTYPES.items():
            function = getattr(loaded.library, f"{kernel}_{suffix}")
            function.argtypes, function.restype = argtypes, restype
            functions[kernel, dtype] = function
    return functions, loaded.threads_ok


def prepare() -> str:
    """Build/load the kernels now (not inside the first synthesis); returns their status line."""
    _kernels()
    return native.load(SOURCE).status


def reset() -> None:
    """Forget the loaded kernels (tests: another compiler, cache or switch)."""
    _kernels.cache_clear()
    native.reset()


def _function(kernel: str, *tensors: Tensor):
    """(the C function for these tensors, threads), or None where torch must compute."""
    dtype = tensors[0].dtype
    if (dtype not in DTYPES or torch.jit.is_tracing() or torch.onnx.is_in_onnx_export()
            or torch.compiler.is_compiling()):
        return None
    for t in tensors:
        if (t.dtype != dtype or t.device.type != "cpu" or type(t) is not Tensor
                or (t.requires_grad and torch.is_grad_enabled())):
            return None
    kernels = _kernels()
    if kernels is None:
        return None
    functions, threads_ok = kernels
    threads = torch.get_num_threads()
    if threads > 1 and not threads_ok:
        return None
    return functions[kernel, dtype], threads


def swoosh_without_constant(x: Tensor, offset: float, slope: float) -> Tensor | None:
    """softplus(x - offset) - slope x, x (...) bf16 or float32 on the CPU -> same shape and dtype
    (contiguous); None where the native kernel does not run."""
    found = _function("swoosh", x)
    if found is None:
        return None
    function, threads = found
    x = x.contiguous()
    out = torch.empty_like(x, memory_format=torch.contiguous_format)
    function(x.data_ptr(), out.data_ptr(), x.numel(), offset, slope, threads)
    return out


def relative_attention_weights(scores: Tensor, p: Tensor, pos: Tensor,
                               key_padding_mask: Tensor | None) -> Tensor | None:
    """softmax_j(scores[h,b,i,j] + sum_d p[h,b,i,d] pos[h,d,T-1+j-i]), keys where
    key_padding_mask[b,j] is True at -1000 before the softmax.

    scores (H, B, T, T) the content scores q.k; p (H, B, T, D) the position queries; pos (H, D,
    2T-1) the projected relative encodings (column T-1+k: offset k); key_padding_mask (B, T) bool
    or None -> weights (H, B, T, T), the dtype of scores. None where the native kernel does not run.
    """
    heads, batch, frames, width = scores.shape
    if p.shape[:3] != (heads, batch, frames) or pos.shape != (heads, p.shape[3], 2 * frames - 1) or width != frames:
        return None
    found = _function("rel_softmax", scores, p, pos)
    if found is None:
        return None
    function, threads = found
    scores, p, pos = scores.contiguous(), p.contiguous(), pos.contiguous()
    pad = None
    if key_padding_mask is not None:
        pad = key_padding_mask.to(device="cpu", dtype=torch.uint8).contiguous()
        if pad.shape != (batch, frames):
            return None
    weights = torch.empty_like(scores, memory_format=torch.contiguous_format)
    status = function(scores.data_ptr(), p.data_ptr(), pos.data_ptr(), None if pad is None else pad.data_ptr(),
                      weights.data_ptr(), heads, batch, frames, p.shape[3], threads)
    return weights if status == 0 else None
