"""The OpenAI-compatible server over real HTTP on loopback (uvicorn in a thread, httpx client).

The pipeline is built from the small fixture weights; every request has a timeout.
"""

from __future__ import annotations

import io
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import numpy as np
import pytest
import soundfile
import torch
import uvicorn

from voxpipe.cli import main as cli_main
from voxpipe.core.errors import ConfigError
from voxpipe.core.pipeline import Pipeline
from voxpipe.server import ServerSettings, VoiceCatalog, create_app, wav_header
from voxpipe.streaming import sentence_pipeline
from voxpipe.testing.fixtures import E2E_PROMPT_TEXT as PROMPT_TEXT, fixtures_root, tiny_pipeline_config

TEXT = "The dog ran home. Why now?"
TIMEOUT = httpx.Timeout(60.0, connect=5.0)


@pytest.fixture(scope="module")
def pipeline():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield Pipeline.from_config(tiny_pipeline_config())
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def voices_dir(pipeline, tmp_path_factory):
    directory = tmp_path_factory.mktemp("voices")
    voice = pipeline.encode_prompt(fixtures_root() / "e2e" / "cmu_arctic_a0009.wav", text=PROMPT_TEXT)
    voice.save(directory / "gregson.voice")
    return directory


@pytest.fixture(scope="module")
def server(pipeline, voices_dir):
    """Base URL of a uvicorn server on 127.0.0.1 and a free port, stopped after the module."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    app = create_app(pipeline, VoiceCatalog.load(pipeline, voices_dir), ServerSettings(max_input_chars=200))
    instance = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=instance.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not instance.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the server did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    instance.should_exit = True
    thread.join(timeout=10)
    assert not thread.is_alive()


@pytest.fixture(scope="module")
def expected_pcm(pipeline, voices_dir) -> bytes:
    from voxpipe.core.voice import Voice

    voice = Voice.load(voices_dir / "gregson.voice")
    return sentence_pipeline(pipeline).synthesize(TEXT, voice, seed=5).to_pcm16()


def speech(server: str, **body) -> httpx.Response:
    request = {"model": "voxpipe", "input": TEXT, "voice": "gregson", "response_format": "pcm", "seed": 5, **body}
    return httpx.post(f"{server}/v1/audio/speech", json=request, timeout=TIMEOUT)


def test_health_and_voices(server, pipeline):
    health = httpx.get(f"{server}/health", timeout=TIMEOUT)
    assert health.status_code == 200
    assert health.json()["status"] == "ok" and health.json()["sample_rate"] == pipeline.sample_rate
    voices = httpx.get(f"{server}/v1/voices", timeout=TIMEOUT).json()
    assert voices["data"] == [{"id": "gregson", "object": "voice", "source": "file"}]


def test_pcm_is_streamed_in_chunks_and_equals_synthesize(server, expected_pcm):
    body = {"model": "voxpipe", "input": TEXT, "voice": "gregson", "response_format": "pcm", "seed": 5}
    pieces, arrival = [], []
    with httpx.stream("POST", f"{server}/v1/audio/speech", json=body, timeout=TIMEOUT) as response:
        assert response.status_code == 200
        assert response.headers["transfer-encoding"] == "chunked"
        assert response.headers["content-type"] == "audio/pcm"
        assert response.headers["x-sample-rate"] == "24000"
        for piece in response.iter_raw():
            pieces.append(piece)
            arrival.append(time.monotonic())
    assert b"".join(pieces) == expected_pcm
    assert len(pieces) >= 2  # one body piece per sentence at least: the audio came incrementally


def test_wav_is_streamed_with_an_open_ended_header(server, expected_pcm):
    with httpx.stream("POST", f"{server}/v1/audio/speech", timeout=TIMEOUT,
                      json={"model": "x", "input": TEXT, "voice": "gregson", "response_format": "wav", "seed": 5}) as response:
        assert response.status_code == 200 and response.headers["content-type"] == "audio/wav"
        data = response.read()
    assert data[:44] == wav_header(24000)
    assert data[44:] == expected_pcm
    samples, rate = soundfile.read(io.BytesIO(data), dtype="int16")  # readers accept the open length
    assert rate == 24000 and samples.tobytes() == expected_pcm


def test_flac_is_whole_and_lossless(server, expected_pcm):
    response = speech(server, response_format="flac")
    assert response.status_code == 200 and response.headers["content-type"] == "audio/flac"
    assert "transfer-encoding" not in response.headers
    samples, rate = soundfile.read(io.BytesIO(response.content), dtype="int16")
    assert rate == 24000 and samples.tobytes() == expected_pcm


@pytest.mark.filterwarnings("ignore:.*cannot be encoded")
@pytest.mark.parametrize(
    "body, status, param, words",
    [
        ({"voice": "nobody"}, 404, "voice", "gregson"),
        ({"input": "   "}, 400, "input", "empty"),
        ({"input": "word " * 50}, 400, "input", "at most 200"),
        ({"response_format": "mp3"}, 400, "response_format", "wav, pcm, flac"),
        ({"speed": 9.0}, 400, "speed", "out of range"),
        ({"speed": "fast"}, 400, "speed", "number"),
        ({"input": "!!!"}, 400, "input", "no speakable tokens"),
    ],
)
def test_errors_are_openai_shaped_json(server, body, status, param, words):
    response = speech(server, **body)
    assert response.status_code == status
    error = response.json()["error"]
    assert error["param"] == param and words in error["message"]
    assert error["type"] == "invalid_request_error"


def test_missing_field_is_a_400(server):
    response = httpx.post(f"{server}/v1/audio/speech", json={"voice": "gregson"}, timeout=TIMEOUT)
    assert response.status_code == 400 and response.json()["error"]["param"] == "input"


def test_eight_simultaneous_requests_each_get_their_own_audio(server, expected_pcm):
    with ThreadPoolExecutor(max_workers=8) as pool:
        responses = list(pool.map(lambda _: speech(server), range(8)))
    assert [r.status_code for r in responses] == [200] * 8
    assert all(r.content == expected_pcm for r in responses)


def test_a_client_leaving_early_closes_its_session(server, expected_pcm):
    body = {"model": "voxpipe", "input": "One. Two. Three. Four. Five. Six. Seven. Eight.", "voice": "gregson",
            "response_format": "pcm", "seed": 5}
    with httpx.stream("POST", f"{server}/v1/audio/speech", json=body, timeout=TIMEOUT) as response:
        next(response.iter_raw())  # read one piece, then hang up
    # a worker left alone would wait forever for room in its queue (8 chunks > max_pending 4)
    deadline = time.monotonic() + 60
    while any(t.name == "voxpipe-stream" for t in threading.enumerate()) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(t.name == "voxpipe-stream" for t in threading.enumerate())
    assert speech(server).content == expected_pcm


def test_catalog_needs_voice_files_for_a_cloning_pipeline(pipeline, tmp_path):
    with pytest.raises(ConfigError, match="none found"):
        VoiceCatalog.load(pipeline, tmp_path)
    with pytest.raises(ConfigError, match="not a directory"):
        VoiceCatalog.load(pipeline, tmp_path / "missing")


def test_wav_header_of_known_length():
    header = wav_header(16000, data_bytes=4)
    assert np.frombuffer(header[4:8], "<u4")[0] == 40 and np.frombuffer(header[40:44], "<u4")[0] == 4
    assert soundfile.read(io.BytesIO(header + b"\x01\x00\x02\x00"), dtype="int16")[0].tolist() == [1, 2]


def test_serve_command_binds_to_loopback_by_default_and_checks_its_port(capsys):
    from voxpipe.cli import build_parser

    args = build_parser().parse_args(["serve", "--voices", "somewhere"])
    assert (args.host, args.port, args.handler.__module__) == ("127.0.0.1", 8000, "voxpipe.commands.serve")
    assert cli_main(["serve", "--config", "luxtts", "--port", "70000"]) == 2
    assert "--port 70000" in capsys.readouterr().err
