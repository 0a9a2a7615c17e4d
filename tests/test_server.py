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
import uvicorn

from voxpipe.cli import main as cli_main
from voxpipe.core.errors import ConfigError
from voxpipe.core.pipeline import Pipeline
from voxpipe.server import ServerSettings, VoiceCatalog, create_app, wav_header
from voxpipe.streaming import sentence_pipeline
from voxpipe.testing.fixtures import E2E_PROMPT_TEXT as PROMPT_TEXT, fixtures_root, tiny_pipeline_config
from voxpipe.testing.threads import one_torch_thread

TEXT = "The dog ran home. Why now?"
TIMEOUT = httpx.Timeout(60.0, connect=5.0)


@pytest.fixture(scope="module")
def pipeline():
    with one_torch_thread():
        yield Pipeline.from_config(tiny_pipeline_config())


@pytest.fixture(scope="module")
def voices_dir(pipeline, tmp_path_factory):
    directory = tmp_path_factory.mktemp("voices")
    voice = pipeline.encode_prompt(fixtures_root() / "e2e" / "cmu_arctic_a0009.wav", text=PROMPT_TEXT)
    voice.save(directory / "gregson.voice")
    return directory


@pytest.fixture(scope="module")
def server(pipeline, voices_dir):
    """Base URL of a uvicorn server on 127.0.0.1 and a free port, stopped after the module."""
    app = create_app(pipeline, VoiceCatalog.load(pipeline, voices_dir), ServerSettings(max_input_chars=200))
    port, stop = serve_in_thread(app)
    yield f"http://127.0.0.1:{port}"
    stop()


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


# ---- limits, API key, hang-ups, no paths in answers ----------------------------------------------
KEY = "test-key-7c1d"
BODY_LIMIT = 4096


