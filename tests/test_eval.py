"""`voxpipe eval`: WER/CER arithmetic, the normalizer, speaker similarity on real clips, DNSMOS,
the paired bootstrap, the report's stable keys and the errors for bad input.

Models used (offline, from PyPI wheels): Whisper tiny.en on two short clips, Resemblyzer's GE2E
encoder, DNSMOS. The "other speaker" is a stored Kokoro clip of the same sentence as the human
CMU ARCTIC clip (tests/fixtures/eval/README.md).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from voxpipe.core.audio import Audio
from voxpipe.core.errors import AudioError, ConfigError
from voxpipe.eval.interfaces import (
    QualityPredictor,
    SpeakerEncoder,
    SpeechRecognizer,
    cosine_similarity,
)
from voxpipe.eval.metrics import (
    CORE_METRICS,
    TIMING_METRICS,
    Metric,
    aggregate,
    metrics_for,
)
from voxpipe.eval.runner import ITEM_KEYS, Instruments, RunSpec, evaluate
from voxpipe.eval.testset import BUILTIN_SETS, load_test_set
from voxpipe.eval.text import char_edits, normalize, word_edits

FIXTURES = Path(__file__).parent / "fixtures"
HUMAN = FIXTURES / "e2e" / "cmu_arctic_a0009.wav"
HUMAN_TEXT = "He turned sharply, and faced Gregson across the table."
KOKORO = FIXTURES / "eval" / "kokoro_jf_alpha_a0009_text.wav"


def read(path: Path) -> Audio:
    from voxpipe.audio.io import read_audio

    return read_audio(path)


# ---- text: normalizer and edit counts -------------------------------------------------------------
@pytest.mark.parametrize("text, expected", [
    ("Mr. Smith paid $20 on Jan 5th.", "mister smith paid $20 on jan 5th"),
    ("Wait, did you say forty or fourteen?", "wait did you say 40 or 14"),
    ("The hall can seat 1,250 people.", "the hall can seat 1250 people"),
    ("He won't  go, COLOUR me surprised!", "he will not go color me surprised"),
])
def test_normalizer_follows_whispers_english_rules(text, expected):
    assert normalize(text) == expected


def test_spoken_and_written_numbers_compare_equal_after_normalization():
    said = normalize("Tickets cost thirty-five dollars each.")
    heard = normalize("Tickets cost $35 each.")
    assert word_edits(heard, said).errors == 0


@pytest.mark.parametrize("reference, hypothesis, s, d, i, length", [
    ("the cat sat on the mat", "the cat sit on mat", 1, 1, 0, 6),   # sat->sit, "the" dropped
    ("a b c", "a x b c", 0, 0, 1, 3),                                # one inserted word
    ("a b c", "", 0, 3, 0, 3),                                       # nothing heard: all deleted
    ("a", "b c d", 1, 0, 2, 1),                                      # more errors than words: rate 3
    ("one two three four", "one two three four", 0, 0, 0, 4),
])
def test_word_edit_counts_match_hand_alignment(reference, hypothesis, s, d, i, length):
    counts = word_edits(reference, hypothesis)
    assert (counts.substitutions, counts.deletions, counts.insertions, counts.reference_length) == (s, d, i, length)
    assert counts.rate == pytest.approx((s + d + i) / length)


def test_character_edit_counts_match_hand_alignment():
    kitten = char_edits("kitten", "sitting")  # k->s, e->i, +g: the textbook Levenshtein distance 3
    assert (kitten.substitutions, kitten.deletions, kitten.insertions) == (2, 0, 1)
    assert kitten.rate == pytest.approx(3 / 6)
    spaced = char_edits("ab cd", "abcd")  # the space counts as a character
    assert (spaced.errors, spaced.reference_length) == (1, 5)
    assert char_edits("abc", "").rate == 1.0


def test_empty_reference_is_refused():
    with pytest.raises(ValueError, match="empty"):
        word_edits("", "something")
    with pytest.raises(ValueError, match="empty"):
        char_edits("", "x")


def test_corpus_wer_weighs_items_by_their_length():
    wer = CORE_METRICS[0]
    items = [{"word_errors": 1, "reference_words": 2}, {"word_errors": 0, "reference_words": 8}]
    assert aggregate(items, wer) == pytest.approx(1 / 10)  # not the mean of 0.5 and 0.0
    rtf = TIMING_METRICS[1]
    assert aggregate([{"synthesis_s": 1.0, "duration_s": 4.0}, {"synthesis_s": 3.0, "duration_s": 4.0}], rtf) == 0.5
    assert aggregate([{"word_errors": None, "reference_words": None}], wer) is None


# ---- built-in test sets ---------------------------------------------------------------------------
def test_builtin_english_set_is_varied():
    english = load_test_set("english")
    assert len(english.items) >= 50
    assert len({item.id for item in english.items}) == len(english.items)
    categories = {item.category for item in english.items}
    assert {"numbers", "dates", "abbreviations", "names", "question", "long", "short"} <= categories
    lengths = [len(item.text.split()) for item in english.items]
    assert min(lengths) <= 2 and max(lengths) >= 30


def test_sample_spreads_over_every_category():
    english = load_test_set("english")
    sample = english.spread(20)
    assert len(sample.items) == 20 and sample.items == english.spread(20).items
    assert {i.category for i in sample.items} == {i.category for i in english.items}
    assert english.spread(500).items == english.items and english.limited(3).items == english.items[:3]
    with pytest.raises(ConfigError, match="--sample 0"):
        english.spread(0)


def test_builtin_arctic_set_ships_the_clip_with_its_licence():
    arctic = load_test_set("arctic")
    references = {item.reference for item in arctic.items}
    assert len(references) == 1
    clip = references.pop()
    assert clip.read_bytes() == HUMAN.read_bytes()
    assert (clip.parent / "COPYING.cmu_arctic").read_text().startswith(
        (FIXTURES / "e2e" / "COPYING.cmu_arctic").read_text()[:200])
    assert all(item.reference_text == HUMAN_TEXT for item in arctic.items)
    assert set(BUILTIN_SETS) == {"english", "arctic"}


def test_tsv_and_jsonl_sets_load_with_relative_references(tmp_path):
    (tmp_path / "ref.wav").write_bytes(HUMAN.read_bytes())
    (tmp_path / "set.tsv").write_text("id\ttext\treference\na\tHello there.\tref.wav\nb\tBye.\t\n")
    items = load_test_set(tmp_path / "set.tsv").items
    assert [(i.id, i.reference) for i in items] == [("a", (tmp_path / "ref.wav").resolve()), ("b", None)]
    (tmp_path / "set.jsonl").write_text(json.dumps({"id": "a", "text": "Hi.", "voice": "jm_kumo"}) + "\n")
    assert load_test_set(tmp_path / "set.jsonl").items[0].voice == "jm_kumo"


def test_missing_reference_is_a_clear_error(tmp_path):
    (tmp_path / "set.tsv").write_text("id\ttext\treference\nitem7\tHello.\tnowhere/missing.wav\n")
    with pytest.raises(AudioError, match=r"set.tsv:2: item 'item7': reference audio not found: .*missing.wav"):
        load_test_set(tmp_path / "set.tsv")


@pytest.mark.parametrize("content, message", [
    ("id\ttext\nx\tA.\nx\tB.\n", "appears twice"),
    ("id\ttext\tspeaker\nx\tA.\ty\n", "unknown field"),
    ("name\twords\nx\tA.\n", "header row"),
])
def test_malformed_sets_are_refused(tmp_path, content, message):
    (tmp_path / "set.tsv").write_text(content)
    with pytest.raises(ConfigError, match=message):
        load_test_set(tmp_path / "set.tsv")


# ---- the paired bootstrap -------------------------------------------------------------------------
def run_with(values: dict[str, float], label: str, key: str = "speaker_similarity") -> dict:
    return {"label": label, "items": [{"id": item_id, key: value} for item_id, value in values.items()]}


SIM = CORE_METRICS[2]


def test_constant_improvement_has_a_zero_width_interval():
    from voxpipe.eval.compare import compare_runs

    a = {f"i{n}": 0.2 + 0.01 * n for n in range(30)}
    b = {item_id: value + 0.5 for item_id, value in a.items()}
    (delta,) = compare_runs(run_with(a, "a"), run_with(b, "b"), (SIM,), seed=1)
    assert (delta.delta, delta.low, delta.high) == pytest.approx((0.5, 0.5, 0.5))
    assert delta.verdict == "better" and delta.items == 30


def test_bootstrap_interval_matches_the_normal_theory_width():
    """Paired differences 0.5 ± 1 (alternating, population sd 1, n = 400): the mean's standard
    error is 1/sqrt(400) = 0.05, so the 95% interval is 0.5 ± 1.96 × 0.05 = [0.402, 0.598]."""
    from voxpipe.eval.compare import compare_runs

    n = 400
    a = {f"i{k}": 0.0 for k in range(n)}
    b = {f"i{k}": 0.5 + (1.0 if k % 2 else -1.0) for k in range(n)}
    (delta,) = compare_runs(run_with(a, "a"), run_with(b, "b"), (SIM,), resamples=4000, seed=0)
    assert delta.delta == pytest.approx(0.5)
    assert delta.low == pytest.approx(0.402, abs=0.012)
    assert delta.high == pytest.approx(0.598, abs=0.012)
    zero_mean = {f"i{k}": (1.0 if k % 2 else -1.0) for k in range(n)}
    (noise,) = compare_runs(run_with(a, "a"), run_with(zero_mean, "b"), (SIM,), seed=0)
    assert noise.low < 0 < noise.high and noise.verdict == "no clear change"


def test_bootstrap_is_seeded_and_pairs_items_by_id():
    from voxpipe.eval.compare import compare_runs

    rng = np.random.default_rng(3)
    a = {f"i{k}": float(v) for k, v in enumerate(rng.uniform(0.5, 0.9, 40))}
    b = {item_id: value + float(rng.normal(0.02, 0.05)) for item_id, value in a.items()}
    first = compare_runs(run_with(a, "a"), run_with(b, "b"), (SIM,), seed=7)[0]
    shuffled = dict(reversed(list(b.items())))
    again = compare_runs(run_with(a, "a"), run_with(shuffled, "b"), (SIM,), seed=7)[0]
    assert (first.low, first.high) == (again.low, again.high)
    other_seed = compare_runs(run_with(a, "a"), run_with(b, "b"), (SIM,), seed=8)[0]
    assert (first.low, first.high) != (other_seed.low, other_seed.high)


def test_wer_delta_is_a_difference_of_corpus_rates():
    from voxpipe.eval.compare import compare_runs

    wer = CORE_METRICS[0]
    a = {"label": "a", "items": [{"id": f"i{k}", "word_errors": 1, "reference_words": 10} for k in range(20)]}
    b = {"label": "b", "items": [{"id": f"i{k}", "word_errors": 3, "reference_words": 10} for k in range(20)]}
    (delta,) = compare_runs(a, b, (wer,))
    assert (delta.a, delta.b, delta.delta, delta.low, delta.high) == pytest.approx((0.1, 0.3, 0.2, 0.2, 0.2))
    assert delta.verdict == "worse"


def test_duration_changes_have_no_better_direction():
    from voxpipe.eval.compare import compare_runs

    duration = TIMING_METRICS[0]
    a = run_with({f"i{k}": 2.0 for k in range(10)}, "a", key="duration_s")
    b = run_with({f"i{k}": 1.5 for k in range(10)}, "b", key="duration_s")
    assert duration.higher_is_better is None
    assert compare_runs(a, b, (duration,))[0].verdict == "lower"
    assert compare_runs(b, a, (duration,))[0].verdict == "higher"


def test_runs_without_common_items_cannot_be_compared():
    from voxpipe.eval.compare import compare_runs

    with pytest.raises(ConfigError, match="share no item ids"):
        compare_runs(run_with({"x": 1.0}, "a"), run_with({"y": 1.0}, "b"), (SIM,))


# ---- the runner and the report, with stand-in instruments ---------------------------------------
class EchoRecognizer(SpeechRecognizer):
    """Hears the first two words of what it is told the audio says (a stand-in for Whisper)."""

    name = "echo"

    def __init__(self, transcripts: dict[int, str]):
        self.transcripts = transcripts

    def recognize(self, audio):
        return self.transcripts[audio.num_samples]


class LoudnessEncoder(SpeakerEncoder):
    name = "loudness"

    def embed(self, audio):
        return torch.tensor([float(audio.samples.abs().mean()), 1.0])


class PeakQuality(QualityPredictor):
    name = "peak"
    metrics = ("peak", "rms")

    def score(self, audio):
        return {"peak": float(audio.samples.abs().max()), "rms": float(audio.samples.pow(2).mean().sqrt())}


def make_case(tmp_path: Path, amplitude: float = 0.3):
    """A two-item TSV set with a reference and an audio directory of tones of known lengths."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    (tmp_path / "ref.wav").write_bytes(HUMAN.read_bytes())
    (tmp_path / "set.tsv").write_text("id\ttext\tcategory\treference\n"
                                      "one\tThe cat sat.\tshort\tref.wav\n"
                                      "two\tA dog ran away.\tshort\tref.wav\n")
    audio_dir = tmp_path / f"audio{amplitude}"
    audio_dir.mkdir()
    lengths = {"one": 16000, "two": 24000}
    for item_id, length in lengths.items():
        tone = amplitude * torch.sin(torch.arange(length) * 0.05)
        Audio(tone, 16000).save(audio_dir / f"{item_id}.wav")
    recognizer = EchoRecognizer({16000: "The cat sat.", 24000: "a dog ran"})
    instruments = Instruments(recognizer, LoudnessEncoder(), PeakQuality())
    return load_test_set(tmp_path / "set.tsv"), audio_dir, instruments


