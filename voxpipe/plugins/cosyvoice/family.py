"""The `cosyvoice` family: CosyVoice2 and CosyVoice3 (FunAudioLLM) as three swappable stages.

    text ids (Qwen2 BPE) ─ lm (speech_lm) ─> 25 Hz speech tokens ─ flow ─> 50 Hz mel (80 bins)
                         ─ vocoder (HiFT, or another registered vocoder of the same mel) ─> 24 kHz

Sections (each a registered component, swappable by YAML): `lm` (`cosyvoice-lm`), `flow`
(`cosyvoice-flow`), `vocoder` (`cosyvoice-hift` by default), `speech_tokenizer` and
`speaker_encoder` (the ONNX front-end used by `encode_voice`). `model_dir` is the official
CosyVoice2-0.5B or Fun-CosyVoice3-0.5B folder; each section left without its own files is loaded
from it. The version is the LM's (its hyper-parameter file: cosyvoice2.yaml -> Qwen2LM,
cosyvoice3.yaml -> CosyVoice3LM); the flow and a cosyvoice-hift vocoder must be of the same
version (CosyVoice3: DiT flow, causal HiFT), else a CompatibilityError names both.

CosyVoice3 differences handled here: the `cosyvoice3` special tokens of the text tokenizer,
`speech_tokenizer_v3.onnx`, the prompt mel of cosyvoice3.yaml's `feat_extractor` (fmax 12 kHz),
`<|endofprompt|>` required in prompt text ++ text (a transcript without it gets `prompt_prefix`,
the official examples' "You are a helpful assistant.<|endofprompt|>"), the silent-token limit
before the flow and the causal HiFT's token-to-wave (token2wav.py).

A voice (`encode_voice`, from a reference clip + its transcript) holds the prompt text ids, the
prompt's 25 Hz speech tokens, its 50 Hz mel (T = 2 x tokens) and the 192-dim x-vector, as the
official zero-shot front-end makes them. `synthesize` runs the LM on (prompt text ++ text), then
token-to-wave either whole (the official default) or streamed (`stream: true`: the official
streaming chunks, hops, caches and fades; see token2wav.py) — the PCM of a streamed synthesis
is what a streamed official run gives, and `stream_chunks` yields it chunk by chunk.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, ClassVar

import torch
from pydantic import Field

from voxpipe.core.component import Params as BaseParams
from voxpipe.core.component import nested
from voxpipe.core.errors import CompatibilityError, ConfigError, WeightsError
from voxpipe.core.synthesizer import Options as BaseOptions
from voxpipe.core.synthesizer import Synthesizer
from voxpipe.core.voice import Voice
from voxpipe.plugins.cosyvoice.frontend import (
    FRONTEND_RATE,
    SPEAKER_ENCODER_FILE,
    SPEECH_TOKENIZER_FILES,
    prompt_mel,
)
from voxpipe.plugins.cosyvoice.text import ENDOFPROMPT
from voxpipe.plugins.cosyvoice.token2wav import (
    COSYVOICE3_SILENT_TOKENS,
    StreamSettings,
    Token2Wav,
    limit_silent_tokens,
)

FLOW_DEFAULT = {"type": "cosyvoice-flow"}
VOCODER_DEFAULT = {"type": "cosyvoice-hift"}
TOKEN_RATE = 25  # Hz of the speech tokens (token_frame_rate)
DEFAULT_PROMPT_PREFIX = f"You are a helpful assistant.{ENDOFPROMPT}"  # the official CosyVoice3 examples'
VERSION_NAMES = {"cosyvoice2": "CosyVoice2", "cosyvoice3": "CosyVoice3"}


class CosyVoicePrompt:
    """A resolved voice: prompt text ids, prompt speech tokens (1, Tp), prompt mel (1, 2 Tp, F),
    x-vector (1, E)."""

    def __init__(self, tensors: dict[str, torch.Tensor], source: str) -> None:
        needed = ("prompt_text", "prompt_tokens", "prompt_feat", "embedding")
        missing = [name for name in needed if name not in tensors]
        if missing:
            raise ConfigError(f"{source}: not a CosyVoice voice (missing {', '.join(missing)})")
        self.text = [int(t) for t in tensors["prompt_text"].reshape(-1)]
        self.tokens = tensors["prompt_tokens"].reshape(1, -1).to(torch.int32)
        self.feat = tensors["prompt_feat"].float().reshape(1, -1, tensors["prompt_feat"].shape[-1])
        self.embedding = tensors["embedding"].float().reshape(1, -1)
        if self.feat.shape[1] != 2 * self.tokens.shape[1]:
            raise ConfigError(f"{source}: prompt mel has {self.feat.shape[1]} frames for {self.tokens.shape[1]} tokens "
                              f"(expected 2 per token)")


class CosyVoice(Synthesizer):
    """CosyVoice2/3: Qwen2 speech-token LM -> causal flow matching -> HiFT, zero-shot cloning, streaming."""

    name: ClassVar[str] = "cosyvoice"
    description: ClassVar[str] = ("CosyVoice2/3: speech-token LM -> flow -> HiFT (24 kHz), zero-shot cloning, "
                                  "streaming")
    clones_voices: ClassVar[bool] = True
    needs_tokenizer: ClassVar[bool] = False
    streams: ClassVar[bool] = True
    # --precision chooses the flow's kernels (float32 either way: the speech-token LM and HiFT
    # have no other arithmetic here; docs/performance.md)
    precision_component: ClassVar[str] = "flow"

    class Params(BaseParams):
        model_dir: str | None = Field(None, description="official CosyVoice2-0.5B / Fun-CosyVoice3-0.5B folder "
                                                        "(cosyvoice2.yaml or cosyvoice3.yaml, llm.pt, flow.pt, "
                                                        "hift.pt, *.onnx, CosyVoice-BlankEN/)")
        tokenizer: str | None = Field(None, description="Qwen2 tokenizer folder (default: model_dir/CosyVoice-BlankEN)")
        stream: bool = Field(False, description="token-to-wave in the official streaming chunks (else whole)")
        token_hop_len: int = Field(25, ge=1, description="tokens of the first streamed chunk (official 25)")
        token_max_hop_len: int = Field(100, ge=1, description="largest streamed hop in tokens")
        stream_scale_factor: int = Field(2, ge=1, description="each streamed hop is the previous times this")
        mel_cache_len: int = Field(8, ge=1, description="CosyVoice2: mel frames carried into the next streamed "
                                                        "chunk (CosyVoice3's causal HiFT keeps all)")
        prompt_prefix: str = Field(DEFAULT_PROMPT_PREFIX,
                                   description="CosyVoice3: put before a voice transcript that has no <|endofprompt|> "
                                               "(the LM needs one); '' to keep transcripts as given")
        lm: Any = nested("speech_lm", default={"type": "cosyvoice-lm"})
        flow: Any = nested("flow", default=FLOW_DEFAULT)
        vocoder: Any = nested("vocoder", default=VOCODER_DEFAULT)
        speech_tokenizer: Any = nested("speech_tokenizer", default={"type": "cosyvoice-speech-tokenizer"})
        speaker_encoder: Any = nested("speaker_embedding", default={"type": "campplus"})

    class Options(BaseOptions):
        top_p: float | None = Field(None, gt=0, le=1, description="LM nucleus mass")
        top_k: int | None = Field(None, ge=1, description="LM nucleus size cap")
        win_size: int | None = Field(None, ge=1, description="repetition-aware sampling window")
        tau_r: float | None = Field(None, gt=0, description="repetition ratio forcing a random draw")
        stream: bool | None = Field(None, description="streamed token-to-wave (default: synthesizer.stream)")

    def __init__(self, *, model_dir, tokenizer, stream, token_hop_len, token_max_hop_len, stream_scale_factor,
                 mel_cache_len, prompt_prefix, lm, flow, vocoder, speech_tokenizer, speaker_encoder) -> None:
        from voxpipe.core.weights import resolve_path

        self.folder = None if model_dir is None else resolve_path(model_dir, what="CosyVoice model folder")
        self.lm, self.flow, self.vocoder = lm, flow, vocoder
        self.speech_tokenizer, self.speaker_encoder = speech_tokenizer, speaker_encoder
        self.hyperparams = self._read_hyperparams()
        self.version = self.hyperparams.version if self.hyperparams is not None else "cosyvoice2"
        self._attach_model_dir()
        self.tokenizer_path = tokenizer
        self.prompt_prefix = prompt_prefix
        self.stream = stream
        self.check_compatibility()
        self.stream_settings = StreamSettings(
            token_hop_len=token_hop_len, token_max_hop_len=token_max_hop_len, stream_scale_factor=stream_scale_factor,
            pre_lookahead_len=int(getattr(flow, "pre_lookahead_len", 3)),
            token_mel_ratio=int(getattr(flow, "token_mel_ratio", 2)), mel_cache_len=mel_cache_len,
            vocoder_hop=int(self.vocoder.hop_length))
        self.sample_rate = int(self.vocoder.sample_rate)

    # ---- building ----------------------------------------------------------------------------------
    def _read_hyperparams(self):
        """The LM's hyper-parameter file (loading the LM from model_dir first): it names the version."""
        from voxpipe.plugins.cosyvoice.hyperparams import read_hyperparams

        if not self.lm.loaded:
            if self.folder is None:
                raise ConfigError("synthesizer 'cosyvoice': set model_dir (the official CosyVoice2-0.5B or "
                                  "Fun-CosyVoice3-0.5B folder) or lm.model_dir")
            self.lm.load(self.folder)
        files = getattr(self.lm, "files", {})
        return read_hyperparams(files["hyperparams"]) if "hyperparams" in files else None

    def _attach_model_dir(self) -> None:
        """Sections built without files of their own take them from model_dir."""
        for part in (self.flow, self.vocoder):
            if not getattr(part, "loaded", True):
                if self.folder is None:
                    raise ConfigError(f"synthesizer 'cosyvoice': {part.name!r} has no weights; set model_dir")
                part.load(self.folder)
        # the ONNX front-end is only needed to make voices: a missing file is reported then
        if self.folder is not None:
            for part, file in ((self.speech_tokenizer, self.speech_tokenizer_file),
                               (self.speaker_encoder, SPEAKER_ENCODER_FILE)):
                if part.file is None and (self.folder / file).is_file():
                    part.attach(self.folder / file)

    @property
    def speech_tokenizer_file(self) -> str:
        return SPEECH_TOKENIZER_FILES[self.version]

    def check_compatibility(self) -> None:
        """The flow and a cosyvoice-hift vocoder are of the LM's version; the vocoder takes the
        flow's mel: same bins, same frame rate (token rate x token_mel_ratio = 50 Hz)."""
        wanted = VERSION_NAMES[self.version]
        flow_variant = getattr(self.flow, "variant", None)
        if flow_variant is not None and flow_variant != wanted:
            raise CompatibilityError(f"synthesizer 'cosyvoice': the LM is {wanted} but the flow "
                                     f"{self.flow.name!r} is {flow_variant}; their speech tokens differ (point both "
                                     f"at the same model folder)")
        causal = getattr(self.vocoder, "causal", None)
        if causal is not None and causal != (self.version == "cosyvoice3"):
            raise CompatibilityError(f"synthesizer 'cosyvoice': the model is {wanted} but the vocoder "
                                     f"{self.vocoder.name!r} is the {'causal CosyVoice3' if causal else 'CosyVoice2'} "
                                     f"HiFT (trained on the other version's mel); point both at the same model folder")
        mel_bins = int(getattr(self.flow, "feature_dim", getattr(self.flow, "output_size", 80)))
        ratio = int(getattr(self.flow, "token_mel_ratio", 2))
        frame_rate = TOKEN_RATE * ratio
        vocoder = self.vocoder
        problems = []
        if int(vocoder.feature_dim) != mel_bins:
            problems.append(f"it takes {vocoder.feature_dim} mel bins, the flow makes {mel_bins}")
        vocoder_rate = vocoder.feature_sample_rate / vocoder.hop_length
        if abs(vocoder_rate - frame_rate) > 1e-9:
            problems.append(f"its frames are {vocoder.hop_length} samples at {vocoder.feature_sample_rate} Hz "
                            f"({vocoder_rate:g} Hz), the flow's mel is {frame_rate} Hz (hop "
                            f"{vocoder.feature_sample_rate // frame_rate if vocoder.feature_sample_rate % frame_rate == 0 else '?'}"
                            f" at {vocoder.feature_sample_rate} Hz)")
        if problems:
            raise CompatibilityError(f"synthesizer 'cosyvoice': vocoder {vocoder.name!r} cannot vocode the flow's mel: "
                                     + "; ".join(problems))
        flow_vocab = getattr(self.flow, "vocab_size", None)
        if flow_vocab is not None and int(flow_vocab) < self.lm.speech_token_size:
            raise CompatibilityError(f"synthesizer 'cosyvoice': the LM speaks {self.lm.speech_token_size} speech tokens "
                                     f"but the flow {self.flow.name!r} embeds only {flow_vocab} (vocab_size)")

    # ---- voices ------------------------------------------------------------------------------------
    def voice_fingerprint(self) -> dict[str, Any]:
        return {"speech_token_size": self.lm.speech_token_size,
                "text_vocab_size": self.lm.describe().get("text_vocab_size"),
                "mel_bins": int(self.vocoder.feature_dim), "version": self.version}

    def resolve_voice(self, voice: Voice | str | None) -> CosyVoicePrompt:
        if voice is None:
            raise ConfigError("synthesizer 'cosyvoice' has no built-in voices: make one from a reference clip "
                              "(voxpipe voice create ref.wav --prompt-text ... / pipeline.encode_prompt)")
        if isinstance(voice, (str, Path)):
            voice = Voice.load(voice)
        if not isinstance(voice, Voice):
            raise ConfigError(f"a cosyvoice voice is a Voice or a .voice path; got {type(voice).__name__}")
        self.check_voice(voice)
        return CosyVoicePrompt(voice.tensors, "voice")

    def encode_voice(self, sources, transcripts, *, tokenizer=None, transcriber=None) -> Voice:
        """Official zero-shot front-end: speech tokens (16 kHz, ONNX), x-vector (16 kHz fbank,
        ONNX), prompt mel (24 kHz); mel and tokens trimmed to 2:1."""
        from voxpipe.audio.prompt import load_prompt_clip

        if len(sources) != 1:
            raise ConfigError(f"a cosyvoice voice is made from one reference clip; got {len(sources)}")
        for part, key, file in ((self.speech_tokenizer, "speech_tokenizer.model", self.speech_tokenizer_file),
                                (self.speaker_encoder, "speaker_encoder.model", SPEAKER_ENCODER_FILE)):
            if part.file is None:  # before any audio is read
                where = f"{self.folder / file} not found" if self.folder is not None else "no model_dir"
                raise WeightsError(f"synthesizer 'cosyvoice' needs {file} to make voices: {where} "
                                   f"(set synthesizer.{key} or model_dir)")
        tokenizer = tokenizer or self.default_tokenizer()
        if transcripts is None:
            if transcriber is None:
                raise ConfigError("the prompt has no transcript and this pipeline names no transcriber; pass the "
                                  "transcript (--prompt-text / encode_prompt(audio, text=...))")
            transcripts = [transcriber.transcribe(load_prompt_clip(sources[0], 16000)).strip()]
        clip16 = load_prompt_clip(sources[0], FRONTEND_RATE, resampler="sinc")
        clip24 = load_prompt_clip(sources[0], self.sample_rate, resampler="sinc")
        tokens = self.speech_tokenizer.tokens(clip16.samples)
        embedding = self.speaker_encoder.embed(clip16.samples)
        feat = prompt_mel(clip24.samples, **self.prompt_mel_settings())
        count = min(feat.shape[0] // 2, len(tokens))  # official: force mel frames = 2 x tokens
        tensors = {"prompt_text": torch.tensor(tokenizer.encode(self.prompt_text(transcripts[0])), dtype=torch.int64),
                   "prompt_tokens": torch.tensor(tokens[:count], dtype=torch.int64),
                   "prompt_feat": feat[:2 * count].contiguous(), "embedding": embedding.reshape(-1)}
        return self.new_voice(tensors, {"transcript": transcripts[0], "source": "cosyvoice zero-shot front-end"})

    def prompt_mel_settings(self) -> dict[str, Any]:
        """prompt_mel's settings: the yaml's feat_extractor (CosyVoice2: fmax 8000, CosyVoice3: null)."""
        mel = self.hyperparams.feat_extractor if self.hyperparams is not None else None
        if mel is None:
            return {"sampling_rate": self.sample_rate, "fmax": 12000.0 if self.version == "cosyvoice3" else 8000.0}
        if mel.sampling_rate != self.sample_rate:
            raise ConfigError(f"{self.hyperparams.file}: feat_extractor.sampling_rate {mel.sampling_rate} != the "
                              f"vocoder's {self.sample_rate} Hz")
        return {"n_fft": mel.n_fft, "num_mels": mel.num_mels, "sampling_rate": mel.sampling_rate,
                "hop_size": mel.hop_size, "win_size": mel.win_size, "fmin": mel.fmin, "fmax": mel.fmax}

    def prompt_text(self, transcript: str) -> str:
        """The text of a voice's prompt ids: CosyVoice3 needs <|endofprompt|>, so `prompt_prefix`
        goes before a transcript without one."""
        if self.version == "cosyvoice3" and ENDOFPROMPT not in transcript:
            return self.prompt_prefix + transcript
        return transcript

    def voice_from_parts(self, prompt_text: Sequence[int], prompt_tokens: Sequence[int], prompt_feat: torch.Tensor,
                         embedding: torch.Tensor, transcript: str = "") -> Voice:
        """A voice from already extracted parts (prompt mel (2 Tp, F), x-vector (E,))."""
        tensors = {"prompt_text": torch.tensor(list(prompt_text), dtype=torch.int64),
                   "prompt_tokens": torch.tensor(list(prompt_tokens), dtype=torch.int64),
                   "prompt_feat": prompt_feat.float().contiguous(), "embedding": embedding.float().reshape(-1)}
        CosyVoicePrompt(tensors, "voice parts")
        return self.new_voice(tensors, {"transcript": transcript, "source": "parts"})

    # ---- text --------------------------------------------------------------------------------------
    def default_tokenizer(self):
        from voxpipe.plugins.cosyvoice.lm import QWEN_FOLDER
        from voxpipe.plugins.cosyvoice.text import CosyVoiceTextTokenizer

        path = self.tokenizer_path
        if path is None:
            if self.folder is None:
                raise ConfigError("synthesizer 'cosyvoice': set tokenizer or model_dir (CosyVoice-BlankEN folder)")
            path = str(self.folder / QWEN_FOLDER)
        version = self.hyperparams.tokenizer_version if self.hyperparams is not None else self.version
        tokenizer = CosyVoiceTextTokenizer.create(path=path, version=version)
        endofprompt = tokenizer.token_id(ENDOFPROMPT)
        if self.version == "cosyvoice3" and endofprompt is not None and not getattr(self.lm, "endofprompt_given", True):
            self.lm.endofprompt_id = endofprompt  # 151646 in the official vocabulary; what this tokenizer says
        return tokenizer

    def chunk_budget(self, voice: Any, options: BaseOptions) -> int:
        return 80  # the official front-end splits text at ~80 tokens

    # ---- generation --------------------------------------------------------------------------------
    def _sampling(self, options: BaseOptions):
        updates = {k: getattr(options, k) for k in ("top_p", "top_k", "win_size", "tau_r")
                   if getattr(options, k) is not None}
        return self.lm.sampling.model_copy(update=updates)

    def speech_tokens(self, token_ids: Sequence[int], voice: CosyVoicePrompt, options: BaseOptions,
                      seed: int) -> Iterator[int]:
        """The LM's 25 Hz speech tokens for one chunk, drawn with a generator seeded by `seed`."""
        generator = torch.Generator().manual_seed(int(seed))
        tokens = self.lm.generate(list(token_ids), voice.text, voice.tokens[0].tolist(), generator=generator,
                                  sampling=self._sampling(options))
        if self.version == "cosyvoice3":  # the official llm_job's silence limit (CosyVoice2's list is empty)
            tokens = limit_silent_tokens(tokens, COSYVOICE3_SILENT_TOKENS)
        yield from tokens

    def token2wav(self, voice: CosyVoicePrompt, seed: int) -> Token2Wav:
        """One utterance's token-to-wave; HiFT's source randomness comes from one generator seeded
        with `seed` for the whole utterance (other vocoders take none)."""
        generator = None
        if not getattr(self.vocoder, "causal", False) and "generator" in inspect.signature(
                getattr(self.vocoder, "inference", lambda: None)).parameters:
            generator = torch.Generator().manual_seed(int(seed))
        return Token2Wav(self.flow, self.vocoder, voice.tokens, voice.feat, voice.embedding, self.stream_settings,
                         vocoder_generator=generator)

    @torch.inference_mode()
    def stream_chunks(self, token_ids: Sequence[int], voice: CosyVoicePrompt, options: BaseOptions,
                      seed: int) -> Iterator[torch.Tensor]:
        """(1, N) speech chunks of one text chunk as the LM produces tokens (official streaming)."""
        yield from self.token2wav(voice, seed).stream(self.speech_tokens(token_ids, voice, options, seed))

    @torch.inference_mode()
    def synthesize(self, token_ids, voice, options, seeds, noise=None) -> list[torch.Tensor]:
        if noise is not None:
            raise ConfigError("synthesizer 'cosyvoice' takes no noise: the flow's noise is fixed, the LM draws from "
                              "the seed")
        stream = self.stream if options.stream is None else options.stream
        waves = []
        for ids, seed in zip(token_ids, seeds):
            if stream:
                chunks = list(self.stream_chunks(ids, voice, options, seed))
                wave = torch.cat(chunks, dim=-1)
            else:
                tokens = list(self.speech_tokens(ids, voice, options, seed))
                wave = self.token2wav(voice, seed).whole(tokens) if tokens else torch.zeros(1, 0)
            waves.append(wave.reshape(1, -1).float().clamp(-1.0, 1.0).cpu())
        return waves

    def describe(self) -> dict:
        info = super().describe()
        info.update(version=self.version, hop_length=int(self.vocoder.hop_length),
                    mel_bins=int(self.vocoder.feature_dim), token_rate=TOKEN_RATE)
        return info
