"""`vocos-mel`: the log-mel front-end of Vocos vocoders and ZipVoice/LuxTTS acoustic models."""

from __future__ import annotations

from typing import Literal

import torch
from pydantic import Field, ValidationError, model_validator

from voxpipe.core.audio import Audio
from voxpipe.core.component import Params
from voxpipe.core.errors import AudioError, ConfigError
from voxpipe.core.feature_extractor import FeatureExtractor
from voxpipe.dsp.mel import (
    hann_window,
    log_mel_spectrogram,
    mel_filterbank,
    min_num_samples,
    stft_num_frames,
    zipvoice_num_frames,
)


class VocosMelParams(Params):
    sample_rate: int = Field(24000, gt=0, description="Hz of the input waveform")
    n_fft: int = Field(1024, gt=1, description="FFT size = window length, samples")
    hop_length: int = Field(256, gt=0, description="samples between frames")
    n_mels: int = Field(100, gt=0, description="mel bins per channel")
    f_min: float = Field(0.0, ge=0.0, description="lowest filter edge, Hz")
    f_max: float | None = Field(None, description="highest filter edge, Hz (None = sample_rate / 2)")
    padding: Literal["center", "same"] = Field("center", description="Vocos padding mode of the STFT")
    frame_count: Literal["zipvoice", "vocos"] = Field(
        "zipvoice",
        description="'zipvoice': keep (N + hop // 2) // hop frames (what ZipVoice/LuxTTS models were "
        "trained on); 'vocos': every STFT frame (1 + N // hop with center padding)",
    )
    num_channels: Literal[1, 2] = Field(1, description="2 = stereo models: per-channel mels side by side")
    clamp_min: float = Field(1e-7, gt=0.0, description="floor of the mel magnitude before the log")

    @model_validator(mode="after")
    def _check_sizes(self) -> "VocosMelParams":
        if self.hop_length > self.n_fft:
            raise ValueError(f"hop_length {self.hop_length} must not exceed n_fft {self.n_fft}")
        nyquist = self.sample_rate / 2
        f_max = nyquist if self.f_max is None else self.f_max
        if not self.f_min < f_max <= nyquist:
            raise ValueError(f"need f_min < f_max <= sample_rate / 2 = {nyquist}, got f_min={self.f_min}, "
                             f"f_max={self.f_max}")
        return self


