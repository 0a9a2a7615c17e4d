"""The `cosyvoice` family: end to end against the official code (tiny random weights), streaming
determinism through `StreamingSession`, voices, the ONNX front-end, vocoder swaps and the bundled
configs.

The model is the `stream_tiny` case's (LM of lm_tiny, flow of flow_tiny, HiFT of hift_tiny; see
tests/fixtures/cosyvoice/generate_lm_stream.py); cases are also read from $VOXPIPE_FIXTURES/cosyvoice/.
"""

from __future__ import annotations

import functools
import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch

from voxpipe.core.audio import Audio
from voxpipe.core.errors import (
    CompatibilityError,
    ConfigError,
    VoxpipeError,
    WeightsError,
)
from voxpipe.testing import SynthesizerConformance
from voxpipe.testing.threads import one_torch_thread

HERE = Path(__file__).resolve().parent / "fixtures" / "cosyvoice"
REPO = Path(__file__).resolve().parents[1]


def stream_cases() -> list[Path]:
    roots = [HERE] + ([Path(os.environ["VOXPIPE_FIXTURES"]).expanduser() / "cosyvoice"]
                      if os.environ.get("VOXPIPE_FIXTURES") else [])
    return sorted(p.parent for root in roots for p in root.glob("stream_*/manifest.json")
                  if json.loads(p.read_text()).get("kind") == "stream")


