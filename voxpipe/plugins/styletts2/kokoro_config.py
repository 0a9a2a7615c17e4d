"""An official Kokoro `config.json` -> the `styletts2` synthesizer's component sections.

The family's YAML is the single place its sizes are set; this writes those sections for a
Kokoro-layout config (Kokoro-82M's own, or a smaller one made for tests), so a pipeline file
or a test can be produced from a published config without copying numbers by hand.
"""

from __future__ import annotations

from typing import Any

from voxpipe.core.errors import ConfigError


def sections_from_kokoro_config(config: dict[str, Any], decoder_widths: dict[str, int] | None = None) -> dict[str, dict]:
    """config.json values -> {plbert, text_encoder, prosody_predictor, decoder} sections.

    decoder_widths: `hidden` / `residual_dim` when they differ from the official 1024 / 64
    (the official Decoder hard-codes them; only our test fixtures shrink them)."""
    try:
        plbert, istft = config["plbert"], config["istftnet"]
        width, style, layers, symbols = config["hidden_dim"], config["style_dim"], config["n_layer"], config["n_token"]
        return {
            "plbert": {"type": "albert", "vocab_size": symbols, "hidden_size": plbert["hidden_size"],
                       "num_attention_heads": plbert["num_attention_heads"], "intermediate_size": plbert["intermediate_size"],
                       "max_position_embeddings": plbert["max_position_embeddings"],
                       "num_hidden_layers": plbert["num_hidden_layers"], "output_dim": width},
            "text_encoder": {"type": "styletts2", "channels": width, "kernel_size": config["text_encoder_kernel_size"],
                             "depth": layers, "n_symbols": symbols},
            "prosody_predictor": {"type": "styletts2", "style_dim": style, "hidden_dim": width, "num_layers": layers,
                                  "max_dur": config["max_dur"]},
            "decoder": {"type": "istftnet", "dim_in": width, "style_dim": style,
                        **{key: istft[key] for key in ("resblock_kernel_sizes", "upsample_rates", "upsample_initial_channel",
                                                       "resblock_dilation_sizes", "upsample_kernel_sizes",
                                                       "gen_istft_n_fft", "gen_istft_hop_size")},
                        **(decoder_widths or {})},
        }
    except (KeyError, TypeError) as error:
        raise ConfigError(f"not a Kokoro config.json layout: missing or malformed {error}") from None
