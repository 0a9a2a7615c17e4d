"""CosyVoice's prompt front-end: what `encode_voice` makes of a reference clip.

- `CosyVoiceSpeechTokenizer` (kind `speech_tokenizer`): 16 kHz audio -> Whisper-style 128-bin
  log-mel (n_fft 400, hop 160, log10, floor max - 8, (x + 4) / 4) -> `speech_tokenizer_v2.onnx`
  (CosyVoice2) or `speech_tokenizer_v3.onnx` (CosyVoice3: same inputs, the official front-end
  runs both alike) -> 25 Hz speech tokens.
- `CampPlusSpeakerEncoder` (kind `speaker_embedding`): 16 kHz audio -> 80-bin Kaldi fbank
  (25 ms Povey window, 10 ms shift, pre-emphasis 0.97, DC removal, no dither, natural log of
  the power mel energies), minus its mean over time -> `campplus.onnx` -> (192,) x-vector.
- `prompt_mel`: 24 kHz audio -> the flow's mel (Matcha-TTS `mel_spectrogram`: Slaney mel
  filters, |STFT| with (n_fft - hop) / 2 reflect padding, log(clamp(1e-5))), (T, 80); its
  settings are the yaml's `feat_extractor` (fmax 8000 in cosyvoice2.yaml, null = 12 kHz in
  cosyvoice3.yaml).

The filterbanks and the fbank are written here in numpy/torch (no torchaudio: its PyPI wheels do
not load beside the CPU torch; no librosa/whisper at run time); the tests compare them with
librosa's Slaney filters and with kaldi-native-fbank's output stored in a fixture. The ONNX
graphs run through onnxruntime, imported when a graph is loaded.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from pydantic import Field

from voxpipe.core.component import Component
from voxpipe.core.component import Params as BaseParams
from voxpipe.core.errors import AudioError, ConfigError, WeightsError

SPEECH_TOKENIZER_FILE = "speech_tokenizer_v2.onnx"
SPEECH_TOKENIZER_FILES = {"cosyvoice2": SPEECH_TOKENIZER_FILE, "cosyvoice3": "speech_tokenizer_v3.onnx"}
"""The official speech tokenizer of each version (cli/cosyvoice.py's CosyVoice2 / CosyVoice3)."""
SPEAKER_ENCODER_FILE = "campplus.onnx"
FRONTEND_RATE = 16000
MAX_PROMPT_SECONDS = 30.0


# ---- filterbanks and features ------------------------------------------------------------------------
def _slaney_hz_to_mel(hz: np.ndarray) -> np.ndarray:
    hz = np.asanyarray(hz, dtype=np.float64)
    f_sp, min_log_hz = 200.0 / 3, 1000.0
    min_log_mel, logstep = min_log_hz / f_sp, math.log(6.4) / 27.0
    mels = hz / f_sp
    return np.where(hz >= min_log_hz, min_log_mel + np.log(np.maximum(hz, 1e-10) / min_log_hz) / logstep, mels)


def _slaney_mel_to_hz(mels: np.ndarray) -> np.ndarray:
    f_sp, min_log_hz = 200.0 / 3, 1000.0
    min_log_mel, logstep = min_log_hz / f_sp, math.log(6.4) / 27.0
    return np.where(mels >= min_log_mel, min_log_hz * np.exp(logstep * (mels - min_log_mel)), f_sp * mels)


def slaney_mel_filters(sample_rate: int, n_fft: int, n_mels: int, fmin: float = 0.0,
                       fmax: float | None = None) -> np.ndarray:
    """(n_mels, n_fft // 2 + 1) float32 Slaney-normalised mel filters (librosa's default
    `filters.mel`, which Whisper and Matcha-TTS use)."""
    fmax = sample_rate / 2 if fmax is None else fmax
    fft_freqs = np.linspace(0, sample_rate / 2, 1 + n_fft // 2)
    mel_points = np.linspace(_slaney_hz_to_mel(fmin), _slaney_hz_to_mel(fmax), n_mels + 2)
    edges = _slaney_mel_to_hz(mel_points)
    widths = np.diff(edges)
    ramps = edges[:, None] - fft_freqs[None, :]
    weights = np.zeros((n_mels, 1 + n_fft // 2), dtype=np.float32)
    for i in range(n_mels):
        lower = -ramps[i] / widths[i]
        upper = ramps[i + 2] / widths[i + 1]
        weights[i] = np.maximum(0, np.minimum(lower, upper))
    weights *= (2.0 / (edges[2:n_mels + 2] - edges[:n_mels]))[:, None]
    return weights


def whisper_log_mel(wave: torch.Tensor, n_mels: int = 128) -> torch.Tensor:
    """16 kHz wave (N,) -> (n_mels, N // 160) Whisper log-mel (as `whisper.log_mel_spectrogram`)."""
    window = torch.hann_window(400)
    stft = torch.stft(wave.float(), 400, 160, window=window, return_complex=True)
    power = stft[..., :-1].abs() ** 2
    filters = torch.from_numpy(slaney_mel_filters(FRONTEND_RATE, 400, n_mels))
    log_spec = torch.clamp(filters @ power, min=1e-10).log10()
    log_spec = torch.maximum(log_spec, log_spec.max() - 8.0)
    return (log_spec + 4.0) / 4.0


def kaldi_fbank(wave: torch.Tensor, num_mel_bins: int = 80, sample_rate: int = FRONTEND_RATE) -> torch.Tensor:
    """(N,) float wave -> (frames, num_mel_bins) Kaldi fbank with the defaults CosyVoice uses
    (torchaudio.compliance.kaldi.fbank(dither=0)): 25 ms frames every 10 ms (snip edges), DC
    removal, pre-emphasis 0.97, Povey window, FFT padded to a power of two, power spectrum,
    Kaldi-mel triangles from 20 Hz to Nyquist, natural log floored at float32 epsilon."""
    frame_length, shift = int(sample_rate * 0.025), int(sample_rate * 0.010)
    wave = wave.float()
    if wave.shape[-1] < frame_length:
        raise AudioError(f"audio too short for an fbank frame: {wave.shape[-1]} samples < {frame_length}")
    frames = wave.unfold(0, frame_length, shift)  # (M, frame_length)
    frames = frames - frames.mean(dim=1, keepdim=True)
    previous = torch.cat([frames[:, :1], frames[:, :-1]], dim=1)
    frames = frames - 0.97 * previous
    window = torch.hann_window(frame_length, periodic=False).pow(0.85)
    frames = frames * window
    padded = 1 << (frame_length - 1).bit_length()
    frames = F.pad(frames, (0, padded - frame_length))
    power = torch.fft.rfft(frames).abs().pow(2)  # (M, padded // 2 + 1)
    banks = torch.from_numpy(_kaldi_mel_banks(num_mel_bins, padded, sample_rate, 20.0, sample_rate / 2))
    energies = power @ banks.T
    return energies.clamp(min=torch.finfo(torch.float32).eps).log()


def _kaldi_mel_banks(num_bins: int, padded: int, sample_rate: int, low: float, high: float) -> np.ndarray:
    """(num_bins, padded // 2 + 1) float32 triangles on Kaldi's mel scale (1127 ln(1 + f / 700));
    the Nyquist column is zero as in Kaldi."""
    def mel(f):
        return 1127.0 * np.log(1.0 + np.asarray(f, dtype=np.float64) / 700.0)

    half = padded // 2
    mel_low, mel_high = mel(low), mel(high)
    delta = (mel_high - mel_low) / (num_bins + 1)
    bins = np.arange(num_bins)[:, None]
    left, center, right = mel_low + bins * delta, mel_low + (bins + 1) * delta, mel_low + (bins + 2) * delta
    freqs_mel = mel(sample_rate / padded * np.arange(half))[None, :]
    up = (freqs_mel - left) / (center - left)
    down = (right - freqs_mel) / (right - center)
    banks = np.maximum(0.0, np.minimum(up, down))
    return np.pad(banks, ((0, 0), (0, 1))).astype(np.float32)


def prompt_mel(wave: torch.Tensor, *, n_fft: int = 1920, num_mels: int = 80, sampling_rate: int = 24000,
               hop_size: int = 480, win_size: int = 1920, fmin: float = 0.0, fmax: float | None = 8000.0) -> torch.Tensor:
    """24 kHz wave (N,) -> (T, num_mels) flow mel as Matcha-TTS's `mel_spectrogram(center=False)`:
    reflect padding (n_fft - hop) / 2 each side, |STFT| as sqrt(power + 1e-9), Slaney mel,
    log(clamp(1e-5)). T = N // hop (for N a multiple of hop)."""
    pad = (n_fft - hop_size) // 2
    padded = F.pad(wave.float()[None, None], (pad, pad), mode="reflect")[0, 0]
    spec = torch.stft(padded, n_fft, hop_length=hop_size, win_length=win_size, window=torch.hann_window(win_size),
                      center=False, pad_mode="reflect", normalized=False, onesided=True, return_complex=True)
    magnitude = torch.sqrt(spec.real.pow(2) + spec.imag.pow(2) + 1e-9)
    filters = torch.from_numpy(slaney_mel_filters(sampling_rate, n_fft, num_mels, fmin, fmax))
    return torch.log(torch.clamp(filters @ magnitude, min=1e-5)).T.contiguous()


# ---- ONNX components -----------------------------------------------------------------------------------
def _session(file: Path):
    try:
        import onnxruntime
    except ImportError:
        raise ConfigError("the CosyVoice front-end needs onnxruntime: pip install 'voxpipe[cosyvoice]'") from None
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1
    try:
        return onnxruntime.InferenceSession(str(file), sess_options=options, providers=["CPUExecutionProvider"])
    except Exception as error:  # noqa: BLE001 - onnxruntime raises its own types for bad graphs
        raise WeightsError(f"{file}: not a loadable ONNX graph: {error}") from None


def _onnx_file(path: str | None, key: str, name: str) -> Path:
    if path is None:
        raise ConfigError(f"CosyVoice front-end: no {name} (set {key} or the family's model_dir)")
    file = Path(path).expanduser()
    file = file / name if file.is_dir() else file
    if not file.is_file():
        raise WeightsError(f"CosyVoice front-end: {file} not found ({key}; the official {name})")
    return file


def _check_wave(wave: torch.Tensor, what: str) -> torch.Tensor:
    wave = torch.as_tensor(wave, dtype=torch.float32).reshape(-1)
    if wave.numel() == 0:
        raise AudioError(f"{what}: the prompt audio is empty")
    if wave.numel() / FRONTEND_RATE > MAX_PROMPT_SECONDS:
        raise AudioError(f"{what}: prompts longer than {MAX_PROMPT_SECONDS:g} s are not supported "
                         f"(got {wave.numel() / FRONTEND_RATE:.1f} s)")
    return wave


class _OnnxGraphComponent(Component):
    """A frontend component that runs one ONNX graph file, found from `model` or model_dir.

    Subclasses name the file (`graph_file`), the config key reported in errors
    (`config_key`) and what they are (`what`); the session is made on first use.
    """

    graph_file: ClassVar[str] = ""
    config_key: ClassVar[str] = ""
    what: ClassVar[str] = ""
    sample_rate: int = FRONTEND_RATE

    def __init__(self, *, model) -> None:
        self.file: Path | None = None
        self._session = None
        if model is not None:
            self.attach(model)

    def attach(self, model: str | Path, key: str | None = None) -> None:
        """Check the graph file exists (the session is made on first use)."""
        self.file = _onnx_file(str(model), key or self.config_key, self.graph_file)

    def _loaded_session(self):
        if self.file is None:
            raise ConfigError(f"CosyVoice {self.what}: no {self.graph_file} (set model or model_dir)")
        if self._session is None:
            self._session = _session(self.file)
        return self._session


class SpeechTokenizerParams(BaseParams):
    model: str | None = Field(None, description="speech_tokenizer_v2.onnx / _v3.onnx or its folder (default: "
                                                "model_dir's, the version the model folder's yaml names)")
    version: str = Field("cosyvoice2", pattern="^cosyvoice[23]$",
                         description="which official graph a folder given as `model` holds: cosyvoice2 -> "
                                     "speech_tokenizer_v2.onnx, cosyvoice3 -> speech_tokenizer_v3.onnx")


class CosyVoiceSpeechTokenizer(_OnnxGraphComponent):
    """speech_tokenizer_v2/v3.onnx on a Whisper 128-mel: 16 kHz audio -> 25 Hz speech tokens."""

    kind: ClassVar[str] = "speech_tokenizer"
    name: ClassVar[str] = "cosyvoice-speech-tokenizer"
    Params: ClassVar[type[BaseParams]] = SpeechTokenizerParams
    graph_file: ClassVar[str] = SPEECH_TOKENIZER_FILE
    config_key: ClassVar[str] = "speech_tokenizer.model"
    what: ClassVar[str] = "speech tokenizer"

    def __init__(self, *, model, version) -> None:
        self.graph_file = SPEECH_TOKENIZER_FILES[version]  # per instance: the version's official file
        super().__init__(model=model)

    def tokens(self, wave_16k: torch.Tensor) -> list[int]:
        wave = _check_wave(wave_16k, self.what)
        session = self._loaded_session()
        feats = whisper_log_mel(wave)[None]  # (1, 128, T)
        inputs = session.get_inputs()
        out = session.run(None, {inputs[0].name: feats.numpy(),
                                 inputs[1].name: np.array([feats.shape[2]], dtype=np.int32)})[0]
        return [int(t) for t in np.asarray(out).reshape(-1)]


class CampPlusParams(BaseParams):
    model: str | None = Field(None, description=f"{SPEAKER_ENCODER_FILE} or its folder (default: model_dir's)")


class CampPlusSpeakerEncoder(_OnnxGraphComponent):
    """campplus.onnx on a mean-normalised 80-bin Kaldi fbank: 16 kHz audio -> (192,) x-vector."""

    kind: ClassVar[str] = "speaker_embedding"
    name: ClassVar[str] = "campplus"
    Params: ClassVar[type[BaseParams]] = CampPlusParams
    graph_file: ClassVar[str] = SPEAKER_ENCODER_FILE
    config_key: ClassVar[str] = "speaker_encoder.model"
    what: ClassVar[str] = "speaker encoder"

    def embed(self, wave_16k: torch.Tensor) -> torch.Tensor:
        wave = _check_wave(wave_16k, self.what)
        session = self._loaded_session()
        feat = kaldi_fbank(wave)
        feat = feat - feat.mean(dim=0, keepdim=True)
        out = session.run(None, {session.get_inputs()[0].name: feat[None].numpy()})[0]
        return torch.from_numpy(np.asarray(out, dtype=np.float32).reshape(-1))