class VocosMelFeatures(FeatureExtractor):
    """Natural-log magnitude mel spectrogram (HTK scale, periodic Hann, reflect padding).

    `__call__` gives the pipeline's time-major features; `log_mel` gives Vocos's channel-major
    spectrogram with every STFT frame (what `vocos.feature_extractors.MelSpectrogramFeatures`
    returns).
    """

    name = "vocos-mel"
    description = "Vocos log-mel features (n_fft 1024, hop 256, 100 HTK mels by default), plain torch"
    Params = VocosMelParams

    def __init__(
        self,
        sample_rate: int,
        n_fft: int,
        hop_length: int,
        n_mels: int,
        f_min: float,
        f_max: float | None,
        padding: str,
        frame_count: str,
        num_channels: int,
        clamp_min: float,
    ) -> None:
        try:
            params = VocosMelParams(
                sample_rate=sample_rate, n_fft=n_fft, hop_length=hop_length, n_mels=n_mels, f_min=f_min,
                f_max=f_max, padding=padding, frame_count=frame_count, num_channels=num_channels,
                clamp_min=clamp_min,
            )
        except ValidationError as error:
            raise ConfigError(f"invalid {self.name} features parameters: {error}") from None
        self.params = params
        self.sample_rate = params.sample_rate
        self.hop_length = params.hop_length
        self.n_fft = params.n_fft
        self.n_mels = params.n_mels
        self.padding = params.padding
        self.frame_count = params.frame_count
        self.num_channels = params.num_channels
        self.feature_dim = params.n_mels * params.num_channels
        self.window = hann_window(params.n_fft)
        self.filterbank = mel_filterbank(
            params.n_fft // 2 + 1, params.sample_rate, params.n_mels, params.f_min, params.f_max
        )

    # ---- sizes -----------------------------------------------------------------------------
    def num_frames(self, num_samples: int) -> int:
        """Frames `__call__` returns for `num_samples` samples."""
        if self.frame_count == "zipvoice":
            return zipvoice_num_frames(num_samples, self.hop_length)
        return stft_num_frames(num_samples, self.n_fft, self.hop_length, self.padding)

    @property
    def min_samples(self) -> int:
        """Shortest waveform accepted (reflect padding must be shorter than the signal)."""
        return max(min_num_samples(self.n_fft, self.hop_length, self.padding), self.hop_length)

    # ---- features --------------------------------------------------------------------------
    def log_mel(self, wave: torch.Tensor) -> torch.Tensor:
        """Vocos's spectrogram: wave (..., N) -> (..., n_mels, 1 + N // hop) channel-major,
        every STFT frame (for "center" padding)."""
        self._check_length(wave.shape[-1])
        return log_mel_spectrogram(
            wave, n_fft=self.n_fft, hop_length=self.hop_length, window=self.window,
            filterbank=self.filterbank, padding=self.padding, clamp_min=self.params.clamp_min,
        )

    def __call__(self, wave: torch.Tensor) -> torch.Tensor:
        """Time-major features for the pipeline.

        num_channels 1: wave (N,) -> (T, F) or a batch (B, N) -> (B, T, F).
        num_channels 2: wave (2, N) -> (T, 2 F) or (B, 2, N) -> (B, T, 2 F), the left channel's
        mels first (ZipVoice's stereo layout).
        T = `num_frames(N)`, F = n_mels.
        """
        single = wave.dim() == self.num_channels  # (N,) mono or (2, N) stereo: no batch axis
        if single:
            wave = wave.unsqueeze(0)
        if wave.dim() != self.num_channels + 1 or (self.num_channels == 2 and wave.shape[1] != 2):
            expected = "(N,) or (B, N)" if self.num_channels == 1 else "(2, N) or (B, 2, N)"
            raise AudioError(f"{self.name} with num_channels={self.num_channels} takes waveforms {expected}, "
                             f"got shape {tuple(wave.shape)}")
        mel = self.log_mel(wave)  # (B, n_mels, T_stft) or (B, 2, n_mels, T_stft)
        mel = mel.reshape(mel.shape[0], -1, mel.shape[-1]).transpose(1, 2)  # (B, T_stft, F)
        frames = self.num_frames(wave.shape[-1])
        if mel.shape[1] < frames:  # only with padding "same": repeat the last frame, as VocosFbank does
            mel = torch.cat([mel, mel[:, -1:].expand(-1, frames - mel.shape[1], -1)], dim=1)
        mel = mel[:, :frames]
        return mel[0] if single else mel

    def extract(self, audio: Audio) -> torch.Tensor:
        """Features (T, F) of an `Audio` at this extractor's rate.

        A multi-channel `Audio` is averaged to mono for a mono extractor (as ZipVoice does).
        """
        if audio.sample_rate != self.sample_rate:
            raise AudioError(f"{self.name} features need audio at {self.sample_rate} Hz, got {audio.sample_rate} Hz; "
                             "resample it first (voxpipe.audio.io.load_audio(path, sample_rate=...))")
        samples = audio.samples
        if self.num_channels == 1 and samples.dim() == 2:
            samples = samples.mean(dim=0)
        elif self.num_channels == 2 and (samples.dim() != 2 or samples.shape[0] != 2):
            raise AudioError(f"{self.name} with num_channels=2 needs stereo audio, got {audio.num_channels} channel(s)")
        return self(samples)

    def describe(self) -> dict:
        info = super().describe()
        info.update(n_fft=self.n_fft, n_mels=self.n_mels, frame_count=self.frame_count,
                    num_channels=self.num_channels)
        return info

    def _check_length(self, num_samples: int) -> None:
        if num_samples < self.min_samples:
            raise AudioError(
                f"a waveform of {num_samples} samples ({num_samples / self.sample_rate:.4f} s) is too short for "
                f"{self.name} features (n_fft {self.n_fft}, hop {self.hop_length}): needs at least "
                f"{self.min_samples} samples"
            )
