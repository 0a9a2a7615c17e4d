"""Inference-time equivalents of the Zipformer "scaling" building blocks.

The official modules wrap these in training-only machinery (gradient balancers, whitening
penalties, scheduled dropout, parameter limits); at inference all of that is the identity and
only the forward arithmetic below remains. The arithmetic is written in the same order as the
reference so float32 results agree to rounding. Training adds that machinery back, from
regularizers.py, through the `regularizers_of` switch below (the identity unless attached and in
training mode).
"""

from __future__ import annotations

import functools
import math

import torch
from torch import Tensor, nn

from voxpipe.core import onednn
from voxpipe.plugins.zipvoice import native_kernels

SWOOSH_SLOPE = 0.08
EXP_FINITE_BELOW = 88.0  # float32 exp(a) is finite for a <= 88.72 (FLT_MAX = e^88.72)


class _Unregularized:
    """The exact network: every training-time regulariser site is the identity."""

    @staticmethod
    def apply(name: str, x: Tensor) -> Tensor:
        return x

    @staticmethod
    def keep_mask(name: str, x: Tensor) -> None:
        return None

    @staticmethod
    def happens(name: str) -> bool:
        return False


UNREGULARIZED = _Unregularized()


def regularizers_of(module: nn.Module):
    """The switch for training-time regularisers: the `Sites` that
    `regularizers.attach_regularizers` gave `module`, while it is in training mode; otherwise the
    identity (inference, eval mode, `training.regularize: false`), i.e. the exact network."""
    sites = module.__dict__.get("regularizers")
    return sites if sites is not None and module.training else UNREGULARIZED


def _swoosh(x: Tensor, offset: float, constant: float) -> Tensor:
    """log(1 + e^(x - offset)) - 0.08 x - constant, computed in float32 in the official order.

    The operations and their order are the reference's (`SwooshLForward`/`SwooshRForward`):
    e = exp(x - offset); log(1 + e), replaced by x - offset where it overflowed to inf; then
    minus (0.08 * x), then minus the constant. Each step rounds exactly as there, so the decoder
    is bit-identical to the official code on the same machine. (A fused
    `softplus(x - offset) + (-0.08) x` is faster but rounds differently, log1p vs log(1 + .) and
    one fused multiply-add: ~1e-7 per activation, grown to ~1e-6 in a full-size decoder call and
    amplified up to (1 + 4 * scale) times by classifier-free guidance; issue 21.) The
    intermediate results are updated in place, and the overflow replacement (two more passes)
    only runs when some input can overflow; the results are the same bits.

    ONNX export keeps the fused softplus form: the exporter rewrites it into vectorized
    onnxruntime operations (voxpipe/export/onnx.py), and onnxruntime rounds differently anyway.
    """
    xf = x.float()
    if torch.onnx.is_in_onnx_export():
        return (torch.add(nn.functional.softplus(xf - offset), xf, alpha=-SWOOSH_SLOPE) - constant).to(x.dtype)
    shifted = xf - offset
    if torch.is_grad_enabled() and xf.requires_grad:
        # Training: out of place (autograd keeps the intermediates), and exp() never overflows in
        # the graph (inf * 0 would make the gradient NaN); same values as below.
        overflow = torch.isinf(shifted.detach().exp())
        log_sum = shifted.masked_fill(overflow, 0.0).exp().add(1.0).log()
        return (torch.where(overflow, shifted, log_sum) - xf * SWOOSH_SLOPE - constant).to(x.dtype)
    log_sum = shifted.exp().add_(1.0).log_()
    if shifted.numel() and not bool(shifted.max() <= EXP_FINITE_BELOW):  # else nothing overflowed (NaN: check)
        log_sum = torch.where(log_sum == float("inf"), shifted, log_sum)
    return log_sum.sub_(xf * SWOOSH_SLOPE).sub_(constant).to(x.dtype)


