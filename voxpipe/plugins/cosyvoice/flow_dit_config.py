"""Typed hyper-parameters of the CosyVoice3 flow (`CausalMaskedDiffWithDiT`), from the `flow:`
entry of cosyvoice3.yaml read as data (flow_config.read_flow_hyperparams dispatches here).

    flow: !new:cosyvoice.flow.flow.CausalMaskedDiffWithDiT   input_size, output_size, spk_embed_dim,
        vocab_size, token_mel_ratio, pre_lookahead_len
      pre_lookahead_layer: !new:...upsample_encoder.PreLookaheadLayer   in_channels, channels, pre_lookahead_len
      decoder: !new:...flow_matching.CausalConditionalCFM   cfm_params (cosine Euler, inference_cfg_rate)
        estimator: !new:cosyvoice.flow.DiT.dit.DiT   dim, depth, heads, dim_head, ff_mult, mel_dim, mu_dim,
                   spk_dim, static_chunk_size (mel frames), long_skip_connection

Sizes that must agree (the official module would fail or mis-shape otherwise) are checked here, each
error naming the file and key.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from voxpipe.core.errors import ConfigError
from voxpipe.plugins.cosyvoice.flow_config import _int, _kwargs, cfm_settings


@dataclass(frozen=True)
class PreLookaheadConfig:
    """`PreLookaheadLayer`: conv (in -> channels, lookahead + 1 taps), causal conv (channels -> in, 3 taps)."""

    in_channels: int
    channels: int
    pre_lookahead_len: int


@dataclass(frozen=True)
class DiTConfig:
    """The DiT estimator (F5-TTS style: AdaLN-zero blocks, rotary attention, causal conv positions)."""

    dim: int
    depth: int
    heads: int
    dim_head: int
    ff_mult: float
    mel_dim: int
    mu_dim: int
    spk_dim: int  # 0: the speaker is not an input (the official spk_dim=None)
    static_chunk_size: int  # mel frames per attention chunk when streaming
    long_skip_connection: bool = False
    conv_pos_kernel: int = 31  # CausalConvPositionEmbedding, fixed in the official code
    conv_pos_groups: int = 16
    time_freq_dim: int = 256  # TimestepEmbedding's sinusoid size, fixed in the official code


@dataclass(frozen=True)
class DiTFlowHyperParams:
    """`CausalMaskedDiffWithDiT` and its parts (field names shared with FlowHyperParams where the
    meaning is the same)."""

    input_size: int  # token embedding size = mu channels
    output_size: int  # mel bins
    spk_embed_dim: int
    vocab_size: int
    token_mel_ratio: int
    pre_lookahead_len: int
    pre_lookahead: PreLookaheadConfig
    estimator: DiTConfig
    inference_cfg_rate: float
    t_scheduler: str


_DIT_IGNORED = {"dropout", "num_decoding_left_chunks", "out_channels"}
"""Eval-mode dropout; the official DiT passes -1 (all left chunks) whatever num_decoding_left_chunks
says, and never reads out_channels (its output layer has mel_dim channels)."""
_DIT_KNOWN = _DIT_IGNORED | {"dim", "depth", "heads", "dim_head", "ff_mult", "mel_dim", "mu_dim", "spk_dim",
                             "static_chunk_size", "long_skip_connection"}


def _number(args: dict, key: str, where: str, default: Any) -> float:
    value = args.get(key, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
        raise ConfigError(f"{where}.{key}: expected a positive number, got {value!r}")
    return float(value)


def _positive(args: dict, key: str, where: str, default: Any = None) -> int:
    value = _int(args, key, where, default)
    if value < 1:
        raise ConfigError(f"{where}.{key}: expected an integer >= 1, got {value!r}")
    return value


def _pre_lookahead(node: Any, where: str) -> PreLookaheadConfig:
    args = _kwargs(node, where, "PreLookaheadLayer")
    unknown = sorted(set(args) - {"in_channels", "channels", "pre_lookahead_len"})
    if unknown:
        raise ConfigError(f"{where}: unknown argument(s) {unknown}")
    return PreLookaheadConfig(in_channels=_positive(args, "in_channels", where),
                              channels=_positive(args, "channels", where),
                              pre_lookahead_len=_positive(args, "pre_lookahead_len", where, 1))


def _dit(node: Any, where: str) -> DiTConfig:
    args = _kwargs(node, where, "DiT")
    unknown = sorted(set(args) - _DIT_KNOWN)
    if unknown:
        raise ConfigError(f"{where}: unknown argument(s) {unknown}")
    skip = args.get("long_skip_connection", False)
    if not isinstance(skip, bool):
        raise ConfigError(f"{where}.long_skip_connection: expected True or False, got {skip!r}")
    mel_dim = _positive(args, "mel_dim", where, 80)
    mu_dim = args.get("mu_dim")
    config = DiTConfig(
        dim=_positive(args, "dim", where), depth=_positive(args, "depth", where, 8),
        heads=_positive(args, "heads", where, 8), dim_head=_positive(args, "dim_head", where, 64),
        ff_mult=_number(args, "ff_mult", where, 4), mel_dim=mel_dim,
        mu_dim=mel_dim if mu_dim is None else _positive(args, "mu_dim", where),
        spk_dim=0 if args.get("spk_dim") is None else _int(args, "spk_dim", where),
        static_chunk_size=_int(args, "static_chunk_size", where, 50), long_skip_connection=skip)
    if config.dim % config.conv_pos_groups:
        raise ConfigError(f"{where}.dim = {config.dim}: the causal conv position embedding needs a multiple of "
                          f"{config.conv_pos_groups} (its conv groups)")
    if config.dim_head % 2:
        raise ConfigError(f"{where}.dim_head = {config.dim_head}: rotary embeddings need an even head size")
    return config


def dit_flow_hyperparams_from_args(args: dict[str, Any], where: str = "flow") -> DiTFlowHyperParams:
    """From the `flow: !new:cosyvoice.flow.flow.CausalMaskedDiffWithDiT` arguments (nested entries
    are the reader's tagged nodes or plain mappings)."""
    lookahead = _pre_lookahead(args.get("pre_lookahead_layer"), f"{where}.pre_lookahead_layer")
    decoder_args = _kwargs(args.get("decoder"), f"{where}.decoder", "CausalConditionalCFM")
    scheduler, cfg_rate = cfm_settings(decoder_args, where)
    d = f"{where}.decoder.estimator"
    estimator = _dit(decoder_args.get("estimator"), d)
    params = DiTFlowHyperParams(
        input_size=_positive(args, "input_size", where, 512), output_size=_positive(args, "output_size", where, 80),
        spk_embed_dim=_positive(args, "spk_embed_dim", where, 192),
        vocab_size=_positive(args, "vocab_size", where, 4096),
        token_mel_ratio=_positive(args, "token_mel_ratio", where, 2),
        pre_lookahead_len=_positive(args, "pre_lookahead_len", where, 3), pre_lookahead=lookahead,
        estimator=estimator, inference_cfg_rate=cfg_rate, t_scheduler=scheduler)
    def require(ok: bool, message: str) -> None:
        if not ok:
            raise ConfigError(message)

    require(lookahead.in_channels == params.input_size,
            f"{where}.pre_lookahead_layer.in_channels {lookahead.in_channels} != input_size {params.input_size} "
            f"(it runs on the token embeddings)")
    require(lookahead.pre_lookahead_len == params.pre_lookahead_len,
            f"{where}.pre_lookahead_layer.pre_lookahead_len {lookahead.pre_lookahead_len} != pre_lookahead_len "
            f"{params.pre_lookahead_len} (the right context the flow holds back when streaming)")
    require(estimator.mu_dim == params.input_size,
            f"{d}.mu_dim {estimator.mu_dim} != input_size {params.input_size} (mu is the repeated token embeddings)")
    require(estimator.mel_dim == params.output_size,
            f"{d}.mel_dim {estimator.mel_dim} != output_size {params.output_size} (mel bins)")
    require(estimator.spk_dim in (0, params.output_size),
            f"{d}.spk_dim {estimator.spk_dim} != output_size {params.output_size} (the projected x-vector; null or 0 "
            f"= no speaker input)")
    return params