CASES = stream_cases()


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny models run fastest on one thread on a shared machine (thread hand-offs dominate)."""
    with one_torch_thread():
        yield
TINY = HERE / "stream_tiny"
TINY_CV3 = HERE / "stream_cv3_tiny"  # LM of lm_cv3_tiny, DiT flow of flow_cv3_tiny, causal HiFT of hift_cv3_tiny


def pipeline_config(case: Path, **synthesizer) -> dict:
    manifest = json.loads((case / "manifest.json").read_text())
    lm_dir = str(case / manifest["lm_dir"])
    return {"synthesizer": {"type": "cosyvoice", "tokenizer": f"{lm_dir}/CosyVoice-BlankEN",
                            "lm": {"type": "cosyvoice-lm", "model_dir": lm_dir, **manifest.get("lm_params", {})},
                            "flow": {"type": "cosyvoice-flow", "model_dir": str(case / manifest["flow_dir"])},
                            "vocoder": {"type": "cosyvoice-hift", "model_dir": str(case / manifest["hift_dir"]),
                                        **manifest.get("hift_params", {})},
                            **manifest.get("settings", {}), **synthesizer},
            "settings": {"trim_silence": False}}


@functools.cache
def tiny_pipeline(case: Path = TINY):
    from voxpipe import Pipeline

    return Pipeline.from_config(pipeline_config(case))


def case_voice(case: Path, family):
    manifest = json.loads((case / "manifest.json").read_text())
    data = np.load(case / manifest["expected"])
    return family.voice_from_parts(manifest["prompt_text"], data["prompt_tokens"][0].tolist(),
                                   torch.from_numpy(data["prompt_feat"][0]), torch.from_numpy(data["embedding"][0]))


class TestCosyVoiceConformance(SynthesizerConformance):
    def make_synthesizer(self):
        return tiny_pipeline().synthesizer

    def voice(self, family):
        return case_voice(TINY, family)

    def sample_token_ids(self, family):
        return [11, 23]  # at most 20 speech tokens per text token: keeps the test short


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
@pytest.mark.parametrize("stream", [False, True], ids=["whole", "streamed"])
def test_family_matches_official(case, stream):
    """LM tokens from the seed, then token-to-wave whole or streamed, as the official tts."""
    manifest = json.loads((case / "manifest.json").read_text())
    data = np.load(case / manifest["expected"])
    family = tiny_pipeline(case).synthesizer
    voice = family.resolve_voice(case_voice(case, family))
    with one_torch_thread():
        (wave,) = family.synthesize([manifest["text"]], voice, family.options({"stream": stream}), [manifest["seed"]])
    if stream:
        expected = np.concatenate([data[f"chunk_{i}"] for i in range(len(manifest["chunk_samples"]))], axis=1)
    else:
        expected = data["whole"]
    np.testing.assert_allclose(wave.numpy(), expected, atol=manifest["tolerance"]["pcm_abs"], rtol=0)


def test_stream_chunks_arrive_before_the_end():
    manifest = json.loads((TINY / "manifest.json").read_text())
    family = tiny_pipeline().synthesizer
    voice = family.resolve_voice(case_voice(TINY, family))
    with one_torch_thread():
        chunks = list(family.stream_chunks(manifest["text"], voice, family.options({}), manifest["seed"]))
    assert [c.shape[1] for c in chunks] == manifest["chunk_samples"]


@pytest.mark.parametrize("case", [TINY, TINY_CV3], ids=["cosyvoice2", "cosyvoice3"])
def test_streaming_session_is_deterministic_however_text_is_pushed(case):
    from voxpipe.core.audio import to_pcm16
    from voxpipe.streaming import StreamingSession
    from voxpipe.streaming.chunking import sentence_pipeline

    pipeline = tiny_pipeline(case)
    voice = case_voice(case, pipeline.synthesizer)
    text = "Hello. The world."
    outputs = []
    with one_torch_thread():
        for pushes in ([text], ["Hel", "lo. The", " wor", "ld."]):
            session = StreamingSession(pipeline, voice, seed=11, stream=True)
            for piece in pushes:
                session.push_text(piece)
            outputs.append(session.read_all())
        reference = sentence_pipeline(pipeline).synthesize(text, voice, seed=11, stream=True)
    assert outputs[0] == outputs[1] and len(outputs[0]) > 0
    assert outputs[0] == to_pcm16(reference.samples.reshape(-1))


def test_voice_round_trip_and_refusals(tmp_path):
    from voxpipe.core.voice import Voice

    family = tiny_pipeline().synthesizer
    voice = case_voice(TINY, family)
    path = voice.save(tmp_path / "tiny.voice")
    prompt = family.resolve_voice(Voice.load(path))
    assert prompt.feat.shape[1] == 2 * prompt.tokens.shape[1]
    with pytest.raises(ConfigError, match="no built-in voices"):
        family.resolve_voice(None)
    other = Voice(family="kokoro", tensors={"x": torch.zeros(1)})
    with pytest.raises(ConfigError, match="kokoro"):
        family.resolve_voice(other)
    bad = family.new_voice({"prompt_text": torch.zeros(1)}, {})
    with pytest.raises(ConfigError, match="missing prompt_tokens"):
        family.resolve_voice(bad)


def test_unknown_option_names_the_options():
    family = tiny_pipeline().synthesizer
    with pytest.raises(ConfigError, match="top_p"):
        family.options({"top_q": 0.5})


# ---- vocoder swaps: the build-time compatibility check ---------------------------------------------
def test_vocos_24k_is_refused_with_the_reason():
    from voxpipe import Pipeline

    config = pipeline_config(TINY, vocoder={"type": "vocos-24k",
                                            "weights": str(REPO / "tests" / "fixtures" / "vocoders" / "vocos24k")})
    with pytest.raises(CompatibilityError) as error:
        Pipeline.from_config(config)
    message = str(error.value)
    assert "vocos-24k" in message and "100 mel bins, the flow makes 80" in message
    assert "256 samples at 24000 Hz (93.75 Hz)" in message and "50 Hz" in message


def test_lm_and_flow_must_share_the_speech_tokens():
    family = tiny_pipeline().synthesizer
    family.check_compatibility()  # the fixture's LM and flow agree
    config = family.lm.config
    try:
        family.lm.config = config.model_copy(update={"speech_token_size": family.flow.vocab_size + 5})
        with pytest.raises(CompatibilityError, match=r"speaks \d+ speech tokens but the flow 'cosyvoice-flow' "
                                                     r"embeds only \d+"):
            family.check_compatibility()
    finally:
        family.lm.config = config


def test_griffin_lim_on_the_flow_mel_is_a_compatible_mix():
    from voxpipe import Pipeline

    bundled = REPO / "configs" / "cosyvoice2_griffin_lim.yaml"
    import yaml

    vocoder = dict(yaml.safe_load(bundled.read_text())["synthesizer"]["vocoder"], n_iter=2)  # fewer: faster
    pipeline = Pipeline.from_config(pipeline_config(TINY, vocoder=vocoder))
    family = pipeline.synthesizer
    assert family.vocoder.name == "griffin-lim" and family.sample_rate == 24000
    voice = family.resolve_voice(case_voice(TINY, family))
    with one_torch_thread():
        for stream in (False, True):
            (wave,) = family.synthesize([[11, 23]], voice, family.options({"stream": stream}), [0])
            assert wave.shape[0] == 1 and wave.shape[1] > 0 and torch.isfinite(wave).all()


# ---- bundled configs ---------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["cosyvoice2", "cosyvoice2_griffin_lim", "cosyvoice3"])
def test_bundled_configs_validate_and_name_missing_files(name, tmp_path):
    from voxpipe import Pipeline
    from voxpipe.core.config import build_config

    build_config(name)  # structure and every section's params
    with pytest.raises(VoxpipeError, match=r"has no cosyvoice2.yaml|not found"):
        Pipeline.from_config(name, weights_dir=str(tmp_path))


# ---- the ONNX front-end ------------------------------------------------------------------------------
def test_frontend_features_match_references():
    from voxpipe.plugins.cosyvoice.frontend import (
        kaldi_fbank,
        prompt_mel,
        whisper_log_mel,
    )

    for case in sorted(p.parent for p in HERE.glob("lm_*/manifest.json")
                       if json.loads(p.read_text()).get("kind") == "frontend_features"):
        manifest = json.loads((case / "manifest.json").read_text())
        data, tolerance = np.load(case / manifest["expected"]), manifest["tolerance"]
        wave16, wave24 = torch.from_numpy(data["wave16"]), torch.from_numpy(data["wave24"])
        np.testing.assert_allclose(kaldi_fbank(wave16).numpy(), data["kaldi_fbank"], atol=tolerance["kaldi_fbank_abs"])
        np.testing.assert_allclose(whisper_log_mel(wave16).numpy(), data["whisper_log_mel"],
                                   atol=tolerance["whisper_log_mel_abs"])
        np.testing.assert_allclose(prompt_mel(wave24).numpy(), data["flow_mel"], atol=tolerance["flow_mel_abs"])


def write_tiny_frontend(folder: Path, vocab: int) -> None:
    """Two stand-in ONNX graphs with the official inputs and outputs: tokens = argmax over the
    mel bins of every 4th frame, mod `vocab`; x-vector = time mean of the fbank x a fixed matrix."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    tokenizer = helper.make_graph(
        [helper.make_node("ArgMax", ["feats"], ["best"], axis=1, keepdims=0),
         helper.make_node("Slice", ["best", "start", "end", "axis", "step"], ["every4"]),
         helper.make_node("Mod", ["every4", "vocab"], ["tokens"])],
        "speech_tokenizer",
        [helper.make_tensor_value_info("feats", TensorProto.FLOAT, [1, 128, None]),
         helper.make_tensor_value_info("feats_length", TensorProto.INT32, [1])],
        [helper.make_tensor_value_info("tokens", TensorProto.INT64, [1, None])],
        [numpy_helper.from_array(np.array([0], np.int64), "start"),
         numpy_helper.from_array(np.array([1 << 30], np.int64), "end"),
         numpy_helper.from_array(np.array([1], np.int64), "axis"),
         numpy_helper.from_array(np.array([4], np.int64), "step"),
         numpy_helper.from_array(np.array(vocab, np.int64), "vocab")])
    onnx.save(helper.make_model(tokenizer, opset_imports=[helper.make_opsetid("", 17)]),
              folder / "speech_tokenizer_v2.onnx")
    projection = np.random.default_rng(0).standard_normal((80, 192)).astype(np.float32)
    campplus = helper.make_graph(
        [helper.make_node("ReduceMean", ["feat"], ["mean"], axes=[1], keepdims=0),
         helper.make_node("MatMul", ["mean", "projection"], ["embedding"])],
        "campplus",
        [helper.make_tensor_value_info("feat", TensorProto.FLOAT, [1, None, 80])],
        [helper.make_tensor_value_info("embedding", TensorProto.FLOAT, [1, 192])],
        [numpy_helper.from_array(projection, "projection")])
    onnx.save(helper.make_model(campplus, opset_imports=[helper.make_opsetid("", 17)]), folder / "campplus.onnx")