def test_report_keys_are_stable_and_values_follow_the_items(tmp_path):
    from voxpipe.eval.report import markdown_report, write_json

    test_set, audio_dir, instruments = make_case(tmp_path)
    document = evaluate(test_set, [RunSpec("tones", audio_dir=audio_dir)], instruments, progress=None)
    assert list(document) == ["format", "version", "created", "voxpipe_version", "test_set", "settings",
                              "instruments", "metrics", "runs"]
    (run,) = document["runs"]
    assert list(run) == ["label", "config", "overrides", "audio_dir", "sample_rate", "aggregate", "items"]
    assert list(run["aggregate"]) == ["items", "wer", "cer", "speaker_similarity", "quality.peak", "quality.rms",
                                      "duration_s", "rtf", "by_category"]
    assert all(tuple(item) == ITEM_KEYS for item in run["items"])
    one, two = run["items"]
    assert (one["wer"], two["word_errors"], two["reference_words"]) == (0.0, 1, 4)  # "away" not heard
    assert run["aggregate"]["wer"] == pytest.approx(1 / 7)
    assert run["aggregate"]["rtf"] is None and one["synthesis_s"] is None  # existing audio is not timed
    assert one["duration_s"] == pytest.approx(1.0) and two["duration_s"] == pytest.approx(1.5)
    assert one["quality"]["peak"] == pytest.approx(0.3, abs=1e-3)
    assert run["aggregate"]["by_category"] == {"short": {"items": 2, "wer": pytest.approx(1 / 7),
                                                         "cer": run["aggregate"]["cer"]}}
    path = write_json(document, tmp_path / "out" / "results.json")
    assert json.loads(path.read_text()) == json.loads(json.dumps(document))
    report = markdown_report(document)
    assert "| tones | 2 | 14.3 |" in report and "a dog ran away" in report


