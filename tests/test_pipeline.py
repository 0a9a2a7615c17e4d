"""Pipeline composition, build-time compatibility checks, dialog prompts, long text and errors.

Uses the small fixture models (random weights: the audio is noise-like, the plumbing is real)
and the weight-free Griffin-Lim vocoder where no vocoder of the model's feature size exists.
"""


import pytest
import torch

from voxpipe.core.audio import Audio
from voxpipe.core.errors import CompatibilityError, ConfigError, TextError, VoiceFileError
from voxpipe.core.pipeline import Pipeline
from voxpipe.core.voice import Voice
from voxpipe.testing.fixtures import E2E_PROMPT_TEXT as PROMPT_TEXT, fixtures_root, tiny_pipeline_config

ROOT = fixtures_root()
PROMPT = ROOT / "e2e" / "cmu_arctic_a0009.wav"


def lux_like(**changes) -> dict:
    """A LuxTTS-shaped pipeline on the e2e fixture model, 2 steps, no trimming."""
    config = tiny_pipeline_config(
        solver={"type": "euler", "num_steps": 2, "t_shift": 0.5},
        prompt_resampler="sinc",
        settings={"trim_silence": False},
    )
    top_level = {"normalizer", "chunker", "tokenizer", "transcriber", "settings"}
    for key, value in changes.items():
        (config if key in top_level else config["synthesizer"])[key] = value
    return config


def dialog(stereo: bool) -> dict:
    name = "zipvoice_dialog_stereo" if stereo else "zipvoice_dialog"
    model = ROOT / "zipvoice" / name
    return {
        "tokenizer": {"type": "dialog", "tokens": str(model / "tokens.txt")},
        "chunker": {"type": "punctuation"},
        "synthesizer": {
            "type": "flow-matching",
            "features": {"type": "vocos-mel", "n_mels": 20, "num_channels": 2 if stereo else 1},
            "acoustic_model": {"type": "zipvoice-dialog-stereo" if stereo else "zipvoice-dialog", "weights": str(model)},
            "guidance": {"type": "classifier-free", "scale": 1.5},
            "solver": {"type": "euler", "num_steps": 2},
            "vocoder": {"type": "griffin-lim", "n_mels": 20, "n_iter": 2},
            "max_chunk_seconds": 40,
        },
    }


@pytest.fixture(scope="module")
def lux():
    pipeline = Pipeline.from_config(lux_like())
    return pipeline, pipeline.encode_prompt(PROMPT, PROMPT_TEXT)


def test_direct_composition_equals_yaml(lux):
    from voxpipe.registry import get_registry

    pipeline, voice = lux
    registry = get_registry()
    config = lux_like()
    family = dict(config.pop("synthesizer"))
    family.pop("type")
    parts = {kind: registry.get(kind, family.pop(kind)["type"]) for kind in ("features", "acoustic_model", "guidance", "solver", "vocoder")}
    sections = lux_like()["synthesizer"]
    built_parts = {kind: info.cls(**{k: v for k, v in sections[kind].items() if k != "type"}) for kind, info in parts.items()}
    synthesizer = registry.get("synthesizer", "flow-matching").cls(**built_parts, **family)
    top = {kind: registry.get(kind, entry.pop("type")).cls(**entry)
           for kind, entry in ((k, dict(v)) for k, v in config.items() if k != "settings")}
    direct = Pipeline(synthesizer=synthesizer, **top, settings=config["settings"])
    text = "Direct composition works."
    assert torch.equal(direct.synthesize(text, voice, seed=5).samples, pipeline.synthesize(text, voice, seed=5).samples)


def test_vocoder_feature_mismatch_names_both_sides():
    with pytest.raises(CompatibilityError) as caught:
        Pipeline.from_config(lux_like(features={"type": "vocos-mel", "n_mels": 80}))
    message = str(caught.value)
    assert "vocos-mel" in message and "vocos-24k" in message and "80" in message and "100" in message


def test_guidance_must_fit_the_model():
    with pytest.raises(CompatibilityError, match="distilled"):
        Pipeline.from_config(lux_like(guidance={"type": "classifier-free", "scale": 1.0}))