def _swoosh_fused_without_constant(x: Tensor, offset: float) -> Tensor:
    """softplus(x - offset) - 0.08 x (fast path; the constant is folded elsewhere).

    Same function as `_swoosh` minus its constant, rounded differently: used only by the `fused`
    kernels, never by the parity path. On the CPU this is one native pass where a C compiler is
    at hand (native_kernels.py: float32 arithmetic rounded once; bf16 results correctly rounded).
    Otherwise torch operations: float32 in the log1p form (~1e-7 relative per activation);
    bf16/fp16 in their own dtype as exp + log1p (log1p keeps log(1 + e) accurate for small e): a
    float32 round trip costs two more passes over the widest activations (a full-size bf16
    decoder call 0.714 -> 0.696 s without it, docs/performance.md).
    """
    native = native_kernels.swoosh_without_constant(x, offset, SWOOSH_SLOPE)
    if native is not None:
        return native
    if x.dtype not in (torch.bfloat16, torch.float16):
        return nn.functional.softplus(x - offset).sub_(x, alpha=SWOOSH_SLOPE)
    shifted = x - offset
    softplus = shifted.exp().log1p_()
    if shifted.numel() and not bool(shifted.max() <= _exp_finite_below(x.dtype)):  # overflow (or NaN): check
        softplus = torch.where(torch.isinf(softplus), shifted, softplus)
    return softplus.sub_(x, alpha=SWOOSH_SLOPE)


def _exp_finite_below(dtype: torch.dtype) -> float:
    """Largest a for which exp(a) is finite in `dtype` (bf16 ~88.7 like float32, fp16 ~11.09)."""
    return math.log(torch.finfo(dtype).max)


def swoosh_l(x: Tensor) -> Tensor:
    """Swoosh-L, log(1 + e^(x-4)) - 0.08 x - 0.035 (feed-forward modules). Computed in float32."""
    return _swoosh(x, 4.0, 0.035)


def swoosh_r(x: Tensor) -> Tensor:
    """Swoosh-R, log(1 + e^(x-1)) - 0.08 x - 0.313261687 (conv modules). Computed in float32."""
    return _swoosh(x, 1.0, 0.313261687)


class SwooshR(nn.Module):
    """Stand-alone Swoosh-R module (time-embedding MLPs).

    The reference evaluates the stand-alone module with `logaddexp`, which rounds slightly
    differently from the fused form in `swoosh_r`; keep both to stay bit-close.
    """

    def forward(self, x: Tensor) -> Tensor:
        zero = torch.zeros((), dtype=x.dtype, device=x.device)
        return torch.logaddexp(zero, x - 1.0) - 0.08 * x - 0.313261687


SWOOSH_OFFSETS = {"SwooshL": (4.0, 0.035), "SwooshR": (1.0, 0.313261687)}