def test_encode_voice_runs_the_onnx_front_end(tmp_path):
    pytest.importorskip("onnx")
    from voxpipe import Pipeline

    family = tiny_pipeline().synthesizer
    write_tiny_frontend(tmp_path, family.lm.speech_token_size)
    config = pipeline_config(TINY, speech_tokenizer={"type": "cosyvoice-speech-tokenizer", "model": str(tmp_path)},
                             speaker_encoder={"type": "campplus", "model": str(tmp_path / "campplus.onnx")})
    pipeline = Pipeline.from_config(config)
    t = torch.arange(int(24000 * 1.5)) / 24000
    clip = Audio((0.4 * torch.sin(2 * torch.pi * 200 * t) * (1 + torch.sin(2 * torch.pi * 3 * t))).float(), 24000)
    voice = pipeline.encode_prompt(clip, text="Hello there")
    assert voice.family == "cosyvoice"
    tokens, feat = voice.tensors["prompt_tokens"], voice.tensors["prompt_feat"]
    assert feat.shape == (2 * tokens.numel(), 80) and voice.tensors["embedding"].shape == (192,)
    assert voice.tensors["prompt_text"].tolist() == pipeline.synthesizer.default_tokenizer().encode("Hello there")
    with one_torch_thread():
        audio = pipeline.synthesize("Hi.", voice, seed=0)
    assert audio.samples.numel() > 0


