"""CosyVoice2/3's token-to-wave, whole or streamed (as the official `CosyVoice2Model.tts` with
`stream=True` and its `token2wav`; CosyVoice3: `CosyVoice3Model.token2wav`, same `tts`).

Streamed, speech tokens (25 Hz) arrive one by one; a chunk is made as soon as
`hop + pre_lookahead_len` tokens past the current offset exist:

- the first hop is `token_hop_len` (25) plus the padding that rounds the prompt's token count up
  to a multiple of it; each later hop is the previous times `stream_scale_factor` (2), at most
  `token_max_hop_len` (100): 25, 50, 100, 100, ...
- the flow runs on ALL tokens so far (prompt tokens + generated[:offset + hop + lookahead]) with
  `streaming=True, finalize=False` (the last `pre_lookahead_len` tokens are right context only)
  and returns the mel of the generated tokens; the frames before `offset * token_mel_ratio` were
  vocoded already and are dropped.
- HiFT cache: the last `mel_cache_len` (8) mel frames of the previous chunk are put in front of
  the new mel, the vocoder continues the previous chunk's NSF source (`cache_source`, the last
  `source_cache_len` = 8 x 480 samples), and the previous chunk's last `source_cache_len` speech
  samples, held back, are cross-faded (Hamming window of 2 x source_cache_len) into the start of
  the new speech; this chunk's own last `source_cache_len` samples are held back in turn.
- when the LM has ended, the rest (offset .. end) is made with `finalize=True` and `streaming=False`
  (the official final call leaves `stream` at its default), with the same caches, and nothing is
  held back.

Whole (not streamed): one flow call on every token with `finalize=True, streaming=False`, one
vocoder call with an empty source cache.

CosyVoice3 (a causal HiFT vocoder, `vocoder.causal`): the chunking, hops and flow calls are the
same; the vocoder side is the official `CosyVoice3Model.token2wav`'s instead: no mel cache of 8
frames, no source cache, no fades. All mel so far is kept and re-vocoded at every chunk with the
chunk's `finalize`, and only the samples past those already returned are emitted
(`vocoder.causal_stream()`: with finalize=False the causal HiFT withholds the speech of the last
8 mel frames, its look-ahead, which the next chunk makes final).

CosyVoice3 also limits silence before the flow (`limit_silent_tokens`): the official `llm_job`
drops a silent/breath token (FSQ ids 1, 2, 28, 29, 55, 248, 494, 2241, 2242, 2322, 2323) when
more than 5 of them in a row came before it; the LM's own history keeps them.

Interfaces used (part 1's flow and HiFT, or any object with the same methods):
    flow.inference(token=(1, T), prompt_token=(1, Tp), prompt_feat=(1, Tm, F), embedding=(1, E),
                   streaming=bool, finalize=bool, **flow_options) -> (mel (1, F, T_mel), cache)
    vocoder.inference(mel (1, F, T), cache_source (1, 1, N)) -> (speech (1, N), source (1, 1, N))
    or a plain voxpipe Vocoder: vocoder.decode((1, F, T)) -> (1, N) (no source cache then);
    CosyVoice3: vocoder.causal (True) and vocoder.causal_stream() -> an object with
    push(mel (1, F, t), finalize=bool) -> new speech (1, n).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

COSYVOICE3_SILENT_TOKENS = frozenset({1, 2, 28, 29, 55, 248, 494, 2241, 2242, 2322, 2323})
"""CosyVoice3Model.silent_tokens: FSQ silent and breath tokens (CosyVoice2 has none)."""
MAX_SILENT_RUN = 5


def limit_silent_tokens(tokens: Iterable[int], silent: frozenset[int], max_run: int = MAX_SILENT_RUN) -> Iterator[int]:
    """`tokens` without the silent ones that follow `max_run` silent tokens in a row (the official
    `llm_job`: the run counter keeps counting over dropped tokens, a non-silent one resets it)."""
    run = 0
    for token in tokens:
        if token in silent:
            run += 1
            if run > max_run:
                continue
        else:
            run = 0
        yield token


@dataclass(frozen=True)
class StreamSettings:
    """Official CosyVoice2 values; `source_cache_len` is mel_cache_len x the vocoder hop."""

    token_hop_len: int = 25
    token_max_hop_len: int = 100
    stream_scale_factor: int = 2
    pre_lookahead_len: int = 3
    token_mel_ratio: int = 2
    mel_cache_len: int = 8
    vocoder_hop: int = 480

    @property
    def source_cache_len(self) -> int:
        return self.mel_cache_len * self.vocoder_hop

    def speech_window(self) -> torch.Tensor:
        """(2 * source_cache_len,) float64 Hamming window: rising half fades the new chunk in,
        falling half fades the held-back end of the previous one out."""
        return torch.from_numpy(np.hamming(2 * self.source_cache_len))


def fade_in_out(new: torch.Tensor, previous: torch.Tensor, window: torch.Tensor) -> torch.Tensor:
    """Cross-fade the first len(window)/2 samples of `new` (1, N) with the last ones of
    `previous`. The products are taken in float64 (the window's type) and stored back in
    `new`'s dtype, as the official `fade_in_out`."""
    half = window.shape[0] // 2
    out = new.clone()
    out[..., :half] = (new[..., :half] * window[:half] + previous[..., -half:] * window[half:]).to(new.dtype)
    return out


@dataclass
class _VocoderCache:
    mel: torch.Tensor     # (1, F, mel_cache_len)
    source: torch.Tensor  # (1, 1, source_cache_len)
    speech: torch.Tensor  # (1, source_cache_len) held back, cross-faded into the next chunk


class Token2Wav:
    """One utterance's token-to-wave: `whole(tokens)`, or `push(tokens)` / `finish()` streamed.

    prompt_tokens: (1, Tp) int speech tokens of the voice; prompt_feat: (1, 2*Tp, F) its mel;
    embedding: (1, E) x-vector. flow_options: passed to every flow call (e.g. noise, n_timesteps).
    vocoder_generator: passed to every `vocoder.inference` call (HiFT's NSF source draws its random
    phases and noise from it, so one generator per utterance makes the streamed PCM a function of
    its seed only; the official code draws from torch's global RNG).
    """

    def __init__(self, flow: Any, vocoder: Any, prompt_tokens: torch.Tensor, prompt_feat: torch.Tensor,
                 embedding: torch.Tensor, settings: StreamSettings | None = None, *,
                 vocoder_generator: torch.Generator | None = None, **flow_options: Any) -> None:
        self.flow, self.vocoder = flow, vocoder
        self.vocoder_options = {} if vocoder_generator is None else {"generator": vocoder_generator}
        self.prompt_tokens, self.prompt_feat, self.embedding = prompt_tokens, prompt_feat, embedding
        self.settings = settings or StreamSettings()
        self.flow_options = flow_options
        self.window = self.settings.speech_window()
        self.tokens: list[int] = []
        self.offset = 0  # generated tokens already turned into audio
        self.hop = self.settings.token_hop_len
        hop = self.settings.token_hop_len
        self.prompt_pad = math.ceil(prompt_tokens.shape[1] / hop) * hop - prompt_tokens.shape[1]
        self.cache: _VocoderCache | None = None
        # CosyVoice3's causal HiFT: all mel so far re-vocoded per chunk, new samples returned
        self.causal_stream = vocoder.causal_stream() if getattr(vocoder, "causal", False) else None
        if self.causal_stream is not None and vocoder_generator is not None:
            raise ValueError("the causal HiFT draws nothing per call: pass no vocoder_generator")
        self.finished = False
        self.chunk_token_ends: list[int] = []  # token count each streamed chunk was made from

    # ---- streamed --------------------------------------------------------------------------------
    def next_chunk_needs(self) -> int:
        """Tokens that must exist before the next streamed chunk can be made."""
        hop = self.hop + self.prompt_pad if self.offset == 0 else self.hop
        return self.offset + hop + self.settings.pre_lookahead_len

    def push(self, tokens: Iterable[int]) -> list[torch.Tensor]:
        """Add generated tokens; returns the (1, N) speech chunks that became ready (maybe none)."""
        if self.finished:
            raise RuntimeError("finish() was called: this token-to-wave takes no more tokens")
        self.tokens.extend(int(t) for t in tokens)
        chunks = []
        while len(self.tokens) >= self.next_chunk_needs():
            hop = self.hop + self.prompt_pad if self.offset == 0 else self.hop
            end = self.next_chunk_needs()
            chunks.append(self._chunk(self.tokens[:end], streaming=True, finalize=False))
            self.chunk_token_ends.append(end)
            self.offset += hop
            self.hop = min(self.settings.token_max_hop_len, self.hop * self.settings.stream_scale_factor)
        return chunks

    def finish(self) -> torch.Tensor:
        """The rest of the speech (1, N), caches flushed. Call once, after the last token."""
        if self.finished:
            raise RuntimeError("finish() was called already")
        self.finished = True
        return self._chunk(self.tokens, streaming=False, finalize=True)

    def stream(self, tokens: Iterable[int]) -> Iterator[torch.Tensor]:
        """Speech chunks as `tokens` (an iterator, e.g. the LM's) is consumed."""
        for token in tokens:
            yield from self.push([token])
        yield self.finish()

    # ---- whole -----------------------------------------------------------------------------------
    def whole(self, tokens: Sequence[int]) -> torch.Tensor:
        """(1, N) speech of all `tokens` at once (the official non-streamed path)."""
        if self.tokens or self.finished:
            raise RuntimeError("whole() needs a fresh Token2Wav")
        self.tokens = [int(t) for t in tokens]
        return self.finish()

    # ---- one flow + vocoder call -------------------------------------------------------------------
    def _chunk(self, tokens: Sequence[int], *, streaming: bool, finalize: bool) -> torch.Tensor:
        s = self.settings
        token = torch.tensor([list(tokens)], dtype=torch.int32)
        mel, _ = self.flow.inference(token=token, prompt_token=self.prompt_tokens, prompt_feat=self.prompt_feat,
                                     embedding=self.embedding, streaming=streaming, finalize=finalize,
                                     **self.flow_options)
        mel = mel[:, :, self.offset * s.token_mel_ratio:]
        if self.causal_stream is not None:  # CosyVoice3
            return self.causal_stream.push(mel, finalize=finalize)
        if self.cache is not None:
            mel = torch.cat([self.cache.mel, mel], dim=2)
            source = self.cache.source
        else:
            source = torch.zeros(1, 1, 0)
        speech, new_source = self._vocode(mel, source)
        if self.cache is not None:
            speech = fade_in_out(speech, self.cache.speech, self.window)
        if finalize:
            self.cache = None
            return speech
        held = s.source_cache_len
        self.cache = _VocoderCache(mel=mel[:, :, -s.mel_cache_len:],
                                   source=new_source[:, :, -held:] if new_source is not None else source,
                                   speech=speech[:, -held:])
        return speech[:, :-held]

    def _vocode(self, mel: torch.Tensor, source: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        if hasattr(self.vocoder, "inference"):
            speech, new_source = self.vocoder.inference(mel, cache_source=source, **self.vocoder_options)
            return speech, new_source
        return self.vocoder.decode(mel), None