def test_tokenizer_vocabulary_must_match_the_model():
    with pytest.raises(CompatibilityError, match="vocabulary"):
        Pipeline.from_config(lux_like(tokenizer={"type": "dialog", "tokens": str(ROOT / "zipvoice" / "tokens_dialog.txt")},
                                      acoustic_model={"type": "zipvoice-distill", "weights": str(ROOT / "e2e" / "model")}))


def test_long_text_is_chunked_and_cross_faded(lux):
    pipeline, voice = lux
    sentence = "This sentence is one of many in a long paragraph. "
    long_pipeline = Pipeline.from_config(lux_like(max_chunk_seconds=6.0))
    family = long_pipeline.synthesizer
    voice = family.resolve_voice(voice)
    options = family.options({})
    chunks = long_pipeline.plan_chunks([sentence * 6], family.chunk_budget(voice, options))
    assert len(chunks) > 1 and all(c.text_index == 0 for c in chunks)
    audio = long_pipeline.synthesize(sentence * 6, voice, seed=1)
    singles = [w for c in chunks for w in family.synthesize([c.token_ids], voice, options, [0])]
    overlap = int(0.1 * long_pipeline.sample_rate)
    expected = sum(w.shape[-1] for w in singles) - overlap * (len(singles) - 1)
    assert audio.num_samples == expected


def test_many_texts_in_one_call(lux):
    pipeline, voice = lux
    audios = pipeline.synthesize(["First one.", "A second, longer text to speak."], voice, seed=2)
    assert len(audios) == 2 and audios[1].num_samples > audios[0].num_samples


def test_errors_for_bad_requests(lux):
    pipeline, voice = lux
    with pytest.raises(TextError, match="empty"):
        pipeline.synthesize("   ", voice)
    with pytest.raises(ConfigError, match="speed"):
        pipeline.synthesize("Hi.", voice, speed=0)
    with pytest.raises(ConfigError, match="encode_prompt"):
        pipeline.synthesize("Hi.", None)
    wrong = Voice("flow-matching", {"prompt_features": torch.zeros(10, 20), "prompt_token_ids": torch.tensor([1, 2, 3])},
                  {"transcript": "x", "prompt_rms": 0.1})
    with pytest.raises(VoiceFileError, match="20-dim"):
        pipeline.synthesize("Hi.", wrong)
    with pytest.raises(ConfigError, match="noise"):
        pipeline.synthesize("Hi.", voice, noise=torch.zeros(1, 3, 100))


def test_prompt_audio_object_and_quiet_prompt_loudness(lux):
    pipeline, _ = lux
    import soundfile

    data, rate = soundfile.read(PROMPT, dtype="float32")
    quiet = Audio(torch.from_numpy(data) * 0.05, rate)
    voice = pipeline.encode_prompt(quiet, PROMPT_TEXT)
    assert voice.prompt_rms < 0.01
    louder = pipeline.encode_prompt(Audio(torch.from_numpy(data) * 0.5, rate), PROMPT_TEXT)
    # Both are below the target RMS and raised to it before encoding: same features.
    torch.testing.assert_close(voice.prompt_features, louder.prompt_features, atol=2e-3, rtol=1e-3)  # log of quiet bins
    out = pipeline.synthesize("Quiet please.", voice, seed=0)
    ref = pipeline.synthesize("Quiet please.", louder, seed=0)
    ratio = float(out.samples.abs().max() / ref.samples.abs().max())
    assert ratio == pytest.approx(voice.prompt_rms / louder.prompt_rms, rel=1e-3)


@pytest.mark.parametrize("stereo", [False, True], ids=["mono", "stereo"])
def test_dialog_with_two_prompts(stereo, tmp_path):
    import soundfile

    data, rate = soundfile.read(PROMPT, dtype="float32")
    half = len(data) // 2
    first, second = tmp_path / "s1.wav", tmp_path / "s2.wav"
    soundfile.write(first, data[:half], rate)
    soundfile.write(second, data[half:], rate)
    pipeline = Pipeline.from_config(dialog(stereo))
    voice = pipeline.encode_prompt([first, second], ["He turned sharply,", "and faced Gregson across the table."])
    assert voice.transcript.startswith("[S1]") and "[S2]" in voice.transcript
    assert voice.prompt_features.shape[-1] == (40 if stereo else 20)
    audio = pipeline.synthesize("[S1] Hello there, how are you? [S2] Fine, thank you.", voice, seed=0)
    assert audio.num_channels == (2 if stereo else 1) and audio.num_samples > 0
    assert torch.isfinite(audio.samples).all()
    if stereo:
        with pytest.raises(ConfigError, match="2-channel"):
            pipeline.encode_prompt(first, "He turned sharply,")