def test_plots_are_png_files_one_per_metric(tmp_path):
    from voxpipe.eval.plots import write_plots

    test_set, audio_dir, instruments = make_case(tmp_path)
    document = evaluate(test_set, [RunSpec("tones", audio_dir=audio_dir)], instruments, progress=None)
    written = write_plots(document, tmp_path / "plots")
    assert sorted(p.name for p in written) == sorted(
        ["wer.png", "cer.png", "speaker_similarity.png", "quality_peak.png", "quality_rms.png", "duration_s.png"])
    assert all(p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for p in written)


def test_compare_command_prints_deltas_with_intervals(tmp_path, capsys):
    from voxpipe.commands.eval import register
    from voxpipe.eval.report import write_json

    test_set, quiet_dir, instruments = make_case(tmp_path, amplitude=0.3)
    _, loud_dir, _ = make_case(tmp_path / "loud", amplitude=0.6)
    quiet = evaluate(test_set, [RunSpec("quiet", audio_dir=quiet_dir)], instruments, progress=None)
    loud = evaluate(test_set, [RunSpec("loud", audio_dir=loud_dir)], instruments, progress=None)
    a, b = write_json(quiet, tmp_path / "a.json"), write_json(loud, tmp_path / "b.json")
    import argparse

    parser = argparse.ArgumentParser()
    register(parser.add_subparsers())
    args = parser.parse_args(["eval", "--compare", str(a), str(b), "-o", str(tmp_path / "cmp")])
    assert args.handler(args) == 0
    out = capsys.readouterr().out
    assert "A = quiet" in out and "B = loud" in out and "2 paired items" in out
    peak_row = next(line for line in out.splitlines() if line.startswith("| PEAK"))
    assert "| +0.30 | [+0.30, +0.30] | better |" in peak_row
    duration_row = next(line for line in out.splitlines() if line.startswith("| dur s"))
    assert duration_row.endswith("| no clear change |")  # same lengths; duration has no better direction
    saved = json.loads((tmp_path / "cmp" / "comparison.json").read_text())
    assert {d["metric"] for d in saved["deltas"]} >= {"wer", "quality.peak", "speaker_similarity"}


