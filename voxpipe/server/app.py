"""An OpenAI-compatible speech endpoint over one pipeline (FastAPI).

    POST /v1/audio/speech   {"model": ..., "input": ..., "voice": ..., "response_format": "wav"|"pcm"|"flac",
                             "speed": 1.0, "seed": 7}      -> audio (wav and pcm streamed, flac whole)
    GET  /v1/voices         -> {"object": "list", "data": [{"id", "object": "voice", "source"}]}
    GET  /health            -> {"status": "ok", ...}

Every request gets its own `StreamingSession`; sessions on the pipeline take turns chunk by
chunk (`pipeline_lock`), so concurrent requests are served together and never mix their audio.
Errors are OpenAI-shaped JSON: {"error": {"message", "type", "param", "code"}}. A failure after
the first audio was sent can only end the stream early (the status line is gone by then); the
first chunk is generated before the response starts, so the usual errors (nothing speakable)
still get a JSON answer.

Before the app runs, `RequestGuard` (guard.py) checks the optional API key (401) and the body
size limit (413, before parsing). A client that hangs up stops its synthesis, whatever the
response format. Answers never contain absolute paths of the server's files.
"""

from __future__ import annotations

import asyncio
import io
import logging
from typing import Literal

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field, SecretStr
from starlette.concurrency import run_in_threadpool

from voxpipe.core.errors import VoxpipeError
from voxpipe.core.pipeline import Pipeline
from voxpipe.server.guard import RequestGuard, redact_paths
from voxpipe.server.voices import UnknownVoice, VoiceCatalog
from voxpipe.server.wav import wav_header
from voxpipe.streaming import StreamingSession

log = logging.getLogger("voxpipe.server")

FORMATS = {"wav": "audio/wav", "pcm": "audio/pcm", "flac": "audio/flac"}


class SpeechRequest(BaseModel):
    """OpenAI's `audio/speech` body (unknown fields such as `instructions` are ignored)."""

    model_config = ConfigDict(extra="ignore")

    model: str | None = Field(None, description="accepted and ignored: the server runs one pipeline")
    input: str
    voice: str
    response_format: str = Field("wav", description="wav | pcm | flac")
    speed: float = 1.0
    seed: int | None = Field(None, description="voxpipe extension: noise seed (same seed, same audio)")


class ServerSettings(BaseModel):
    max_input_chars: int = Field(4096, gt=0, description="longer input is refused (OpenAI's limit)")
    min_speed: float = Field(0.25, gt=0)
    max_speed: float = Field(4.0, gt=0)
    seed: int | None = Field(None, description="seed of requests that give none (None: the pipeline's, else random)")
    max_pending: int = Field(4, ge=1, description="audio chunks a request may have ready ahead of its client")
    model_name: str = "voxpipe"
    max_body_bytes: int = Field(1 << 20, gt=0, description="larger request bodies are refused (413) before parsing")
    api_key: SecretStr | None = Field(None, description="if set, requests need 'Authorization: Bearer KEY' (401)")


def error(status: int, message: str, param: str | None = None, code: str | None = None,
          kind: Literal["invalid_request_error", "server_error"] = "invalid_request_error", **extra) -> JSONResponse:
    body = {"message": redact_paths(message), "type": kind, "param": param, "code": code, **extra}
    return JSONResponse({"error": body}, status_code=status)