def test_stream_equals_sentence_by_sentence_synthesis(lux):
    from voxpipe.streaming import StreamingSession, sentence_pipeline

    pipeline, voice = lux
    text = "One short sentence. And another one!"
    session = StreamingSession(pipeline, voice, seed=4)
    session.push_text(text[:12])
    session.push_text(text[12:])
    session.flush()
    pcm = b"".join(chunk.pcm for chunk in session)
    assert pcm == sentence_pipeline(pipeline).synthesize(text, voice, seed=4).to_pcm16()


@pytest.mark.slow
def test_two_thousand_words_with_progress_and_bounded_memory(lux, capsys):
    """Long text: many chunks in bounded batches. Peak memory is set by one batch (attention over
    a ~25 s chunk), not by the length of the text: a text five times longer adds only its output."""
    import resource

    pipeline, voice = lux
    words = ("The quick brown fox jumps over the lazy dog near the river bank, and then it rests. " * 125).split()

    def peak_mb():
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    pipeline.synthesize(" ".join(words[:400]), voice, seed=0, num_steps=1)
    after_short = peak_mb()
    text = " ".join(words[:2000])
    audio = pipeline.synthesize(text, voice, seed=0, num_steps=1, progress=True)
    grown = peak_mb() - after_short
    budget = pipeline.synthesizer.chunk_budget(pipeline.load_voice(voice), pipeline.options())
    assert len(pipeline.plan_chunks([text], budget)) > 20 and audio.duration > 300
    assert "synthesizing" in capsys.readouterr().err  # tqdm progress bar
    output_mb = audio.num_samples * 4 / 2**20
    # glibc may keep up to settings.retain_freed_memory_mb of freed memory mapped
    # (voxpipe/core/allocator.py), and the test process's heap is shaped by every test before this
    # one: the growth measured 280-417 MB against the 405 MB this bound had without that allowance.
    # A leak per chunk (20+ chunks of ~25 s attention buffers) would still be gigabytes.
    retained_mb = pipeline.settings.retain_freed_memory_mb
    assert grown < 200 + 4 * output_mb + retained_mb, (grown, output_mb, retained_mb)


def test_prompt_without_transcript_is_transcribed_offline(lux):
    """No transcript: the pipeline's offline transcriber (Whisper tiny.en, as the bundled configs
    name it) hears the prompt; a pipeline that names none says how to give the transcript."""
    pipeline, voice_with_text = lux
    with pytest.raises(ConfigError, match="names no transcriber; pass the transcript"):
        pipeline.encode_prompt(PROMPT)
    pipeline = Pipeline.from_config(lux_like(transcriber={"type": "faster-whisper"}))
    voice = pipeline.encode_prompt(PROMPT)
    assert "turned sharply" in voice.transcript.lower() and "table" in voice.transcript.lower()
    assert voice.num_frames == voice_with_text.num_frames


def test_token_level_chunking_keeps_the_whole_texts_tokens():
    """ZipVoice's chunker cuts the token sequence of the whole text (as infer_zipvoice.py does):
    the chunks together are exactly the whole text's ids, each within the token budget."""
    pipeline = Pipeline.from_config(lux_like(chunker={"type": "zipvoice"}, max_chunk_seconds=2.0))
    voice = pipeline.load_voice(Voice(
        "flow-matching", {"prompt_features": torch.zeros(100, 100), "prompt_token_ids": torch.arange(1, 41)},
        {"transcript": "x", "prompt_rms": 0.1, "settings": {"sample_rate": 24000, "num_samples": 25600}}))
    text = "First, a clause; then another one. And a second sentence, with commas, here! Last?"
    budget = pipeline.synthesizer.chunk_budget(voice, pipeline.options())
    chunks = pipeline.plan_chunks([text], budget)
    assert len(chunks) > 1 and all(c.span is None for c in chunks)
    assert [i for c in chunks for i in c.token_ids] == pipeline.tokenizer.encode(pipeline.prepare_text(text))
    assert all(len(c.token_ids) <= budget for c in chunks)
