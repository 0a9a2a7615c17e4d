"""StyleTTS2's two readers of the phoneme ids: PL-BERT (ALBERT) and the acoustic text encoder."""

from __future__ import annotations

import torch
from pydantic import Field
from torch import nn

from voxpipe.core.component import Component
from voxpipe.core.component import Params as BaseParams
from voxpipe.core.errors import ConfigError
from voxpipe.plugins.styletts2.layers import ChannelLayerNorm, run_lstm


class PLBert(Component, nn.Module):
    """PL-BERT: an ALBERT over phoneme ids (transformers' `AlbertModel`) and a linear map of its
    last hidden states to the prosody predictor's width.

    ids (B, T) -> (B, T, hidden_size) hidden states -> (B, output_dim, T) `project`ed."""

    kind = "plbert"
    name = "albert"
    description = "PL-BERT: ALBERT (transformers) over phoneme ids + projection to the predictor width"

    class Params(BaseParams):
        vocab_size: int = Field(178, ge=1, description="phoneme ids the embedding covers (config n_token)")
        hidden_size: int = Field(768, ge=1)
        num_attention_heads: int = Field(12, ge=1)
        intermediate_size: int = Field(2048, ge=1)
        max_position_embeddings: int = Field(512, ge=1, description="longest id sequence, pads included")
        num_hidden_layers: int = Field(12, ge=1)
        embedding_size: int = Field(128, ge=1)
        output_dim: int = Field(512, ge=1, description="width of the projection (config hidden_dim)")

    def __init__(self, *, vocab_size, hidden_size, num_attention_heads, intermediate_size,
                 max_position_embeddings, num_hidden_layers, embedding_size, output_dim) -> None:
        nn.Module.__init__(self)
        try:
            from transformers import AlbertConfig, AlbertModel
        except ImportError as error:
            raise ConfigError(f"plbert 'albert' needs transformers ({error}): pip install 'voxpipe[styletts2]'") from None
        if hidden_size % num_attention_heads:
            raise ConfigError(f"plbert: hidden_size {hidden_size} is not a multiple of num_attention_heads {num_attention_heads}")
        config = AlbertConfig(vocab_size=vocab_size, hidden_size=hidden_size, num_attention_heads=num_attention_heads,
                              intermediate_size=intermediate_size, max_position_embeddings=max_position_embeddings,
                              num_hidden_layers=num_hidden_layers, embedding_size=embedding_size,
                              hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
        # the pooler is not used by TTS; official checkpoints' pooler weights are skipped by the loader
        self.bert = AlbertModel(config, add_pooling_layer=False)
        self.bert.eval()
        self.bert_encoder = nn.Linear(hidden_size, output_dim)
        self.max_positions = max_position_embeddings

    def hidden_states(self, ids: torch.Tensor, pad_mask: torch.Tensor) -> torch.Tensor:
        """(B, T) ids, (B, T) True-at-padding -> (B, T, hidden_size) last hidden states."""
        return self.bert(input_ids=ids, attention_mask=(~pad_mask).long()).last_hidden_state

    def project(self, hidden: torch.Tensor) -> torch.Tensor:
        """(B, T, hidden_size) -> (B, output_dim, T)."""
        return self.bert_encoder(hidden).transpose(1, 2)

    def describe(self) -> dict:
        return {"vocab_size": self.bert.config.vocab_size, "max_positions": self.max_positions}


class TextEncoder(Component, nn.Module):
    """Acoustic text encoder: embedding, `depth` x [conv, channel layer norm, LeakyReLU(0.2)],
    bidirectional LSTM. ids (B, T) -> (B, channels, T), zero at padding."""

    kind = "text_encoder"
    name = "styletts2"
    description = "StyleTTS2 text encoder: phoneme embedding, CNN, BiLSTM"

    class Params(BaseParams):
        channels: int = Field(512, ge=2, description="width (config hidden_dim)")
        kernel_size: int = Field(5, ge=1, description="conv kernel (config text_encoder_kernel_size)")
        depth: int = Field(3, ge=1, description="conv blocks (config n_layer)")
        n_symbols: int = Field(178, ge=1, description="phoneme ids the embedding covers (config n_token)")

    def __init__(self, *, channels, kernel_size, depth, n_symbols) -> None:
        nn.Module.__init__(self)
        if channels % 2:
            raise ConfigError(f"text_encoder: channels must be even (two LSTM directions), got {channels}")
        self.embedding = nn.Embedding(n_symbols, channels)
        self.cnn = nn.ModuleList(
            nn.Sequential(nn.Conv1d(channels, channels, kernel_size, padding=(kernel_size - 1) // 2),
                          ChannelLayerNorm(channels), nn.LeakyReLU(0.2))
            for _ in range(depth)
        )
        self.lstm = nn.LSTM(channels, channels // 2, 1, batch_first=True, bidirectional=True)

    def forward(self, ids: torch.Tensor, lengths: torch.Tensor, pad_mask: torch.Tensor) -> torch.Tensor:
        keep = (~pad_mask).unsqueeze(1).to(torch.float32)  # (B, 1, T)
        x = self.embedding(ids).transpose(1, 2) * keep
        for block in self.cnn:
            x = block(x) * keep
        x = run_lstm(self.lstm, x.transpose(1, 2), lengths).transpose(1, 2)
        return x * keep