def test_unreadable_audio_is_reported_before_any_measurement(tmp_path):
    test_set, audio_dir, instruments = make_case(tmp_path)
    (audio_dir / "two.wav").write_bytes(b"RIFF but not really a wave file")

    class Untouchable(EchoRecognizer):
        def recognize(self, audio):
            raise AssertionError("measured before the inputs were checked")

    instruments.recognizer = Untouchable({})
    with pytest.raises(AudioError, match=r"cannot decode audio file .*two.wav"):
        evaluate(test_set, [RunSpec("tones", audio_dir=audio_dir)], instruments, progress=None)
    (audio_dir / "two.wav").unlink()
    with pytest.raises(AudioError, match=r"no audio for item\(s\) two"):
        evaluate(test_set, [RunSpec("tones", audio_dir=audio_dir)], instruments, progress=None)


def test_cli_errors_exit_with_one_line(tmp_path, capsys):
    from voxpipe.cli import main

    (tmp_path / "set.tsv").write_text("id\ttext\treference\nx\tHello.\tgone.wav\n")
    code = main(["eval", "--test-set", str(tmp_path / "set.tsv"), "-o", str(tmp_path / "out")])
    assert code == 1
    assert "reference audio not found" in capsys.readouterr().err
    assert main(["eval", "--compare", str(tmp_path / "set.tsv"), str(tmp_path / "set.tsv")]) == 2
    assert "is not JSON" in capsys.readouterr().err
    (tmp_path / "a_file").write_text("keep me")
    assert main(["eval", "--test-set", "english", "-o", str(tmp_path / "a_file")]) == 2
    assert "cannot create the output directory" in capsys.readouterr().err
    assert (tmp_path / "a_file").read_text() == "keep me"


