"""Typed hyper-parameters of the CosyVoice2 flow (`CausalMaskedDiffWithXvec`), from the `flow:`
entry of cosyvoice2.yaml read as data (part of the family's HyperPyYAML reader, hyperparams.py).
`read_flow_hyperparams` also dispatches CosyVoice3's `CausalMaskedDiffWithDiT` (flow_dit_config.py).

Only the configuration CosyVoice2 uses is implemented; anything else is a ConfigError naming the
key: a linear input layer with ESPnet relative positions and rel-pos self-attention, pre-norm
conformer layers without macaron feed-forward or convolution module, SiLU ("swish") feed-forward,
an Euler solver on a cosine time grid.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from voxpipe.core.errors import ConfigError

if TYPE_CHECKING:
    from voxpipe.plugins.cosyvoice.flow_dit_config import DiTFlowHyperParams


@dataclass(frozen=True)
class EncoderConfig:
    """`UpsampleConformerEncoder`: conformer over tokens, x2 upsampling, conformer over frames."""

    input_size: int
    output_size: int
    attention_heads: int
    linear_units: int
    num_blocks: int
    static_chunk_size: int  # tokens per attention chunk when streaming
    num_up_blocks: int = 4  # fixed in the official code


@dataclass(frozen=True)
class EstimatorConfig:
    """`CausalConditionalDecoder` (Matcha-TTS U-Net with causal convolutions and transformer blocks)."""

    in_channels: int
    out_channels: int
    channels: tuple[int, ...]
    attention_head_dim: int
    n_blocks: int
    num_mid_blocks: int
    num_heads: int
    static_chunk_size: int  # mel frames per attention chunk when streaming


@dataclass(frozen=True)
class FlowHyperParams:
    """`CausalMaskedDiffWithXvec` and its parts."""

    input_size: int
    output_size: int  # mel bins
    spk_embed_dim: int
    vocab_size: int
    token_mel_ratio: int
    pre_lookahead_len: int
    encoder: EncoderConfig
    estimator: EstimatorConfig
    inference_cfg_rate: float
    t_scheduler: str


_ENCODER_FIXED = {
    "input_layer": "linear", "pos_enc_layer_type": "rel_pos_espnet", "selfattention_layer_type": "rel_selfattn",
    "normalize_before": True, "use_cnn_module": False, "macaron_style": False, "activation_type": "swish",
    "use_dynamic_chunk": False, "key_bias": True,
}
"""Encoder arguments with the one value implemented (the official defaults/CosyVoice2 values)."""
_ENCODER_IGNORED = {"dropout_rate", "positional_dropout_rate", "attention_dropout_rate", "use_dynamic_left_chunk",
                    "gradient_checkpointing", "positionwise_conv_kernel_size", "cnn_module_kernel", "causal",
                    "cnn_module_norm", "global_cmvn"}
_ESTIMATOR_IGNORED = {"dropout", "num_decoding_left_chunks"}  # eval mode; the official decoder ignores the latter


def _kwargs(node: Any, where: str, expected_class: str) -> dict[str, Any]:
    if node is None:
        raise ConfigError(f"{where}: missing (expected !new:...{expected_class})")
    name = getattr(node, "class_name", expected_class)
    if name != expected_class:
        raise ConfigError(f"{where}: {getattr(node, 'target', name)} is not implemented (expected {expected_class})")
    return node.kwargs() if hasattr(node, "kwargs") else dict(node)


def _int(args: dict, key: str, where: str, default: Any = None) -> int:
    value = args.get(key, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or int(value) != value or value < 0:
        raise ConfigError(f"{where}.{key}: expected a non-negative integer, got {value!r}")
    return int(value)


def cfm_settings(decoder_args: dict[str, Any], where: str) -> tuple[str, float]:
    """(t_scheduler, inference_cfg_rate) of a `CausalConditionalCFM`'s `cfm_params`; only the cosine
    Euler solver (every official CosyVoice 2/3 file) is implemented."""
    cfm = decoder_args.get("cfm_params")
    cfm_args = cfm.kwargs() if hasattr(cfm, "kwargs") else dict(cfm or {})
    cfm_args = cfm_args.get("content", cfm_args)  # !new:omegaconf.DictConfig {content: {...}}
    scheduler = cfm_args.get("t_scheduler", "cosine")
    if scheduler != "cosine":
        raise ConfigError(f"{where}.decoder.cfm_params.t_scheduler = {scheduler!r}: only 'cosine' is implemented "
                          f"(CosyVoice 2/3)")
    if cfm_args.get("solver", "euler") != "euler":
        raise ConfigError(f"{where}.decoder.cfm_params.solver = {cfm_args.get('solver')!r}: only 'euler' is implemented")
    rate = cfm_args.get("inference_cfg_rate", 0.7)
    if isinstance(rate, bool) or not isinstance(rate, (int, float)) or rate < 0:
        raise ConfigError(f"{where}.decoder.cfm_params.inference_cfg_rate: expected a number >= 0, got {rate!r}")
    return scheduler, float(rate)


def flow_hyperparams_from_args(args: dict[str, Any], where: str = "flow") -> FlowHyperParams:
    """From the `flow: !new:cosyvoice.flow.flow.CausalMaskedDiffWithXvec` arguments (nested
    entries are the reader's tagged nodes or plain mappings)."""
    encoder_args = _kwargs(args.get("encoder"), f"{where}.encoder", "UpsampleConformerEncoder")
    for key, value in encoder_args.items():
        if key in _ENCODER_FIXED and value != _ENCODER_FIXED[key]:
            raise ConfigError(f"{where}.encoder.{key} = {value!r} is not implemented "
                              f"(CosyVoice2 uses {_ENCODER_FIXED[key]!r})")
    known = set(_ENCODER_FIXED) | _ENCODER_IGNORED | {"input_size", "output_size", "attention_heads", "linear_units",
                                                      "num_blocks", "static_chunk_size"}
    unknown = sorted(set(encoder_args) - known)
    if unknown:
        raise ConfigError(f"{where}.encoder: unknown argument(s) {unknown}")
    e = f"{where}.encoder"
    encoder = EncoderConfig(
        input_size=_int(encoder_args, "input_size", e), output_size=_int(encoder_args, "output_size", e, 256),
        attention_heads=_int(encoder_args, "attention_heads", e, 4),
        linear_units=_int(encoder_args, "linear_units", e, 2048), num_blocks=_int(encoder_args, "num_blocks", e, 6),
        static_chunk_size=_int(encoder_args, "static_chunk_size", e, 0))
    if encoder.output_size % max(encoder.attention_heads, 1) or encoder.attention_heads < 1:
        raise ConfigError(f"{e}: output_size {encoder.output_size} is not a multiple of attention_heads "
                          f"{encoder.attention_heads}")
    if encoder.input_size != encoder.output_size:
        # the official upsampling stage re-embeds output_size channels with an input_size linear layer
        raise ConfigError(f"{e}: input_size {encoder.input_size} != output_size {encoder.output_size}")

    decoder_args = _kwargs(args.get("decoder"), f"{where}.decoder", "CausalConditionalCFM")
    scheduler, cfg_rate = cfm_settings(decoder_args, where)
    estimator_args = _kwargs(decoder_args.get("estimator"), f"{where}.decoder.estimator", "CausalConditionalDecoder")
    d = f"{where}.decoder.estimator"
    act = estimator_args.get("act_fn", "snake")
    if act != "gelu":
        raise ConfigError(f"{d}.act_fn = {act!r}: only 'gelu' (CosyVoice2) is implemented")
    known = _ESTIMATOR_IGNORED | {"in_channels", "out_channels", "channels", "attention_head_dim", "n_blocks",
                                  "num_mid_blocks", "num_heads", "act_fn", "static_chunk_size"}
    unknown = sorted(set(estimator_args) - known)
    if unknown:
        raise ConfigError(f"{d}: unknown argument(s) {unknown}")
    channels = estimator_args.get("channels", [256, 256])
    if not isinstance(channels, (list, tuple)) or not channels or not all(isinstance(c, int) and c > 0 for c in channels):
        raise ConfigError(f"{d}.channels: expected a list of positive integers, got {channels!r}")
    estimator = EstimatorConfig(
        in_channels=_int(estimator_args, "in_channels", d), out_channels=_int(estimator_args, "out_channels", d),
        channels=tuple(channels), attention_head_dim=_int(estimator_args, "attention_head_dim", d, 64),
        n_blocks=_int(estimator_args, "n_blocks", d, 1), num_mid_blocks=_int(estimator_args, "num_mid_blocks", d, 2),
        num_heads=_int(estimator_args, "num_heads", d, 4),
        static_chunk_size=_int(estimator_args, "static_chunk_size", d, 50))

    f = where
    params = FlowHyperParams(
        input_size=_int(args, "input_size", f, 512), output_size=_int(args, "output_size", f, 80),
        spk_embed_dim=_int(args, "spk_embed_dim", f, 192), vocab_size=_int(args, "vocab_size", f, 4096),
        token_mel_ratio=_int(args, "token_mel_ratio", f, 2), pre_lookahead_len=_int(args, "pre_lookahead_len", f, 3),
        encoder=encoder, estimator=estimator, inference_cfg_rate=cfg_rate, t_scheduler=scheduler)
    if params.input_size != encoder.input_size:
        raise ConfigError(f"{f}.input_size {params.input_size} != encoder.input_size {encoder.input_size}")
    if estimator.out_channels != params.output_size or estimator.in_channels != 4 * params.output_size:
        raise ConfigError(f"{d}: in_channels {estimator.in_channels} / out_channels {estimator.out_channels} do not "
                          f"fit {params.output_size} mel bins (expected {4 * params.output_size} / {params.output_size}: "
                          f"noise, encoder output, speaker, prompt)")
    if params.token_mel_ratio < 1 or params.pre_lookahead_len < 1:
        raise ConfigError(f"{f}: token_mel_ratio and pre_lookahead_len must be >= 1")
    return params


FLOW_CLASSES = {"CausalMaskedDiffWithXvec": "CosyVoice2", "CausalMaskedDiffWithDiT": "CosyVoice3"}
"""The official flow classes `cosyvoice-flow` implements, and the release each belongs to."""


def read_flow_hyperparams(yaml_file: Path) -> FlowHyperParams | DiTFlowHyperParams:
    """The `flow:` entry of an official hyper-parameter file (read as data, never executed):
    CosyVoice2's `CausalMaskedDiffWithXvec` -> FlowHyperParams, CosyVoice3's
    `CausalMaskedDiffWithDiT` -> DiTFlowHyperParams; another class is a ConfigError naming it."""
    from voxpipe.plugins.cosyvoice.flow_dit_config import dit_flow_hyperparams_from_args
    from voxpipe.plugins.cosyvoice.hyperparams import read_hyperparams

    node = read_hyperparams(yaml_file).tree.get("flow")
    if node is None or not hasattr(node, "kwargs"):
        raise ConfigError(f"{yaml_file}: no 'flow: !new:...' entry (expected one of {sorted(FLOW_CLASSES)})")
    where = f"{yaml_file}: flow"
    if node.class_name == "CausalMaskedDiffWithXvec":
        return flow_hyperparams_from_args(node.kwargs(), where=where)
    if node.class_name == "CausalMaskedDiffWithDiT":
        return dit_flow_hyperparams_from_args(node.kwargs(), where=where)
    raise ConfigError(f"{where} is {node.target}; cosyvoice-flow implements "
                      + ", ".join(f"{name} ({release})" for name, release in FLOW_CLASSES.items()))
