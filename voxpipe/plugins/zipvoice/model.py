"""ZipVoice acoustic models (k2-fsa/ZipVoice): ZipVoice, ZipVoiceDistill, ZipVoiceDialog,
ZipVoiceDialogStereo, inference only.

A model = token embedding + Zipformer text encoder (text -> per-token vectors of width
feat_dim) + Zipformer flow-matching decoder (velocity of [x_t | text condition | speech
condition] at time t). Sampling (guidance, ODE solver) lives outside the model.

Constructor keyword arguments are those of the official classes, i.e. the keys of
`model.json["model"]` plus `vocab_size`, `pad_id` (and dialog `spk_a_id`, `spk_b_id`), so the
parameter names are the official ones and checkpoints load with `strict=True`.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from voxpipe.plugins.zipvoice.zipformer import TTSZipformer


def pad_token_lists(tokens: Sequence[Sequence[int]], pad_id: int, device: torch.device | None = None) -> Tensor:
    """Append one pad to every sequence, then right-pad to the longest -> (B, max_len + 1) int64.

    The appended pad is the row every frame past the last token's share reads (see
    `upsample_text`); it is masked out as a key inside the text encoder.
    """
    length = max(len(seq) for seq in tokens) + 1
    rows = [list(seq) + [pad_id] * (length - len(seq)) for seq in tokens]
    return torch.tensor(rows, dtype=torch.int64, device=device)


def make_pad_mask(lengths: Tensor, max_len: int = 0) -> Tensor:
    """(B,) lengths -> (B, max(max_len, max length)) bool, True at positions >= length."""
    max_len = max(max_len, int(lengths.max()))
    return torch.arange(max_len, device=lengths.device).unsqueeze(0) >= lengths.unsqueeze(1)


def upsample_text(embed: Tensor, tokens_lens: Tensor, features_lens: Tensor) -> tuple[Tensor, Tensor]:
    """Spread token vectors over frames with a uniform ("average") duration per token.

    embed (B, S, D) with S > every tokens_len; tokens_lens, features_lens (B,) int64.
    Item b gives each of its n tokens d = features_len // n frames; the remaining frames,
    including batch padding up to T = max(features_lens), take row n (the appended pad).
    Returns text_condition (B, T, D) and padding_mask (B, T) bool (True = beyond features_len).
    """
    num_frames = int(features_lens.max())
    padding_mask = make_pad_mask(features_lens, num_frames)
    frame = torch.arange(num_frames, device=embed.device).unsqueeze(0)  # (1, T)
    n = tokens_lens.to(embed.device).unsqueeze(1)  # (B, 1)
    duration = features_lens.to(embed.device).unsqueeze(1) // n
    covered = frame < duration * n
    index = torch.where(covered, frame // duration.clamp(min=1), n)  # (B, T)
    text_condition = torch.gather(embed, 1, index.unsqueeze(-1).expand(-1, -1, embed.shape[-1]))
    return text_condition, padding_mask


def predict_features_lens(
    prompt_features_lens: Tensor, prompt_tokens_lens: Tensor, tokens_lens: Tensor, speed: float | Tensor
) -> Tensor:
    """Total frames = prompt frames + ceil(prompt frames / prompt tokens * target tokens / speed).

    Evaluated in float32 and with no epsilon before the ceiling, as the reference does (an exact
    quotient such as 290.0 must stay 290). All (B,) int64 except speed (float or (B,)).
    """
    if isinstance(speed, Tensor):
        speed = speed.to(device=prompt_features_lens.device, dtype=torch.float32)
    ratio = prompt_features_lens.to(torch.float32) / prompt_tokens_lens.to(torch.float32)
    target = torch.ceil(ratio * tokens_lens.to(torch.float32) / speed).to(torch.int64)
    return prompt_features_lens + target


def _per_batch(value: Tensor, batch_size: int) -> Tensor:
    """Scalar, (B,) or (B, 1, 1) tensor -> (B,)."""
    while value.dim() > 1 and value.shape[-1] == 1:
        value = value.squeeze(-1)
    if value.dim() == 0:
        value = value.repeat(batch_size)
    return value


class ZipVoice(nn.Module):
    """The ZipVoice flow-matching TTS model (defaults = the published ZipVoice config)."""

    def __init__(
        self,
        fm_decoder_downsampling_factor: Sequence[int] = (1, 2, 4, 2, 1),
        fm_decoder_num_layers: Sequence[int] = (2, 2, 4, 4, 4),
        fm_decoder_cnn_module_kernel: Sequence[int] = (31, 15, 7, 15, 31),
        fm_decoder_feedforward_dim: int = 1536,
        fm_decoder_num_heads: int = 4,
        fm_decoder_dim: int = 512,
        text_encoder_num_layers: int = 4,
        text_encoder_feedforward_dim: int = 512,
        text_encoder_cnn_module_kernel: int = 9,
        text_encoder_num_heads: int = 4,
        text_encoder_dim: int = 192,
        time_embed_dim: int = 192,
        text_embed_dim: int = 192,
        query_head_dim: int = 32,
        value_head_dim: int = 12,
        pos_head_dim: int = 4,
        pos_dim: int = 48,
        feat_dim: int = 100,
        vocab_size: int = 26,
        pad_id: int = 0,
    ) -> None:
        super().__init__()
        self.feat_dim = feat_dim
        self.pad_id = pad_id
        self.fm_decoder = self._build_fm_decoder(
            feat_dim=feat_dim,
            downsampling_factor=tuple(fm_decoder_downsampling_factor),
            num_encoder_layers=tuple(fm_decoder_num_layers),
            cnn_module_kernel=tuple(fm_decoder_cnn_module_kernel),
            encoder_dim=fm_decoder_dim,
            feedforward_dim=fm_decoder_feedforward_dim,
            num_heads=fm_decoder_num_heads,
            query_head_dim=query_head_dim,
            pos_head_dim=pos_head_dim,
            value_head_dim=value_head_dim,
            pos_dim=pos_dim,
            time_embed_dim=time_embed_dim,
        )
        self.text_encoder = TTSZipformer(
            in_dim=text_embed_dim,
            out_dim=feat_dim,
            downsampling_factor=1,
            num_encoder_layers=text_encoder_num_layers,
            cnn_module_kernel=text_encoder_cnn_module_kernel,
            encoder_dim=text_encoder_dim,
            feedforward_dim=text_encoder_feedforward_dim,
            num_heads=text_encoder_num_heads,
            query_head_dim=query_head_dim,
            pos_head_dim=pos_head_dim,
            value_head_dim=value_head_dim,
            pos_dim=pos_dim,
        )
        self.embed = nn.Embedding(vocab_size, text_embed_dim)

    # -- construction hooks for the variants ------------------------------------------------
    def _build_fm_decoder(self, feat_dim: int, **kwargs) -> TTSZipformer:
        # Decoder input: [x_t | text condition | speech condition], each feat_dim wide.
        return TTSZipformer(in_dim=3 * feat_dim, out_dim=feat_dim, **kwargs)

    @property
    def feature_dim(self) -> int:
        """F, channels of the features this model generates."""
        return self.feat_dim

    @property
    def device(self) -> torch.device:
        return self.embed.weight.device

    # -- text side --------------------------------------------------------------------------
    def encode_text(self, tokens: Sequence[Sequence[int]]) -> tuple[Tensor, Tensor]:
        """Token id lists -> text-encoder output (B, S, feat_dim) and lengths (B,) int64.

        S = longest sequence + 1 (one pad appended to all); positions >= each length are keys
        masked out in the encoder.
        """
        padded = pad_token_lists(tokens, self.pad_id, device=self.device)
        tokens_lens = torch.tensor([len(seq) for seq in tokens], dtype=torch.int64, device=self.device)
        mask = make_pad_mask(tokens_lens, padded.shape[1])
        embed = self.text_encoder(self.embed(padded), t=None, padding_mask=mask)
        return embed, tokens_lens

    def text_condition(
        self,
        prompt_tokens: Sequence[Sequence[int]],
        tokens: Sequence[Sequence[int]],
        prompt_features_lens: Tensor,
        speed: float | Tensor = 1.0,
    ) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """"predict" duration mode: encode prompt+target text, size the output from the prompt's
        frames-per-token ratio, upsample to frames.

        Returns text_embed (B, S, D), features_lens (B,) int64, text_condition (B, T, D),
        padding_mask (B, T) bool.
        """
        cat_tokens = [list(p) + list(t) for p, t in zip(prompt_tokens, tokens)]
        embed, cat_lens = self.encode_text(cat_tokens)
        device = self.device
        prompt_features_lens = prompt_features_lens.to(device)
        prompt_tokens_lens = torch.tensor([len(p) for p in prompt_tokens], dtype=torch.int64, device=device)
        tokens_lens = torch.tensor([len(t) for t in tokens], dtype=torch.int64, device=device)
        features_lens = predict_features_lens(prompt_features_lens, prompt_tokens_lens, tokens_lens, speed)
        text_condition, padding_mask = upsample_text(embed, cat_lens, features_lens)
        return embed, features_lens, text_condition, padding_mask

    @staticmethod
    def speech_condition(prompt_features: Tensor, prompt_features_lens: Tensor, num_frames: int) -> Tensor:
        """Prompt features (B, Tp, F) -> (B, num_frames, F), zero at/after each prompt length."""
        padded = nn.functional.pad(prompt_features, (0, 0, 0, num_frames - prompt_features.shape[1]))
        outside = make_pad_mask(prompt_features_lens.to(padded.device), num_frames)[:, :num_frames]
        return torch.where(outside.unsqueeze(-1), torch.zeros_like(padded), padded)

    # -- decoder ----------------------------------------------------------------------------
    def forward_fm_decoder(
        self,
        t: Tensor,
        xt: Tensor,
        text_condition: Tensor,
        speech_condition: Tensor,
        padding_mask: Tensor | None = None,
        guidance_scale: Tensor | None = None,
    ) -> Tensor:
        """Velocity at state xt (B, T, F) and time t (scalar, (B,) or (B, 1, 1) tensor in [0, 1]).

        text_condition (B, T, feat_dim), speech_condition (B, T, F), padding_mask (B, T)
        True=pad; guidance_scale (distilled models only) scalar or (B,). Returns (B, T, F).
        """
        batch_size = xt.shape[0]
        x = torch.cat([xt, text_condition, speech_condition], dim=2)
        t = _per_batch(t, batch_size)
        if guidance_scale is not None:
            guidance_scale = _per_batch(guidance_scale, batch_size)
            return self.fm_decoder(x=x, t=t, padding_mask=padding_mask, guidance_scale=guidance_scale)
        return self.fm_decoder(x=x, t=t, padding_mask=padding_mask)


class ZipVoiceDistill(ZipVoice):
    """ZipVoice-Distill: the decoder also embeds the guidance scale (added to the time
    embedding), so one decoder call replaces classifier-free guidance."""

    def _build_fm_decoder(self, feat_dim: int, **kwargs) -> TTSZipformer:
        return TTSZipformer(in_dim=3 * feat_dim, out_dim=feat_dim, use_guidance_scale_embed=True, **kwargs)


class ZipVoiceDialog(ZipVoice):
    """ZipVoice-Dialog: two-speaker text with `[S1]`/`[S2]` turn tokens; after the text
    encoder every non-pad position gets the embedding of the speaker whose turn it is."""

    def __init__(self, *args, spk_a_id: int = 360, spk_b_id: int = 361, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.spk_a_id = spk_a_id
        self.spk_b_id = spk_b_id
        self.spk_embed = nn.Embedding(2, self.feat_dim)

    def speaker_index(self, padded_tokens: Tensor) -> Tensor:
        """(B, S) ids -> (B, S) speaker row 0/1, or -1 at pad ids.

        The row is the parity of the number of turn tokens seen so far, the turn token itself
        included (so the first `[S1]` and its text use row 1, as in the reference).
        """
        is_turn = (padded_tokens == self.spk_a_id) | (padded_tokens == self.spk_b_id)
        parity = is_turn.long().cumsum(dim=1) % 2
        return torch.where(padded_tokens == self.pad_id, -1, parity)

    def encode_text(self, tokens: Sequence[Sequence[int]]) -> tuple[Tensor, Tensor]:
        embed, tokens_lens = super().encode_text(tokens)
        speaker = self.speaker_index(pad_token_lists(tokens, self.pad_id, device=self.device))
        for row in (0, 1):
            selected = (speaker == row).unsqueeze(-1)
            embed = torch.where(selected, embed + self.spk_embed.weight[row].to(embed.dtype), embed)
        return embed, tokens_lens


class ZipVoiceDialogStereo(ZipVoiceDialog):
    """ZipVoice-Dialog stereo: features are two channels of feat_dim each (channel 0 first,
    F = 2 * feat_dim). The decoder has stereo (5*feat_dim -> 2*feat_dim) and mono
    (3*feat_dim -> feat_dim) projections around one shared Zipformer."""

    def _build_fm_decoder(self, feat_dim: int, **kwargs) -> TTSZipformer:
        return TTSZipformer(in_dim=(5 * feat_dim, 3 * feat_dim), out_dim=(2 * feat_dim, feat_dim), two_stream=True, **kwargs)

    @property
    def feature_dim(self) -> int:
        return 2 * self.feat_dim