def test_missing_front_end_files_are_named_before_any_work(tmp_path):
    from voxpipe.plugins.cosyvoice.frontend import (
        CampPlusSpeakerEncoder,
        CosyVoiceSpeechTokenizer,
    )

    with pytest.raises(WeightsError, match=r"speech_tokenizer_v2\.onnx.*speech_tokenizer\.model"):
        CosyVoiceSpeechTokenizer.create(model=str(tmp_path))
    with pytest.raises(WeightsError, match=r"campplus\.onnx.*speaker_encoder\.model"):
        CampPlusSpeakerEncoder.create(model=str(tmp_path / "campplus.onnx"))
    family = tiny_pipeline().synthesizer  # built without front-end files
    with pytest.raises(WeightsError, match=r"speech_tokenizer_v2\.onnx.*synthesizer\.speech_tokenizer\.model"):
        family.encode_voice([tmp_path / "does-not-matter.wav"], ["text"])


# ---- CosyVoice3 ---------------------------------------------------------------------------------------
def test_cosyvoice3_is_detected_from_the_hyperparameters():
    family = tiny_pipeline(TINY_CV3).synthesizer
    assert family.version == "cosyvoice3" and family.describe()["version"] == "cosyvoice3"
    assert family.flow.variant == "CosyVoice3" and family.vocoder.causal
    assert family.speech_tokenizer_file == "speech_tokenizer_v3.onnx"
    assert family.voice_fingerprint()["version"] == "cosyvoice3"
    tokenizer = family.default_tokenizer()
    assert tokenizer.version == "cosyvoice3" and tokenizer.token_id("[AA0]") is not None
    assert family.lm.endofprompt_id == tokenizer.token_id("<|endofprompt|>")
    assert tiny_pipeline(TINY).synthesizer.version == "cosyvoice2"


def test_endofprompt_id_comes_from_the_tokenizer_unless_set():
    from voxpipe import Pipeline

    config = pipeline_config(TINY_CV3)
    del config["synthesizer"]["lm"]["endofprompt_id"]
    family = Pipeline.from_config(config).synthesizer
    tokenizer_id = family.default_tokenizer().token_id("<|endofprompt|>")
    assert family.lm.endofprompt_id == tokenizer_id != 151646
    config["synthesizer"]["lm"]["endofprompt_id"] = 151646  # set: kept (e.g. the official vocabulary's)
    family = Pipeline.from_config(config).synthesizer
    family.default_tokenizer()
    assert family.lm.endofprompt_id == 151646