def _linear(x: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:
    """`nn.functional.linear`, computed for a non-contiguous (..., in) input (the convolution
    module's permuted output) the way torch computes it when the weight requires grad: one
    (N, in) @ (in, out) GEMM on the flattened input, then the bias. Without this, weights that do
    not require grad (a model built under `torch.inference_mode()`, or `requires_grad_(False)`)
    send torch's matmul down its broadcast path, which copies the weight once per frame (a
    full-size bf16 decoder call: 5.9 s instead of 0.7 s). Same bits either way."""
    if x.dim() < 3 or x.is_contiguous():
        return nn.functional.linear(x, weight, bias)
    out = x.reshape(-1, x.shape[-1]).mm(weight.t()).view(*x.shape[:-1], weight.shape[0])
    return out if bias is None else out.add_(bias)


_ONEDNN_PACK_WEIGHT = onednn.onednn_op("_reorder_linear_weight")


@functools.cache
def bf16_weight_packing_available() -> bool:
    """Whether oneDNN can pack bf16 weights on this CPU (torch's reorder needs AVX-512 BW/VL/DQ or
    AVX-NE-CONVERT and raises elsewhere)."""
    if onednn.LINEAR is None or _ONEDNN_PACK_WEIGHT is None:
        return False
    try:
        _ONEDNN_PACK_WEIGHT(torch.zeros(8, 8, dtype=torch.bfloat16), None)
    except RuntimeError:
        return False
    return True


def fused_linear(x: Tensor, weight: Tensor, bias: Tensor | None, packed: Tensor | None = None) -> Tensor:
    """x @ W^T + b for the fused kernels: x (..., in), weight (out, in), bias (out,) -> (..., out).

    float32 on the CPU runs on oneDNN's GEMM instead of MKL's (torch's default, and what the
    reference kernels keep for their bits; voxpipe/core/onednn.py). `packed`, the weight already
    in oneDNN's layout (`packed_weight`), runs on that kernel too. Everything else (bf16, which
    torch already sends to oneDNN; autograd, which that kernel lacks; export and tracing) goes
    through `_linear`.
    """
    if packed is not None:
        return onednn.LINEAR(x, packed, bias, "none", [], "")
    if onednn.runs_fp32_linear(x):
        return onednn.LINEAR(x, weight, bias, "none", [], "")
    return _linear(x, weight, bias)


def _values_key(*tensors: Tensor | None) -> tuple | None:
    """What identifies the values of `tensors` (None entries skipped): their version counters
    (bumped by every in-place change, load_state_dict included) and addresses (`.to()`, a new
    tensor); None for inference tensors, which have no version counter."""
    present = [t for t in tensors if t is not None]
    if any(t.is_inference() for t in present):
        return None
    return tuple((t._version, t.data_ptr()) for t in present)


class _PackedWeight:
    """One module's weight in oneDNN's blocked layout with the (version, address) of the weight it
    was made from, as one entry (a reader never sees one without the other). Deep copies and
    pickles start empty: oneDNN tensors have no storage to copy, and the copy's own weight is
    packed on its first call."""

    def __init__(self) -> None:
        self.entry: tuple[tuple, Tensor | None] | None = None  # ((version, address), packed), swapped whole

    def __reduce__(self):
        return (_PackedWeight, ())


def packed_weight(module: nn.Module, x: Tensor) -> Tensor | None:
    """`module.weight` (out, in) in oneDNN's blocked GEMM layout, for bf16 inference on the CPU
    when `module.prepack` is set; None elsewhere (then `fused_linear` uses the plain weight).
    x (..., in): the input about to be multiplied.

    oneDNN reorders a plain bf16 weight into its blocked layout inside every call; packing it
    once saves that pass over every weight and gives the same bits as torch's `linear` on a
    contiguous input (on a permuted one, which `_linear` multiplies and then adds the bias to,
    the bias is added before the single rounding instead of after it): a full-size LuxTTS bf16
    decoder call 4 % faster at 380 frames (a stream's first chunk), 6 % at 822
    (docs/performance.md), for a second copy of the Linear weights in memory. The copy is rebuilt
    when the weight changes (load_state_dict, `.to()`: its version counter or address says so).
    Not used under autograd, tracing or export (tensor subclasses such as fake tensors); weights
    made under `torch.inference_mode()` have no version counter and stay unpacked, as do CPUs or
    oneDNN builds without this bf16 path (`bf16_weight_packing_available`).
    """
    # The common case first and cheap: this runs for every Linear of every decoder call.
    if not module.prepack or torch.is_grad_enabled() or type(x) is not Tensor or torch.jit.is_tracing():
        return None
    weight = module.weight
    if weight.dtype != torch.bfloat16 or x.dtype != weight.dtype:
        return None
    key = _values_key(weight)
    if key is None:
        return None
    cache = module.__dict__.get("_packed_weight")
    if cache is None:
        cache = module._packed_weight = _PackedWeight()
    elif cache.entry is not None and cache.entry[0] == key:
        return cache.entry[1]
    packed = None
    if weight.device.type == "cpu" and bf16_weight_packing_available():
        packed = _ONEDNN_PACK_WEIGHT(weight.detach(), None)
    cache.entry = (key, packed)
    return packed


def pack_weights(module: nn.Module) -> int:
    """Pack now (not in the first call) the weights of every module under `module` whose
    `prepack` is set; returns how many were packed."""
    packed = 0
    with torch.no_grad():
        for sub in module.modules():
            if getattr(sub, "prepack", False):
                packed += packed_weight(sub, torch.empty(0, dtype=sub.weight.dtype)) is not None
    return packed


class Linear(nn.Linear):
    """`nn.Linear` (same parameters, state-dict names and reference arithmetic) computing through
    `_linear` like `ActivationAndLinear` (one GEMM for permuted inputs whatever requires_grad),
    and through `fused_linear` with the fused kernels (`prepack`: with a packed bf16 weight)."""

    fused: bool = False
    prepack: bool = False

    def forward(self, x: Tensor) -> Tensor:
        if self.fused:
            return fused_linear(x, self.weight, self.bias, packed_weight(self, x))
        return _linear(x, self.weight, self.bias)


class ActivationAndLinear(nn.Module):
    """Swoosh activation followed by a linear layer (dropout is inference-time identity).

    Parameters are `weight` (out, in) and `bias` (out,) directly on this module, matching the
    official `ActivationDropoutAndLinear` state-dict names. With `fused = True` (fast path) the
    activation's constant is folded into the bias, W (s - c) + b = W s + (b - c W 1), which
    saves one full pass over the widest activations of the model.
    """

    fused: bool = False
    prepack: bool = False

    def __init__(self, in_channels: int, out_channels: int, activation: str, bias: bool = True) -> None:
        super().__init__()
        if activation not in ("SwooshL", "SwooshR"):
            raise ValueError(f"unknown activation {activation!r}; expected SwooshL or SwooshR")
        self.activation = activation
        self.weight = nn.Parameter(torch.empty(out_channels, in_channels))
        self.bias = nn.Parameter(torch.empty(out_channels)) if bias else None
        nn.init.xavier_uniform_(self.weight)
        if self.bias is not None:
            nn.init.zeros_(self.bias)

    def forward(self, x: Tensor) -> Tensor:
        if self.fused and not torch.onnx.is_in_onnx_export():
            offset, _ = SWOOSH_OFFSETS[self.activation]
            x = _swoosh_fused_without_constant(x, offset)
            return fused_linear(x, self.weight, self._folded_bias(), packed_weight(self, x))
        x = swoosh_l(x) if self.activation == "SwooshL" else swoosh_r(x)
        x = regularizers_of(self).apply("dropout", x)
        return _linear(x, self.weight, self.bias)

    def _folded_bias(self) -> Tensor:
        """b - c * W.sum(in) (out,), recomputed only when the weights changed (version counters).

        Weights created under `torch.inference_mode()` have no version counter (and can still be
        changed in place there, e.g. by load_state_dict), so for them it is recomputed every call.
        """
        key = _values_key(self.weight, self.bias)
        if key is None or getattr(self, "_folded_key", None) != key:
            _, constant = SWOOSH_OFFSETS[self.activation]
            with torch.no_grad():
                folded = -constant * self.weight.float().sum(dim=1)
                if self.bias is not None:
                    folded = folded + self.bias.float()
            self._folded = folded.to(self.weight.dtype)
            self._folded_key = key
        return self._folded


class BiasNorm(nn.Module):
    """Zipformer's LayerNorm replacement over the last dim.

    y = x * exp(log_scale) / sqrt(mean((x - bias)^2)): the bias only enters the scale, the
    output is x itself rescaled. Parameters: `bias` (C,), `log_scale` () scalar.
    """

    def __init__(self, num_channels: int) -> None:
        super().__init__()
        self.log_scale = nn.Parameter(torch.tensor(1.0))
        self.bias = nn.Parameter(torch.zeros(num_channels))

    fused: bool = False

    def forward(self, x: Tensor) -> Tensor:
        if self.fused:  # fast path: one reduction pass (rsqrt of the mean square), same function
            mean_square = torch.linalg.vector_norm(x - self.bias, dim=-1, keepdim=True).square_().div_(x.shape[-1])
            return x * mean_square.rsqrt_().mul_(self.log_scale.exp())
        log_scale = regularizers_of(self).apply("log_scale_limit", self.log_scale)
        scales = (torch.mean((x - self.bias) ** 2, dim=-1, keepdim=True) ** -0.5) * log_scale.exp()
        return x * scales