def test_instruments_come_from_the_registry_with_validated_options():
    from voxpipe.eval.runner import build_instruments
    from voxpipe.plugins.evaluation.dnsmos import DnsmosPredictor
    from voxpipe.plugins.evaluation.resemblyzer import ResemblyzerEncoder
    from voxpipe.plugins.evaluation.whisper import WhisperRecognizer

    built = build_instruments(options={"recognizer": {"beam_size": 2}})
    assert isinstance(built.recognizer, WhisperRecognizer) and built.recognizer.beam_size == 2
    assert isinstance(built.speaker_encoder, ResemblyzerEncoder) and isinstance(built.quality, DnsmosPredictor)
    assert built.recognizer._model is None and built.speaker_encoder._encoder is None  # loaded lazily
    assert build_instruments({"quality": None, "speaker_encoder": None}).quality is None
    with pytest.raises(ConfigError, match="recognizer.beam_sise"):
        build_instruments(options={"recognizer": {"beam_sise": 2}})
    with pytest.raises(ConfigError, match="recognizer.model 'huge'"):
        build_instruments(options={"recognizer": {"model": "huge"}})


def test_missing_package_names_the_extra(monkeypatch):
    from voxpipe.plugins.evaluation import dependencies
    from voxpipe.plugins.evaluation.resemblyzer import ResemblyzerEncoder

    monkeypatch.setattr(dependencies, "is_installed", lambda module: module != "webrtcvad")
    with pytest.raises(ConfigError, match=r"'webrtcvad'.*pip install 'voxpipe\[eval\]'"):
        ResemblyzerEncoder()