def test_cosyvoice3_prompt_needs_endofprompt():
    family = tiny_pipeline(TINY_CV3).synthesizer
    prefix = "You are a helpful assistant.<|endofprompt|>"
    assert family.prompt_text("Hello there") == prefix + "Hello there"
    assert family.prompt_text("Speak fast.<|endofprompt|>Hi") == "Speak fast.<|endofprompt|>Hi"
    assert tiny_pipeline(TINY).synthesizer.prompt_text("Hello there") == "Hello there"
    voice = case_voice(TINY_CV3, family)
    voice.tensors["prompt_text"] = torch.tensor([9, 44, 12])  # no <|endofprompt|>
    with pytest.raises(ConfigError, match=r"<\|endofprompt\|>"):
        family.synthesize([[11, 23]], family.resolve_voice(voice), family.options({}), [0])


@pytest.mark.parametrize("swap", ["flow", "vocoder"])
def test_cosyvoice2_and_3_parts_do_not_mix(swap):
    from voxpipe import Pipeline

    cv2 = pipeline_config(TINY)["synthesizer"]
    config = pipeline_config(TINY_CV3, **{swap: cv2[swap]})
    with pytest.raises(CompatibilityError, match="CosyVoice3.*CosyVoice2|CosyVoice2.*CosyVoice3"):
        Pipeline.from_config(config)


def test_cosyvoice3_encode_voice_uses_v3_tokenizer_and_its_mel(tmp_path):
    pytest.importorskip("onnx")
    from voxpipe import Pipeline
    from voxpipe.plugins.cosyvoice.frontend import prompt_mel

    family = tiny_pipeline(TINY_CV3).synthesizer
    with pytest.raises(WeightsError, match=r"speech_tokenizer_v3\.onnx.*synthesizer\.speech_tokenizer\.model"):
        family.encode_voice([tmp_path / "does-not-matter.wav"], ["text"])
    write_tiny_frontend(tmp_path, family.lm.speech_token_size)
    (tmp_path / "speech_tokenizer_v2.onnx").rename(tmp_path / "speech_tokenizer_v3.onnx")
    config = pipeline_config(TINY_CV3, speech_tokenizer={"type": "cosyvoice-speech-tokenizer", "model": str(tmp_path),
                                                         "version": "cosyvoice3"},
                             speaker_encoder={"type": "campplus", "model": str(tmp_path)})
    pipeline = Pipeline.from_config(config)
    t = torch.arange(int(24000 * 1.5)) / 24000
    clip = Audio((0.4 * torch.sin(2 * torch.pi * 200 * t) * (1 + torch.sin(2 * torch.pi * 3 * t))).float(), 24000)
    voice = pipeline.encode_prompt(clip, text="Hello there")
    tokenizer = pipeline.synthesizer.default_tokenizer()
    assert voice.tensors["prompt_text"].tolist() == tokenizer.encode("You are a helpful assistant.<|endofprompt|>"
                                                                     "Hello there")
    feat = voice.tensors["prompt_feat"]
    full_band = prompt_mel(clip.samples.reshape(-1), fmax=None)[:feat.shape[0]]  # cosyvoice3.yaml: fmax null
    torch.testing.assert_close(feat, full_band)
    with one_torch_thread():
        audio = pipeline.synthesize("Hi.", voice, seed=0)
    assert audio.samples.numel() > 0


def test_a_cosyvoice2_voice_is_refused_by_cosyvoice3():
    cv2, cv3 = tiny_pipeline(TINY).synthesizer, tiny_pipeline(TINY_CV3).synthesizer
    with pytest.raises(ConfigError, match=r"version: voice 'cosyvoice2', pipeline 'cosyvoice3'"):
        cv3.resolve_voice(case_voice(TINY, cv2))
