"""`voxpipe batch`: manifest checks, resumable runs, atomic outputs, local vs Ray engines.

Runs on the tiny offline pipeline (random weights, noise-like audio, real plumbing).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from voxpipe.batch import ManifestError, item_seed, read_manifest, run_batch
from voxpipe.batch.local import LocalEngine
from voxpipe.batch.options import options_check
from voxpipe.batch.results import RESULTS_NAME
from voxpipe.core.config import build_config
from voxpipe.core.errors import ConfigError, VoxpipeError
from voxpipe.core.files import TEMPORARY_MARK
from voxpipe.testing.fixtures import E2E_PROMPT, E2E_PROMPT_TEXT, fixtures_root, tiny_pipeline_config

pytestmark = [
    pytest.mark.filterwarnings("ignore::DeprecationWarning:ray.*"),  # Ray's own internals
    pytest.mark.filterwarnings("ignore:1 symbol of '.'"),  # the failing item's text, on purpose
]

TEXTS = ["Hello there.", "How are you today?", "Fine, thanks.", "See you soon.", "Good bye now.", "One more."]


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """(pipeline YAML path, .voice path, loaded pipeline) of the tiny pipeline with 2 solver steps."""
    from voxpipe import Pipeline

    directory = tmp_path_factory.mktemp("batch")
    config = tiny_pipeline_config(solver={"type": "euler", "num_steps": 2})
    config_path = directory / "tiny.yaml"
    config_path.write_text(yaml.safe_dump(config), encoding="utf-8")
    pipeline = Pipeline.from_config(str(config_path))
    voice_path = directory / "alice.voice"
    pipeline.encode_prompt(str(fixtures_root() / "e2e" / E2E_PROMPT), E2E_PROMPT_TEXT).save(voice_path)
    return config_path, voice_path, pipeline


def write_manifest(directory: Path, rows: list[dict], name: str = "manifest.jsonl") -> Path:
    path = directory / name
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


def items(count: int, voice: Path | str) -> list[dict]:
    return [{"id": f"item{i}", "text": TEXTS[i % len(TEXTS)], "voice": str(voice)} for i in range(count)]


def results(directory: Path) -> list[dict]:
    return [json.loads(line) for line in (directory / RESULTS_NAME).read_text().splitlines()]


def file_states(directory: Path) -> dict[str, tuple[int, int]]:
    return {p.name: (p.stat().st_ino, p.stat().st_mtime_ns) for p in directory.glob("*.wav")}


# ---- manifest ----------------------------------------------------------------------------------
def test_malformed_rows_are_reported_with_line_numbers(tmp_path):
    (tmp_path / "alice.voice").write_bytes(b"")  # exists; contents are checked later, against the pipeline
    lines = [
        '{"id": "a", "text": "fine", "voice": "alice.voice"}',
        '{"text": "no id"}',
        '',
        '{"id": "a", "text": "again"}',
        '{"id": "b", "text": "   "}',
        '{"id": "c", "text": "hi", "voice": "missing.voice"}',
        '{"id": "d", "text": "hi", "options": {"spede": 1.1}}',
        '{"id": "e", "text": "hi", "options": {"num_steps": "many"}}',
        '{"id": "f", "text": "hi", "seed": -1}',
        '{"id": "../g", "text": "hi"}',
        'not json',
        '{"id": "h", "text": "hi", "colour": "red"}',
        '{"id": "A", "text": "case-only duplicate"}',
    ]
    path = tmp_path / "m.jsonl"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(ManifestError) as caught:
        read_manifest(path, check_options=options_check(build_config(tiny_pipeline_config())))
    problems = dict(caught.value.problems)
    assert problems[2] == "missing id"
    assert "duplicate id 'a' (first on line 1)" in problems[4]
    assert problems[5] == "empty text"
    assert "unknown voice" in problems[6] and "missing.voice" in problems[6]
    assert "bad options" in problems[7] and "no option 'spede'; did you mean speed?" in problems[7]
    assert "option num_steps" in problems[8] and "'many'" in problems[8]
    assert "bad seed -1" in problems[9]
    assert "bad id '../g'" in problems[10]
    assert "not valid JSON" in problems[11]
    assert "unknown column 'colour'" in problems[12]
    assert "duplicate id 'A'" in problems[13]
    assert 1 not in problems and 3 not in problems
    assert "line 6: unknown voice" in str(caught.value)


def test_csv_and_tsv_manifests(tmp_path):
    (tmp_path / "m.csv").write_text(
        'id,text,options,seed\n'
        'one,"A quoted, text\nover two lines.","{""speed"": 1.1}",5\n'
        'two,Plain text.,,\n'
        ',No id.,,\n')
    with pytest.raises(ManifestError) as caught:
        read_manifest(tmp_path / "m.csv")
    assert caught.value.problems == [(5, "missing id")]  # the quoted line break counts
    (tmp_path / "m.csv").write_text('id,text,options,seed\none,"A quoted, text\nover two lines.","{""speed"": 1.1}",5\n'
                                    'two,Plain text.,,\n')
    one, two = read_manifest(tmp_path / "m.csv")
    assert (one.text, one.options, one.seed, one.line) == ("A quoted, text\nover two lines.", {"speed": 1.1}, 5, 2)
    assert (two.options, two.seed, two.line) == ({}, item_seed("two"), 4)
    (tmp_path / "m.tsv").write_text("id\ttext\tvoice\nx\tTab separated.\tbob\n")
    (item,) = read_manifest(tmp_path / "m.tsv")
    assert (item.id, item.text, item.voice) == ("x", "Tab separated.", "bob")
    (tmp_path / "bad.csv").write_text("name,text\nx,y\n")
    with pytest.raises(ManifestError, match="line 1: header"):
        read_manifest(tmp_path / "bad.csv")
    with pytest.raises(ConfigError, match="unknown format '.txt'"):
        read_manifest(tmp_path / "m.txt")


def test_voice_names_are_unknown_to_a_cloning_pipeline(tmp_path, setup):
    config_path, voice_path, _ = setup
    manifest = write_manifest(tmp_path, [{"id": "a", "text": "Hi.", "voice": str(voice_path)},
                                         {"id": "b", "text": "Hi.", "voice": "bob"}])
    with pytest.raises(ManifestError) as caught:
        run_batch(manifest, tmp_path / "out", config_path, engine=LocalEngine(0))
    assert [line for line, _ in caught.value.problems] == [2]
    assert "unknown voice 'bob'" in caught.value.problems[0][1] and "clones voices" in caught.value.problems[0][1]
    assert not (tmp_path / "out").exists()  # nothing was done


def test_derived_seeds_are_stable_across_processes():
    code = "from voxpipe.batch.seeds import item_seed; print(item_seed('chapter-01'), item_seed('chapter-02'))"
    outputs = {
        subprocess.run([sys.executable, "-c", code], env={**os.environ, "PYTHONHASHSEED": seed},
                       capture_output=True, text=True, check=True).stdout
        for seed in ("1", "2")
    }
    assert len(outputs) == 1
    first, second = (int(value) for value in outputs.pop().split())
    assert (first, second) == (item_seed("chapter-01"), item_seed("chapter-02"))
    assert first != second and 0 <= first < 2**63


# ---- runs --------------------------------------------------------------------------------------
def test_run_resumes_redoes_changed_items_and_records_failures(tmp_path, setup):
    config_path, voice_path, pipeline = setup
    rows = items(3, voice_path)
    rows[2]["options"] = {"speed": 1.3}
    rows.append({"id": "broken", "text": " .", "voice": str(voice_path)})  # no speakable token: fails at run time
    manifest = write_manifest(tmp_path, rows)
    out = tmp_path / "out"
    first = run_batch(manifest, out, config_path, engine=LocalEngine(0))
    assert (first.synthesized, first.failed, first.skipped) == (3, 1, 0)
    table = {row["id"]: row for row in results(out)}
    assert [row["id"] for row in results(out)] == ["item0", "item1", "item2", "broken"]
    assert "no speakable tokens" in table["broken"]["error"] and table["broken"]["path"] is None
    assert not (out / "broken.wav").exists()

    # an item alone, through the public API with the seed derived from its id: the same bytes
    alone = pipeline.synthesize(rows[2]["text"], pipeline_voice(voice_path), seed=item_seed("item2"), speed=1.3)
    alone.save(tmp_path / "alone.wav")
    assert (tmp_path / "alone.wav").read_bytes() == (out / "item2.wav").read_bytes()
    assert table["item2"]["duration"] == pytest.approx(alone.duration)
    assert table["item2"]["sample_rate"] == alone.sample_rate == 24000

    before = file_states(out)
    rows[1]["text"] = "A changed text."
    rows[0]["text"] = "."  # now fails: its earlier output must not stay as if it were this text's
    write_manifest(tmp_path, rows)
    second = run_batch(manifest, out, config_path, engine=LocalEngine(0))
    assert (second.skipped, second.synthesized, second.failed) == (1, 1, 2)  # the failed item is retried
    after = file_states(out)
    assert after["item2.wav"] == before["item2.wav"]
    assert after["item1.wav"] != before["item1.wav"]
    assert "item0.wav" not in after
    assert [row["error"] is None for row in results(out)] == [False, True, True, False]  # one row per item


def pipeline_voice(path: Path):
    from voxpipe.core.voice import Voice

    return Voice.load(path)


@pytest.fixture(scope="module")
def ray_instance():
    """One small local Ray instance for the Ray tests (an engine started on a running instance
    leaves it running)."""
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=1, include_dashboard=False, _node_ip_address="127.0.0.1")  # loopback only
    yield ray
    ray.shutdown()


@pytest.mark.slow
def test_local_and_ray_engines_write_identical_outputs(tmp_path, setup, ray_instance):
    from voxpipe.batch.ray_engine import RayEngine

    config_path, voice_path, _ = setup
    rows = items(3, voice_path)
    rows[1]["seed"] = 12345
    manifest = write_manifest(tmp_path, rows)
    local = run_batch(manifest, tmp_path / "local", config_path, engine=LocalEngine(1), threads=1)
    distributed = run_batch(manifest, tmp_path / "ray", config_path, engine=RayEngine(1), threads=1)
    assert local.synthesized == distributed.synthesized == 3
    for row in rows:
        name = f"{row['id']}.wav"
        assert (tmp_path / "local" / name).read_bytes() == (tmp_path / "ray" / name).read_bytes()
    def without_time(directory):
        return [{key: value for key, value in row.items() if key != "seconds"} for row in results(directory)]
    assert without_time(tmp_path / "local") == without_time(tmp_path / "ray")


@pytest.mark.slow
def test_interrupted_run_leaves_no_partial_file_and_rerun_finishes(tmp_path, setup):
    config_path, voice_path, _ = setup
    count = 6
    manifest = write_manifest(tmp_path, items(count, voice_path))
    out = tmp_path / "out"
    command = [sys.executable, "-m", "voxpipe.cli", "batch", str(manifest), "-o", str(out), "-c", str(config_path),
               "--workers", "1", "--threads", "1", "--quiet"]
    # its own process group, so the signal reaches the workers too, as Ctrl-C in a terminal does
    # SIGINT back to its default in the child: a test run started in the background (`cmd &`) has it
    # ignored, and a process started with SIGINT ignored rightly keeps ignoring Ctrl-C
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True,
                               preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.monotonic() + 300  # generous: a loaded CI machine starts workers slowly
    while not ((out / RESULTS_NAME).is_file() and (out / RESULTS_NAME).read_text().count("\n") >= 1):
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline
        time.sleep(0.02)
    os.killpg(process.pid, signal.SIGINT)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, stderr.decode()
    assert b"interrupted" in stderr
    assert not list(out.glob(f"*{TEMPORARY_MARK}*"))
    finished = {row["id"] for row in results(out)}
    assert 1 <= len(finished) < count
    assert {p.stem for p in out.glob("*.wav")} == finished  # every audio file has its row, and is complete
    import soundfile

    for path in out.glob("*.wav"):
        assert soundfile.info(str(path)).frames > 0
    before = file_states(out)

    summary = run_batch(manifest, out, config_path, engine=LocalEngine(0))
    assert (summary.skipped, summary.synthesized, summary.failed) == (len(finished), count - len(finished), 0)
    after = file_states(out)
    assert {name: after[name] for name in before} == before  # finished items were not redone
    assert [row["id"] for row in results(out)] == [f"item{i}" for i in range(count)]


def test_cli_reports_malformed_manifest_with_exit_code_2(tmp_path, setup, capsys):
    from voxpipe.cli import main

    config_path, _, _ = setup
    manifest = write_manifest(tmp_path, [{"id": "a", "text": ""}])
    assert main(["batch", str(manifest), "-o", str(tmp_path / "out"), "-c", str(config_path)]) == 2
    assert "line 1: empty text" in capsys.readouterr().err


def test_a_pipeline_that_cannot_load_stops_the_run_with_its_reason(tmp_path):
    manifest, config_path = broken_pipeline_run(tmp_path)
    with pytest.raises(VoxpipeError, match="worker could not load the pipeline: .*nowhere"):
        run_batch(manifest, tmp_path / "out", config_path, engine=LocalEngine(1), threads=1)
    assert [p.name for p in (tmp_path / "out").iterdir() if p.suffix == ".wav"] == []


@pytest.mark.slow
def test_a_pipeline_that_cannot_load_stops_a_ray_run_with_its_reason(tmp_path, ray_instance):
    from voxpipe.batch.ray_engine import RayEngine

    manifest, config_path = broken_pipeline_run(tmp_path)
    with pytest.raises(VoxpipeError, match="worker could not load the pipeline: .*nowhere"):
        run_batch(manifest, tmp_path / "out", config_path, engine=RayEngine(1), threads=1)
    assert ray_instance.is_initialized()  # an instance the engine did not start is left running


def broken_pipeline_run(directory: Path) -> tuple[Path, Path]:
    """(manifest, pipeline YAML whose acoustic model weights do not exist)."""
    config = tiny_pipeline_config(acoustic_model={"type": "zipvoice-distill", "weights": str(directory / "nowhere")})
    config_path = directory / "broken.yaml"
    config_path.write_text(yaml.safe_dump(config))
    return write_manifest(directory, [{"id": "a", "text": "Hi."}, {"id": "b", "text": "Ho."}]), config_path


def test_unknown_built_in_voice_names_are_reported_with_line_numbers(tmp_path):
    pytest.importorskip("onnxruntime")  # the kokoro extra
    manifest = tmp_path / "m.tsv"
    manifest.write_text("id\ttext\tvoice\none\tHello.\tjf_alpha\ntwo\tHello.\tzz_nobody\n"
                        "three\tHello.\tjf_alpha:0.5,zz_nobody:0.5\n")
    with pytest.raises(ManifestError) as caught:
        run_batch(manifest, tmp_path / "out", "kokoro", engine=LocalEngine(0))
    assert [line for line, _ in caught.value.problems] == [3, 4]
    assert all("unknown voice" in message and "zz_nobody" in message for _, message in caught.value.problems)