def create_app(pipeline: Pipeline, voices: VoiceCatalog, settings: ServerSettings | None = None) -> FastAPI:
    settings = settings or ServerSettings()
    app = FastAPI(title="voxpipe", description="OpenAI-compatible text-to-speech", version="1")
    key = settings.api_key.get_secret_value() if settings.api_key is not None else None
    app.add_middleware(RequestGuard, max_body_bytes=settings.max_body_bytes, api_key=key)  # before parsing
    rate = pipeline.sample_rate

    @app.exception_handler(RequestValidationError)
    async def invalid_body(request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {"loc": (), "msg": "invalid request"}
        where = ".".join(str(part) for part in first.get("loc", ()) if part != "body")
        return error(400, f"{where + ': ' if where else ''}{first.get('msg')}", param=where or None, code="invalid_value")

    @app.get("/health")
    async def health() -> dict:
        return {"status": "ok", "model": redact_paths(settings.model_name), "sample_rate": rate,
                "voices": len(voices.names)}

    @app.get("/v1/voices")
    async def list_voices() -> dict:
        return {"object": "list", "data": voices.describe()}

    @app.post("/v1/audio/speech")
    async def speech(body: SpeechRequest, request: Request):
        problem = _check(body, settings)
        if problem is not None:
            return problem
        try:
            voice = voices.resolve(body.voice, pipeline.synthesizer)
        except UnknownVoice as unknown:
            return error(404, str(unknown), param="voice", code="voice_not_found", available=unknown.available)
        seed = body.seed if body.seed is not None else settings.seed
        try:
            options = {"speed": body.speed} if body.speed != 1.0 or "speed" in pipeline.synthesizer.Options.model_fields else {}
            session = StreamingSession(pipeline, voice, seed=seed, max_pending=settings.max_pending, **options)
        except VoxpipeError as failure:
            return error(400, str(failure), param="voice")
        session.push_text(body.input)
        session.flush()
        chunks = iter(session)
        watcher = asyncio.ensure_future(_close_when_disconnected(request, session))

        def done() -> None:
            watcher.cancel()
            session.close(wait=False)

        try:  # before any byte is sent, so that a failure can still be a JSON error
            first = await run_in_threadpool(next, chunks, None)
        except VoxpipeError as failure:
            done()
            return error(400, str(failure), param="input", code="synthesis_failed")
        except Exception as failure:  # a bug: keep the server up, report it
            done()
            log.exception("synthesis failed")
            return error(500, f"internal error: {type(failure).__name__}: {failure}", kind="server_error")
        headers = {"X-Sample-Rate": str(rate), "X-Channels": "1", "X-Sample-Format": "s16le"}

        if body.response_format == "flac":
            try:
                pcm = first.pcm + b"".join(await run_in_threadpool(lambda: [c.pcm for c in chunks]))
            except VoxpipeError as failure:
                return error(400, str(failure), param="input", code="synthesis_failed")
            finally:
                done()
            return Response(_flac(pcm, rate), media_type=FORMATS["flac"], headers=headers)

        async def stream():
            try:
                if body.response_format == "wav":
                    yield wav_header(rate)
                if first is not None:
                    yield first.pcm
                while True:
                    chunk = await run_in_threadpool(next, chunks, None)
                    if chunk is None:
                        return
                    if chunk.pcm:
                        yield chunk.pcm
            except VoxpipeError as failure:  # headers are sent: the stream just ends early
                log.warning("stream ended early: %s", failure)
            finally:
                done()

        return StreamingResponse(stream(), media_type=FORMATS[body.response_format], headers=headers)

    return app


DISCONNECT_POLL_SECONDS = 0.1


async def _close_when_disconnected(request: Request, session: StreamingSession) -> None:
    """Stop a request's synthesis as soon as its client hangs up, whatever the response format
    (a flac answer is only sent at the end, so the stream itself would never notice)."""
    while not await request.is_disconnected():
        await asyncio.sleep(DISCONNECT_POLL_SECONDS)
    log.info("client disconnected: synthesis stopped")
    session.close(wait=False)


def _check(body: SpeechRequest, settings: ServerSettings) -> JSONResponse | None:
    if not body.input.strip():
        return error(400, "input is empty: nothing to synthesize", param="input", code="empty_input")
    if len(body.input) > settings.max_input_chars:
        return error(400, f"input is {len(body.input)} characters; this server takes at most {settings.max_input_chars}",
                     param="input", code="input_too_long")
    if body.response_format not in FORMATS:
        return error(400, f"response_format {body.response_format!r} is not supported; use one of: {', '.join(FORMATS)}",
                     param="response_format", code="unsupported_format")
    if not settings.min_speed <= body.speed <= settings.max_speed:
        return error(400, f"speed {body.speed} is out of range [{settings.min_speed}, {settings.max_speed}]",
                     param="speed", code="invalid_speed")
    return None


def _flac(pcm: bytes, sample_rate: int) -> bytes:
    import numpy as np
    import soundfile

    buffer = io.BytesIO()
    soundfile.write(buffer, np.frombuffer(pcm, dtype="<i2"), sample_rate, format="FLAC", subtype="PCM_16")
    return buffer.getvalue()
