"""StyleTTS2's official `config.yml` (and PL-BERT's `Utils/PLBERT/config.yml`) read as data.

A trained model's folder holds `config.yml` whose `model_params` size every module
(hidden_dim, style_dim, n_layer, n_token, max_dur, dim_in, n_mels, decoder.*, diffusion.*) and
`preprocess_params` the reference mel (sr, n_fft, win_length, hop_length); PL-BERT's own
config.yml (`PLBERT_dir`) sizes the ALBERT. `sections_from_styletts2_config` turns them into the
`styletts2` synthesizer's component sections; `config_mismatches` lists where a configured
pipeline disagrees with a config.yml (so a wrong pairing fails before weights load).
The symbol table is the official `text_utils.py` one (178 entries; "'" appears twice and the
later index wins, as in the official dict).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from voxpipe.core.errors import ConfigError

_PAD = "$"
_PUNCTUATION = ';:,.!?¡¿—…"«»“” '
_LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_LETTERS_IPA = ("ɑɐɒæɓʙβɔɕçɗɖðʤəɘɚɛɜɝɞɟʄɡɠɢʛɦɧħɥʜɨɪʝɭɬɫɮʟɱɯɰŋɳɲɴøɵɸθœɶʘɹɺɾɻʀʁɽʂʃʈʧʉʊʋⱱʌɣɤʍχʎʏʑʐʒʔʡʕʢǀǁǂǃˈˌːˑʼʴʰʱʲʷˠˤ˞↓↑→↗↘"
                "'̩'ᵻ")
SYMBOLS = [_PAD, *_PUNCTUATION, *_LETTERS, *_LETTERS_IPA]
"""StyleTTS2's symbols in id order (id 0 is the pad)."""


def styletts2_vocab() -> dict[str, int]:
    """symbol -> id as the official TextCleaner builds it (later duplicates win)."""
    return {symbol: index for index, symbol in enumerate(SYMBOLS)}


def read_yaml(path: str | Path, what: str) -> dict[str, Any]:
    import yaml

    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as error:
        raise ConfigError(f"{what} {path} is not readable YAML: {error}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{what} {path}: expected a mapping at the top")
    return data


def read_styletts2_config(path: str | Path) -> dict[str, Any]:
    """An official StyleTTS2 config.yml; ConfigError unless it has `model_params` with a decoder."""
    config = read_yaml(path, "StyleTTS2 config")
    params = config.get("model_params")
    if not isinstance(params, dict) or not isinstance(params.get("decoder"), dict):
        raise ConfigError(f"StyleTTS2 config {path}: expected model_params with a decoder section (the official "
                          "config.yml layout)")
    return config


def _get(tree: dict, dotted: str, where: str) -> Any:
    found: Any = tree
    for part in dotted.split("."):
        if not isinstance(found, dict) or part not in found:
            raise ConfigError(f"{where}: missing {dotted}")
        found = found[part]
    return found


def sections_from_styletts2_config(config: dict[str, Any], plbert: dict[str, Any], where: str = "config.yml",
                                   decoder_widths: dict[str, int] | None = None) -> dict[str, dict]:
    """config.yml + PL-BERT config.yml -> the synthesizer's {plbert, text_encoder,
    prosody_predictor, decoder, style_encoder, style_denoiser} sections (style_denoiser
    `style_transformer` for `multispeaker: true`, `transformer` for single-speaker models).

    decoder_widths: `hidden` / `residual_dim` when they differ from the official 1024 / 64
    (only test fixtures shrink them)."""
    params = _get(config, "model_params", where)
    bert = plbert.get("model_params", plbert)
    width, style, layers, symbols = (_get(params, k, where) for k in ("hidden_dim", "style_dim", "n_layer", "n_token"))
    decoder = _get(params, "decoder", where)
    kind = decoder.get("type")
    if kind not in ("hifigan", "istftnet"):
        raise ConfigError(f"{where}: model_params.decoder.type is {kind!r}; expected hifigan or istftnet")
    generator_keys = ["resblock_kernel_sizes", "upsample_rates", "upsample_initial_channel", "resblock_dilation_sizes",
                      "upsample_kernel_sizes"] + (["gen_istft_n_fft", "gen_istft_hop_size"] if kind == "istftnet" else [])
    spect = config.get("preprocess_params", {}).get("spect_params", {})
    sections = {
        "plbert": {"type": "albert", "vocab_size": _get(bert, "vocab_size", "PL-BERT config"),
                   **{k: _get(bert, k, "PL-BERT config") for k in ("hidden_size", "num_attention_heads",
                                                                    "intermediate_size", "max_position_embeddings",
                                                                    "num_hidden_layers")},
                   "output_dim": width},
        "text_encoder": {"type": "styletts2", "channels": width, "kernel_size": 5, "depth": layers, "n_symbols": symbols},
        "prosody_predictor": {"type": "styletts2", "style_dim": style, "hidden_dim": width, "num_layers": layers,
                              "max_dur": _get(params, "max_dur", where)},
        "decoder": {"type": kind, "dim_in": width, "style_dim": style,
                    **{k: _get(decoder, k, where + " model_params.decoder") for k in generator_keys},
                    **(decoder_widths or {})},
        "style_encoder": {"type": "styletts2", "dim_in": _get(params, "dim_in", where), "style_dim": style,
                          "max_conv_dim": width, "n_mels": params.get("n_mels", 80),
                          "sample_rate": config.get("preprocess_params", {}).get("sr", 24000),
                          **{k: spect[k] for k in ("n_fft", "win_length", "hop_length") if k in spect}},
    }
    if "embedding_size" in bert:
        sections["plbert"]["embedding_size"] = bert["embedding_size"]
    multispeaker = params.get("multispeaker", False)
    if not isinstance(multispeaker, bool):
        raise ConfigError(f"{where}: model_params.multispeaker is {multispeaker!r}; expected true or false")
    if isinstance(params.get("diffusion"), dict):
        # multi-speaker: StyleTransformer1d (reads the reference style); single-speaker: Transformer1d
        transformer = _get(params, "diffusion.transformer", where)
        if transformer.get("use_rel_pos", False):
            raise ConfigError(f"{where}: diffusion.transformer.use_rel_pos is not supported (no published model uses it)")
        sections["style_denoiser"] = {
            "type": "style_transformer" if multispeaker else "transformer", "channels": 2 * style, "embedding_features": sections["plbert"]["hidden_size"],
            # embedding_max_length stays the transformer's default 512: build_model does not pass it
            "sigma_data": float(_get(params, "diffusion.dist.sigma_data", where)),
            **{k: _get(transformer, k, where + " diffusion.transformer")
               for k in ("num_layers", "num_heads", "head_features", "multiplier")},
        }
    return sections


def config_mismatches(expected: dict[str, dict], configured: dict[str, dict]) -> list[str]:
    """Where `configured` sections (name -> {key: value}) disagree with `expected` ones."""
    wrong = []
    for section, values in expected.items():
        have = configured.get(section)
        if have is None:
            wrong.append(f"{section}: not configured (config.yml has one)")
            continue
        for key, value in values.items():
            if key in have and have[key] != value:
                wrong.append(f"{section}.{key} = {have[key]!r} but config.yml says {value!r}")
    return wrong