def test_whisper_base_is_joined_once_and_atomically(tmp_path, monkeypatch):
    from voxpipe.plugins.evaluation import whisper

    data = {}
    for index, module in enumerate(whisper.BASE_PARTS, 1):
        folder = tmp_path / module / "data"
        folder.mkdir(parents=True)
        (folder / f"model.bin.part{index}").write_bytes(bytes([index]) * (1000 + index))
        data[module] = folder
    for name in whisper.MODEL_FILES:
        (data[whisper.BASE_PARTS[0]] / name).write_text(f"contents of {name}")
    monkeypatch.setattr(whisper, "require", lambda *args: None)
    monkeypatch.setattr(whisper, "_package_data_dir", lambda module: data[module])
    monkeypatch.setattr(whisper.metadata, "version", lambda name: "1.0.0")
    target = whisper.base_model_dir(tmp_path / "cache")
    assert target == tmp_path / "cache" / "whisper-base-1.0.0"
    assert (target / "model.bin").read_bytes() == b"\x01" * 1001 + b"\x02" * 1002
    assert (target / "tokenizer.json").read_text() == "contents of tokenizer.json"
    assert sorted(p.name for p in target.iterdir()) == sorted(["model.bin", *whisper.MODEL_FILES])  # no temp files
    (target / "model.bin").write_bytes(b"\x01" * 10)  # an interrupted copy from elsewhere: rebuilt
    whisper.base_model_dir(tmp_path / "cache")
    assert (target / "model.bin").stat().st_size == 2003


# ---- the real instruments on real clips --------------------------------------------------------
@pytest.fixture(scope="module")
def resemblyzer():
    from voxpipe.plugins.evaluation.resemblyzer import ResemblyzerEncoder

    return ResemblyzerEncoder()


def test_speaker_similarity_separates_speakers(resemblyzer):
    human, kokoro = read(HUMAN), read(KOKORO)
    reference = resemblyzer.embed(human)
    assert reference.shape == (256,)
    assert cosine_similarity(reference, resemblyzer.embed(human)) == pytest.approx(1.0, abs=1e-5)
    half = human.num_samples // 2
    first, second = Audio(human.samples[: half + 8000], 16000), Audio(human.samples[half - 8000:], 16000)
    same_speaker = cosine_similarity(resemblyzer.embed(first), resemblyzer.embed(second))
    other_speaker = cosine_similarity(reference, resemblyzer.embed(kokoro))  # same words, another voice
    assert same_speaker > other_speaker + 0.15, (same_speaker, other_speaker)


def test_silent_audio_is_refused_by_the_instruments(resemblyzer):
    with pytest.raises(AudioError, match="silent"):
        resemblyzer.embed(Audio(torch.zeros(16000), 16000))


def test_whisper_and_dnsmos_on_human_and_synthetic_speech():
    """Speech is understood and scores far above white noise on DNSMOS. tiny.en transcribes the
    human clip exactly but hears Kokoro's jf_alpha (a Japanese voice reading English) as "He
    don't sharply and face Gregson across the table" (3 of 9 words wrong) on an AVX2 CPU and as
    "He don't sharply and face cracks in across the table" (5 errors) on an AVX-512 one, int8 or
    float32 alike: the bound allows either machine (docs/eval.md)."""
    from voxpipe.eval.runner import build_instruments, measure
    from voxpipe.eval.testset import TestItem

    instruments = build_instruments({"speaker_encoder": None}, {"recognizer": {"cpu_threads": 2}})
    item = TestItem(id="a0009", text=HUMAN_TEXT)
    noise = measure(item, Audio(0.3 * torch.randn(48000, generator=torch.Generator().manual_seed(0)), 16000),
                    instruments)
    assert noise["wer"] >= 0.9, noise["hypothesis"]
    for clip, most_errors in ((HUMAN, 1), (KOKORO, 5)):
        record = measure(item, read(clip), instruments)
        assert record["word_errors"] <= most_errors, record["hypothesis"]
        assert record["reference_words"] == 9 and record["reference_normalized"].startswith("he turned sharply")
        assert set(record["quality"]) == {"sig", "bak", "ovrl", "p808"}
        assert all(1.0 <= value <= 5.0 for value in record["quality"].values())
        assert record["quality"]["bak"] > noise["quality"]["bak"] + 1.0
        assert record["quality"]["ovrl"] > noise["quality"]["ovrl"] + 1.0


def test_metric_list_includes_every_quality_key():
    keys = [metric.key for metric in metrics_for(("sig", "bak"))]
    assert keys == ["wer", "cer", "speaker_similarity", "quality.sig", "quality.bak", "duration_s", "rtf"]
    assert isinstance(metrics_for(())[0], Metric)
