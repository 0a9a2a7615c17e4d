"""The example third-party model family (examples/voxpipe-formant) installs through its entry
point, passes the conformance kit, and speaks through `voxpipe synth` and `voxpipe serve`."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import soundfile

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "examples" / "voxpipe-formant"
CONFIG = EXAMPLE / "voxpipe_formant" / "formant.yaml"


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    """pip-install the example into a private directory (its own dist-info, like any plugin)."""
    target = tmp_path_factory.mktemp("site")
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
                    "--target", str(target), str(EXAMPLE)], check=True)
    return dict(os.environ, PYTHONPATH=os.pathsep.join([str(target), os.environ.get("PYTHONPATH", "")]))


def voxpipe(env, *args, **kwargs):
    return subprocess.run([sys.executable, "-m", "voxpipe.cli", *args], env=env, capture_output=True, text=True,
                          **kwargs)


def test_registered_through_the_entry_point(env):
    result = voxpipe(env, "plugins")
    assert result.returncode == 0, result.stderr
    rows = [line.split()[:3] for line in result.stdout.splitlines()]
    assert ["synthesizer", "formant", "voxpipe-formant"] in rows
    assert ["tokenizer", "formant-letters", "voxpipe-formant"] in rows
    options = voxpipe(env, "plugins", "--options", "formant")
    assert "speed" in options.stdout


def test_passes_the_conformance_kit(env):
    code = ("import pytest, sys;"
            "sys.exit(pytest.main(['-q', '-p', 'no:cacheprovider', '--rootdir', sys.argv[1], "
            "sys.argv[1] + '/conformance_formant.py']))")
    result = subprocess.run([sys.executable, "-c", code, str(REPO / "tests" / "plugin_checks")], env=env,
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert " passed" in result.stdout


def test_speaks_through_voxpipe_synth(env, tmp_path):
    out = tmp_path / "formant.wav"
    result = voxpipe(env, "synth", "--config", str(CONFIG), "--text", "Hello there. Aeiou!", "-o", str(out),
                     "--seed", "3", "--speed", "1.5", "--voice", "high")
    assert result.returncode == 0, result.stderr
    samples, rate = soundfile.read(out)
    assert rate == 16000 and samples.size > 0 and abs(samples).max() > 0.05
    unknown = voxpipe(env, "synth", "--config", str(CONFIG), "--text", "Hi.", "-o", str(out), "--num-steps", "4")
    assert unknown.returncode == 2 and "no option 'num_steps'" in unknown.stderr


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_speaks_through_voxpipe_serve(env):
    httpx = pytest.importorskip("httpx")
    pytest.importorskip("uvicorn")
    port = _free_port()
    server = subprocess.Popen([sys.executable, "-m", "voxpipe.cli", "serve", "--config", str(CONFIG), "--port", str(port)],
                              env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        else:
            pytest.fail("the server did not start: " + server.stderr.read1().decode(errors="replace"))
        voices = httpx.get(f"http://127.0.0.1:{port}/v1/voices", timeout=5).json()
        assert {v["id"] for v in voices["data"]} == {"low", "high"}
        response = httpx.post(f"http://127.0.0.1:{port}/v1/audio/speech", timeout=30,
                              json={"model": "formant", "input": "Hello there.", "voice": "low",
                                    "response_format": "pcm", "seed": 1})
        assert response.status_code == 200, response.text
        assert response.headers["X-Sample-Rate"] == "16000" and len(response.content) > 1000
    finally:
        server.terminate()
        server.wait(timeout=10)