def serve_in_thread(app):
    """Start uvicorn on 127.0.0.1 and a free port; returns (port, stop)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    instance = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=instance.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not instance.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the server did not start"
        time.sleep(0.05)

    def stop():
        instance.should_exit = True
        thread.join(timeout=10)
        assert not thread.is_alive(), "the server did not stop"

    return port, stop


@pytest.fixture(scope="module")
def guarded(pipeline, voices_dir):
    """A server with an API key and a 4 KiB body limit: its port."""
    settings = ServerSettings(max_input_chars=200, api_key=KEY, max_body_bytes=BODY_LIMIT)
    port, stop = serve_in_thread(create_app(pipeline, VoiceCatalog.load(pipeline, voices_dir), settings))
    yield port
    stop()


def raw_exchange(port: int, request: bytes, timeout: float = 20.0) -> tuple[int, dict]:
    """Send raw HTTP bytes, read the answer until the server closes: (status, JSON body)."""
    import json

    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as connection:
        connection.sendall(request)
        answer = b""
        while True:
            try:
                piece = connection.recv(65536)
            except ConnectionResetError:
                break
            if not piece:
                break
            answer += piece
    head, _, body = answer.partition(b"\r\n\r\n")
    return int(head.split()[1]), json.loads(body)


def post_head(length_header: str) -> bytes:
    return (f"POST /v1/audio/speech HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            f"Authorization: Bearer {KEY}\r\n{length_header}\r\n\r\n").encode()


def test_a_declared_body_over_the_limit_is_refused_before_it_is_read(guarded):
    # 200 MB announced, 1 kB sent: a server that read the body first would wait for the rest
    status, body = raw_exchange(guarded, post_head("Content-Length: 209715200") + b"x" * 1000)
    assert status == 413
    assert body["error"]["code"] == "request_too_large" and str(BODY_LIMIT) in body["error"]["message"]


def test_a_chunked_body_is_read_only_up_to_the_limit(guarded):
    chunk = b"x" * 1024
    chunks = b"".join(b"400\r\n" + chunk + b"\r\n" for _ in range(8)) + b"0\r\n\r\n"  # 8 KiB > 4 KiB
    status, body = raw_exchange(guarded, post_head("Transfer-Encoding: chunked") + chunks)
    assert status == 413 and body["error"]["code"] == "request_too_large"


def test_api_key_is_required_except_for_health(guarded, expected_pcm):
    base = f"http://127.0.0.1:{guarded}"
    request = {"model": "voxpipe", "input": TEXT, "voice": "gregson", "response_format": "pcm", "seed": 5}
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {KEY}"}):
        response = httpx.post(f"{base}/v1/audio/speech", json=request, headers=headers, timeout=TIMEOUT)
        assert response.status_code == 401, headers
        assert response.json()["error"]["code"] == "invalid_api_key"
        assert response.headers["www-authenticate"].startswith("Bearer")
    assert httpx.get(f"{base}/v1/voices", timeout=TIMEOUT).status_code == 401
    assert httpx.get(f"{base}/health", timeout=TIMEOUT).status_code == 200
    authorized = {"Authorization": f"Bearer {KEY}"}
    assert httpx.get(f"{base}/v1/voices", headers=authorized, timeout=TIMEOUT).status_code == 200
    response = httpx.post(f"{base}/v1/audio/speech", json=request, headers=authorized, timeout=TIMEOUT)
    assert response.status_code == 200 and response.content == expected_pcm  # a body under the limit


@pytest.mark.parametrize("response_format", ["flac", "wav", "pcm"])
def test_a_client_hanging_up_stops_its_synthesis(server, response_format, monkeypatch):
    """A hung-up client stops the synthesis for every format (flac answers only at the end,
    so nothing was ever sent to notice the hang-up with)."""
    import json

    from voxpipe.streaming import StreamingSession

    calls = []
    synthesize = StreamingSession._synthesize

    def slow_synthesize(self, planned):
        calls.append(planned.index)
        time.sleep(0.4)  # ten chunks: >= 4 s for the whole text
        return synthesize(self, planned)

    monkeypatch.setattr(StreamingSession, "_synthesize", slow_synthesize)
    body = json.dumps({"model": "voxpipe", "voice": "gregson", "response_format": response_format, "seed": 5,
                       "input": "One. Two. Three. Four. Five. Six. Seven. Eight. Nine. Ten."}).encode()
    port = int(server.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=30) as connection:
        connection.sendall(f"POST /v1/audio/speech HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                           f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
        deadline = time.monotonic() + 60
        while not calls and time.monotonic() < deadline:  # synthesis has started: hang up
            time.sleep(0.05)
    assert calls
    deadline = time.monotonic() + 60
    while any(t.name == "voxpipe-stream" for t in threading.enumerate()) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(t.name == "voxpipe-stream" for t in threading.enumerate())
    assert len(calls) <= 4, f"{len(calls)} of 10 chunks were synthesized for a client that had left"


def test_answers_do_not_reveal_absolute_paths(pipeline, voices_dir):
    from fastapi.testclient import TestClient

    from voxpipe.server.app import error
    from voxpipe.server.guard import redact_paths

    assert redact_paths("cannot read /home/ann/models/model.pt: bad header") == "cannot read model.pt: bad header"
    assert redact_paths("weights '/srv/w/x.safetensors' and C:\\Users\\ann\\y.pt") == "weights 'x.safetensors' and y.pt"
    assert redact_paths("see https://example.org/a/b and 3/4 and 1/2/3") == "see https://example.org/a/b and 3/4 and 1/2/3"
    assert b"/home/ann" not in error(500, "internal error: open /home/ann/v/a.voice").body
    settings = ServerSettings(model_name="/home/ann/private/configs/luxtts.yaml")
    with TestClient(create_app(pipeline, VoiceCatalog.load(pipeline, voices_dir), settings)) as client:
        health = client.get("/health").json()
    assert health["model"] == "luxtts.yaml" and "/home" not in str(health)


def test_serve_warns_when_reachable_without_a_key_and_checks_its_limits(capsys, monkeypatch):
    from voxpipe.commands.serve import exposure_warning, resolve_api_key

    assert "no API key" in exposure_warning("0.0.0.0", None)
    assert "no API key" in exposure_warning("example.org", None)
    assert exposure_warning("0.0.0.0", "k") is None
    for loopback in ("127.0.0.1", "127.0.0.2", "::1", "[::1]", "localhost"):
        assert exposure_warning(loopback, None) is None, loopback
    monkeypatch.setenv("VOXPIPE_API_KEY", "from-env")
    assert resolve_api_key(None) == "from-env" and resolve_api_key("given") == "given"
    monkeypatch.setenv("VOXPIPE_API_KEY", "")
    assert resolve_api_key(None) is None
    assert cli_main(["serve", "--config", "luxtts", "--max-body-bytes", "0"]) == 2  # before any model loads
    assert "--max-body-bytes 0" in capsys.readouterr().err
