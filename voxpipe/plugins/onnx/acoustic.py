"""`zipvoice-onnx` / `zipvoice-distill-onnx`: ZipVoice acoustic models run by onnxruntime.

Same interface as the torch `zipvoice` components (`condition()` once per utterance,
`velocity()` once per solver step), so a Pipeline swaps one for the other in YAML. Loads two
graph layouts from a model directory, told apart by their inputs:

voxpipe exports (`voxpipe export onnx`):
  text_encoder: tokens (B, S), tokens_lens (B,) -> text_embed (B, S, D); frame count and
                upsampling are computed here exactly as the torch model does (batches allowed).
  fm_decoder:   t, x, text_condition, speech_condition, guidance_scale, padding_mask -> v.
official exports (k2-fsa/ZipVoice `onnx_export.py`, the files LuxTTS publishes):
  text_encoder: tokens (1, St), prompt_tokens (1, Sp), prompt_features_len (), speed () ->
                text_condition (1, T, D), T computed inside the graph.
  fm_decoder:   t, x, text_condition, speech_condition, guidance_scale -> v (no padding mask, so
                batch items are decoded one at a time on their own lengths).

Known difference of the official text-encoder graph, reproduced on purpose: it computes the
total frame count as ceil(prompt_frames / prompt_tokens * (prompt_tokens + tokens) / speed), i.e.
the prompt's own frames are divided by `speed` too. The torch model (and voxpipe's graphs) add
the prompt frames unscaled: prompt_frames + ceil(prompt_frames / prompt_tokens * tokens / speed).
At speed 1 both agree; at speed s the official graph generates prompt_frames * (1 - 1/s) frames
fewer (LuxTTS's default s = 1.3: 23% of the prompt's length shorter).

Both decoder graphs take the guidance scale as an input: the distilled model embeds it, the
guided (ZipVoice) graph applies classifier-free guidance inside. So these components pair with
guidance `distilled` in a pipeline (for ZipVoice: `scale: 1.0`, the official default).
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar, Literal

import numpy as np
import torch
from pydantic import Field

from voxpipe.core.acoustic_model import AcousticModel, check_condition_inputs
from voxpipe.core.component import Params
from voxpipe.core.conditions import Conditions
from voxpipe.core.errors import ConfigError, TextError, WeightsError
from voxpipe.plugins.onnx.sessions import input_names, make_session, metadata

FEATURE_SCALE = 0.1  # ZipVoice features are the Vocos log-mel times 0.1
HOP_LENGTHS = {"vocos": 256}
PAD_TOKEN = "_"
GRAPH_FILES = {"text_encoder": "text_encoder", "fm_decoder": "fm_decoder"}
OFFICIAL_TEXT_ENCODER_INPUTS = 4  # tokens, prompt_tokens, prompt_features_len, speed
OFFICIAL_DECODER_INPUTS = 5  # t, x, text_condition, speech_condition, guidance_scale


class OnnxZipVoiceParams(Params):
    weights: str = Field(description="directory with text_encoder[_int8].onnx, fm_decoder[_int8].onnx, tokens.txt")
    precision: Literal["fp32", "int8"] = Field("fp32", description="int8 loads the *_int8.onnx graphs")
    text_encoder: str | None = Field(None, description="text-encoder graph file name (default by precision)")
    fm_decoder: str | None = Field(None, description="decoder graph file name (default by precision)")
    tokens: str | None = Field(None, description="vocabulary file name (default tokens.txt)")
    config: str | None = Field(None, description="model config name (default model.json, else config.json)")
    intra_op_threads: int | None = Field(None, ge=1, description="threads inside one operator (None: all cores)")
    inter_op_threads: int = Field(1, ge=1, description="operators run in parallel")


def _scalar(value, dtype) -> np.ndarray:
    return np.asarray(value, dtype=dtype).reshape(())


class OnnxZipVoiceAcousticModel(AcousticModel):
    """ZipVoice (classifier-free guidance inside the graph) run by onnxruntime."""

    name: ClassVar[str] = "zipvoice-onnx"
    description: ClassVar[str] = "ZipVoice on onnxruntime (voxpipe or official ONNX export; fp32 or int8)"
    Params: ClassVar[type[Params]] = OnnxZipVoiceParams
    uses_guidance_scale_input = True

    def __init__(self, weights: str, precision: str, text_encoder: str | None,
                 fm_decoder: str | None, tokens: str | None, config: str | None,
                 intra_op_threads: int | None, inter_op_threads: int) -> None:
        from voxpipe.core.weights import resolve_path
        from voxpipe.plugins.zipvoice.loading import CONFIG_NAMES, TOKENS_NAMES, find_file, read_config, read_tokens

        directory = Path(resolve_path(weights, what=f"{self.name} model directory"))
        if not directory.is_dir():
            raise WeightsError(f"{self.name}: model directory not found: {directory}")
        suffix = "_int8" if precision == "int8" else ""
        self.files = {
            "text_encoder": find_file(directory, text_encoder, (f"text_encoder{suffix}.onnx",), "text-encoder graph"),
            "fm_decoder": find_file(directory, fm_decoder, (f"fm_decoder{suffix}.onnx",), "decoder graph"),
            "tokens": find_file(directory, tokens, TOKENS_NAMES, "tokens file"),
        }
        self.vocab = read_tokens(self.files["tokens"])
        if PAD_TOKEN not in self.vocab:
            raise ConfigError(f"{self.files['tokens']} has no pad token {PAD_TOKEN!r}")
        self.pad_id = self.vocab[PAD_TOKEN]
        model_config: dict = {}
        try:
            self.files["config"] = find_file(directory, config, CONFIG_NAMES, "model config")
            model_config = read_config(self.files["config"])
        except WeightsError:
            if config is not None:
                raise
        feature = model_config.get("feature", {})
        self.sample_rate = int(feature.get("sampling_rate", 24000))
        self.hop_length = HOP_LENGTHS.get(str(feature.get("type", "vocos")), 256)
        self.feat_scale = FEATURE_SCALE
        self.precision = precision

        self.text_encoder = make_session(self.files["text_encoder"], intra_op_threads, inter_op_threads)
        self.fm_decoder = make_session(self.files["fm_decoder"], intra_op_threads, inter_op_threads)
        self.text_encoder_inputs = input_names(self.text_encoder)
        self.decoder_inputs = input_names(self.fm_decoder)
        self.official_text_encoder = len(self.text_encoder_inputs) == OFFICIAL_TEXT_ENCODER_INPUTS
        self.official_decoder = len(self.decoder_inputs) == OFFICIAL_DECODER_INPUTS
        decoder_meta = metadata(self.fm_decoder)
        feat_dim = decoder_meta.get("feat_dim") or self.fm_decoder.get_inputs()[1].shape[-1]
        if not str(feat_dim).isdigit():
            raise WeightsError(f"{self.files['fm_decoder']}: cannot tell the feature dim (no feat_dim metadata, dynamic x)")
        self.feature_dim = int(feat_dim)
        self.guidance = decoder_meta.get("guidance", "unknown")

    # ---- conditions ------------------------------------------------------------------------------
    def condition(self, prompt_tokens, tokens, prompt_features, prompt_features_lens, speed=1.0) -> Conditions:
        """As the torch model's `condition()`: prompt_features (B, Tp, F) already times feat_scale."""
        check_condition_inputs(self, prompt_tokens, tokens, prompt_features, prompt_features_lens)
        lens = torch.as_tensor(prompt_features_lens, dtype=torch.int64)
        if self.official_text_encoder:
            text_condition, features_lens = self._official_text_condition(prompt_tokens, tokens, lens, speed)
        else:
            text_condition, features_lens = self._text_condition(prompt_tokens, tokens, lens, speed)
        from voxpipe.plugins.zipvoice.model import ZipVoice, make_pad_mask

        num_frames = text_condition.shape[1]
        speech_condition = ZipVoice.speech_condition(prompt_features.float(), lens, num_frames)
        return Conditions(
            text_condition=text_condition,
            speech_condition=speech_condition,
            padding_mask=make_pad_mask(features_lens, num_frames),
            features_lens=features_lens,
            prompt_features_lens=lens,
        )

    def _text_condition(self, prompt_tokens, tokens, lens, speed) -> tuple[torch.Tensor, torch.Tensor]:
        from voxpipe.plugins.zipvoice.model import pad_token_lists, predict_features_lens, upsample_text

        cat_tokens = [list(p) + list(t) for p, t in zip(prompt_tokens, tokens)]
        padded = pad_token_lists(cat_tokens, self.pad_id)
        cat_lens = torch.tensor([len(seq) for seq in cat_tokens], dtype=torch.int64)
        (embed,) = self.text_encoder.run(None, dict(zip(self.text_encoder_inputs, (padded.numpy(), cat_lens.numpy()))))
        prompt_tokens_lens = torch.tensor([len(p) for p in prompt_tokens], dtype=torch.int64)
        tokens_lens = torch.tensor([len(t) for t in tokens], dtype=torch.int64)
        features_lens = predict_features_lens(lens, prompt_tokens_lens, tokens_lens, speed)
        text_condition, _ = upsample_text(torch.from_numpy(embed), cat_lens, features_lens)
        return text_condition, features_lens

    def _official_text_condition(self, prompt_tokens, tokens, lens, speed) -> tuple[torch.Tensor, torch.Tensor]:
        """One graph call per item (the official graph assumes a batch of one, unpadded)."""
        speeds = torch.as_tensor(speed, dtype=torch.float32).reshape(-1).expand(len(tokens))
        rows = []
        for i, (prompt, text) in enumerate(zip(prompt_tokens, tokens)):
            feeds = (np.asarray([text], np.int64), np.asarray([prompt], np.int64),
                     _scalar(int(lens[i]), np.int64), _scalar(float(speeds[i]), np.float32))
            (row,) = self.text_encoder.run(None, dict(zip(self.text_encoder_inputs, feeds)))
            if row.shape[1] <= int(lens[i]):
                raise TextError(
                    f"the official text-encoder graph predicts {row.shape[1]} frames for item {i}, not more than "
                    f"its {int(lens[i])} prompt frames (it divides the prompt's frames by speed {float(speeds[i])}); "
                    "use a longer text, a lower speed or a voxpipe export"
                )
            rows.append(torch.from_numpy(row[0]))
        features_lens = torch.tensor([row.shape[0] for row in rows], dtype=torch.int64)
        text_condition = torch.zeros(len(rows), int(features_lens.max()), rows[0].shape[-1])
        for i, row in enumerate(rows):
            text_condition[i, : row.shape[0]] = row
        return text_condition, features_lens

    # ---- velocity --------------------------------------------------------------------------------
    def velocity(self, x, t, cond: Conditions, guidance_scale=None) -> torch.Tensor:
        """One decoder-graph call at state x (B, T, F), time t (0-dim, or (B,) all equal) -> (B, T, F)."""
        if guidance_scale is None:
            raise ConfigError(f"{self.name} takes the guidance scale as an input: use guidance 'distilled'")
        t = torch.as_tensor(t, dtype=torch.float32).reshape(-1)
        if t.numel() > 1 and not bool((t == t[0]).all()):
            raise ValueError(f"{self.name} decodes one time value per call; got {t.tolist()}")
        scale = torch.as_tensor(guidance_scale, dtype=torch.float32).reshape(-1)
        if scale.numel() > 1 and not bool((scale == scale[0]).all()):
            raise ValueError(f"{self.name} takes one guidance scale per call; got {scale.tolist()}")
        t_feed, scale_feed = _scalar(t[0], np.float32), _scalar(scale[0], np.float32)
        x32 = x.detach().to(torch.float32)
        if not self.official_decoder:
            feeds = (t_feed, x32.numpy(), cond.text_condition.numpy(), cond.speech_condition.numpy(), scale_feed,
                     cond.padding_mask.numpy())
            return torch.from_numpy(self.fm_decoder.run(None, dict(zip(self.decoder_inputs, feeds)))[0]).to(x.dtype)
        v = torch.zeros_like(x32)
        for i, length in enumerate(cond.features_lens.tolist()):
            feeds = (t_feed, *(np.ascontiguousarray(a[i : i + 1, :length].numpy())
                               for a in (x32, cond.text_condition, cond.speech_condition)), scale_feed)
            v[i, :length] = torch.from_numpy(self.fm_decoder.run(None, dict(zip(self.decoder_inputs, feeds)))[0][0])
        return v.to(x.dtype)

    def describe(self) -> dict:
        info = super().describe()
        layout = "official" if self.official_text_encoder else "voxpipe"
        info.update(backend="onnxruntime", precision=self.precision, graph_layout=layout,
                    feat_scale=self.feat_scale, num_channels=self.num_channels)
        return info


class OnnxZipVoiceDistillAcousticModel(OnnxZipVoiceAcousticModel):
    """ZipVoice-Distill / LuxTTS (guidance scale embedded by the model) run by onnxruntime."""

    name: ClassVar[str] = "zipvoice-distill-onnx"
    description: ClassVar[str] = "ZipVoice-Distill / LuxTTS on onnxruntime (voxpipe or official ONNX export; fp32 or int8)"


COMPONENTS = (OnnxZipVoiceAcousticModel, OnnxZipVoiceDistillAcousticModel)
