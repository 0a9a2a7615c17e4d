"""`voxpipe synth` / `voxpipe voice create` on a local copy of the official layout."""

import subprocess
import sys

import numpy as np
import pytest
import soundfile

from voxpipe.cli import main
from voxpipe.core.config import build_config
from voxpipe.core.pipeline import Pipeline
from voxpipe.core.precision import AUTO_KERNELS, default_overrides
from voxpipe.testing.fixtures import assemble_official_layout, fixtures_root

PROMPT = fixtures_root() / "e2e" / "cmu_arctic_a0009.wav"
PROMPT_TEXT = "He turned sharply, and faced Gregson across the table."
TEXT = "Good morning. The weather is fine today."


@pytest.fixture(scope="module")
def weights_dir(tmp_path_factory):
    return assemble_official_layout(tmp_path_factory.mktemp("hub"), "luxtts")


@pytest.mark.parametrize("precision", [None, "fp32"])
def test_cli_writes_the_same_samples_as_the_api(weights_dir, tmp_path, capsys, precision):
    """Without --precision the command runs `auto` (the config sets no arithmetic): the same as the
    API given the same overrides; --precision fp32 is the config as written (the parity path)."""
    out = tmp_path / "cli.wav"
    flags = [] if precision is None else ["--precision", precision]
    code = main(["synth", "--config", "luxtts", "--weights-dir", str(weights_dir), "--prompt", str(PROMPT),
                 "--prompt-text", PROMPT_TEXT, "--text", TEXT, "-o", str(out), "--seed", "7", "--quiet", *flags])
    assert code == 0, capsys.readouterr().err
    config = build_config("luxtts", weights_dir=str(weights_dir))
    overrides = default_overrides(config)[0] if precision is None else []
    if precision is None:
        assert any(o.endswith(f"kernels={AUTO_KERNELS}") for o in overrides)
    pipeline = Pipeline.from_config("luxtts", overrides, weights_dir=str(weights_dir))
    audio = pipeline.synthesize(TEXT, pipeline.encode_prompt(PROMPT, PROMPT_TEXT), seed=7)
    api = audio.save(tmp_path / "api.wav")
    cli_samples, rate = soundfile.read(out, dtype="int16")
    api_samples, _ = soundfile.read(api, dtype="int16")
    assert rate == 48000 and np.array_equal(cli_samples, api_samples)


def test_voice_file_round_trip_through_cli(weights_dir, tmp_path, capsys):
    voice = tmp_path / "alice.voice"
    args = ["--config", "luxtts", "--weights-dir", str(weights_dir)]
    assert main(["voice", "create", str(PROMPT), "--text", PROMPT_TEXT, "-o", str(voice), *args]) == 0
    assert main(["synth", *args, "--voice", str(voice), "--text", TEXT, "-o", str(tmp_path / "a.wav"), "--seed", "1", "--quiet"]) == 0
    assert main(["synth", *args, "--prompt", str(PROMPT), "--prompt-text", PROMPT_TEXT, "--text", TEXT,
                 "-o", str(tmp_path / "b.wav"), "--seed", "1", "--quiet"]) == 0
    a, _ = soundfile.read(tmp_path / "a.wav", dtype="int16")
    b, _ = soundfile.read(tmp_path / "b.wav", dtype="int16")
    assert np.array_equal(a, b)


def test_seed_makes_output_deterministic(weights_dir):
    pipeline = Pipeline.from_config("luxtts", weights_dir=str(weights_dir))
    voice = pipeline.encode_prompt(PROMPT, PROMPT_TEXT)
    first, second, other = (pipeline.synthesize(TEXT, voice, seed=s) for s in (3, 3, 4))
    assert np.array_equal(first.samples.numpy(), second.samples.numpy())
    assert not np.array_equal(first.samples.numpy(), other.samples.numpy())


def test_missing_weights_offline_names_the_file(tmp_path):
    env = {"HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf"), "PATH": "/usr/bin:/bin"}
    result = subprocess.run(
        [sys.executable, "-m", "voxpipe.cli", "synth", "--config", "luxtts", "--prompt", str(PROMPT),
         "--prompt-text", PROMPT_TEXT, "--text", "hi", "-o", str(tmp_path / "x.wav")],
        capture_output=True, text=True, env=env, timeout=120,
    )
    assert result.returncode == 1, result.stderr
    assert "YatharthS/LuxTTS" in result.stderr and "tokens.txt" in result.stderr and "--weights-dir" in result.stderr
    assert "Traceback" not in result.stderr


def test_clone_config_without_prompt_is_usage_error(weights_dir, tmp_path, capsys):
    code = main(["synth", "--config", "luxtts", "--weights-dir", str(weights_dir), "--text", TEXT, "-o", str(tmp_path / "x.wav")])
    assert code == 2 and "--prompt" in capsys.readouterr().err
