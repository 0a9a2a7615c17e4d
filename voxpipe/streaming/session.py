"""`StreamingSession`: text in (piece by piece), PCM16 `AudioChunk`s out while the text arrives.

    session = StreamingSession(pipeline, voice, seed=7)
    for piece in llm_tokens:
        session.push_text(piece)
    session.flush()
    for chunk in session:          # may also be consumed while text is still being pushed
        play(chunk.pcm)

A worker thread plans sentences as soon as they are final (see `chunking.py`), synthesizes one
chunk at a time and puts the released audio into a queue of at most `max_pending` chunks: a
consumer that stops reading stops the worker, so memory stays bounded.

Determinism: the PCM equals `sentence_pipeline(pipeline).synthesize(text, voice, seed=...)`
converted to PCM16, whatever the pushes were. Chunk `i` (counted over the whole stream) draws
its noise from `chunk_seed(seed, i)` and is generated as a batch of one; the cross-fade and
edge-silence trim are applied incrementally with the same arithmetic (`assembly.py`).

Sessions on one pipeline take turns chunk by chunk (a lock per pipeline): components such as
the espeak phonemizer are not thread-safe, and turns keep each stream's audio its own.
"""

from __future__ import annotations

import queue
import threading
import weakref
from typing import Iterator

import torch

from voxpipe.core.audio import AudioChunk, to_pcm16
from voxpipe.core.errors import ConfigError, TextError
from voxpipe.core.pipeline import Pipeline, chunk_seed
from voxpipe.core.voice import Voice
from voxpipe.streaming.assembly import CrossfadeJoiner, StreamingEdgeTrim
from voxpipe.streaming.chunking import PlannedChunk, TextPlanner

_LOCKS: "weakref.WeakKeyDictionary[Pipeline, threading.Lock]" = weakref.WeakKeyDictionary()
_LOCKS_GUARD = threading.Lock()
_END = object()


def pipeline_lock(pipeline: Pipeline) -> threading.Lock:
    """The lock sessions on `pipeline` take for each step that runs its components."""
    with _LOCKS_GUARD:
        lock = _LOCKS.get(pipeline)
        if lock is None:
            lock = _LOCKS[pipeline] = threading.Lock()
        return lock


class _Failure:
    def __init__(self, error: BaseException) -> None:
        self.error = error


class StreamingSession:
    """Incremental synthesis of text that arrives in pieces (see the module docstring).

    voice: a `Voice` for cloning pipelines; a built-in voice name (or None for the model's
    default) for pipelines with their own voices. seed: noise seed (default: the pipeline's
    `settings.seed`, else random). speed, num_steps, guidance_scale, t_shift: as `synthesize()`.
    max_pending: audio chunks the worker may produce ahead of the consumer.

    Each `AudioChunk` is the audio released when a text chunk was synthesized: the end of the
    previous chunk that was held back (cross-fade, possible trailing silence) and this chunk
    up to what the next one may still change. `text_span`: (start, end) of the input text (all
    pushes concatenated) of the text chunk(s) that released it; `metadata`: `chunk_index`,
    `text` (normalized), `final` (the last AudioChunk of the stream).
    """

    def __init__(
        self,
        pipeline: Pipeline,
        voice: Voice | str | None = None,
        *,
        seed: int | None = None,
        speed: float | None = None,
        num_steps: int | None = None,
        guidance_scale: float | None = None,
        t_shift: float | None = None,
        max_pending: int = 2,
    ) -> None:
        if pipeline.num_channels != 1:
            raise ConfigError(f"streaming produces mono PCM; this pipeline has {pipeline.num_channels} channels")
        if max_pending < 1:
            raise ConfigError(f"max_pending must be >= 1, got {max_pending}")
        speed = pipeline.settings.speed if speed is None else speed
        if not speed > 0:
            raise ConfigError(f"speed must be > 0, got {speed}")
        seed = pipeline.settings.seed if seed is None else seed
        self.seed = int(torch.randint(0, 2**62, ())) if seed is None else int(seed)
        self.pipeline = pipeline
        self.voice = voice
        self.sample_rate = pipeline.sample_rate
        self._clones = pipeline.acoustic_model.output == "features"
        if self._clones:
            if not isinstance(voice, Voice):
                raise ConfigError(
                    f"acoustic_model {pipeline.acoustic_model.name!r} clones a voice: pass a Voice "
                    "(pipeline.encode_prompt(...) or Voice.load(...))"
                )
            pipeline.check_voice(voice)
            self._speed = speed * pipeline.settings.speed_factor  # as synthesize() applies it
            budget = pipeline.token_budget(voice, self._speed)[0]
        else:
            self._speed = speed
            budget = pipeline.token_budget(None, speed)[0]
        self._options = {"num_steps": num_steps, "guidance_scale": guidance_scale, "t_shift": t_shift}
        self._planner = TextPlanner(pipeline, budget)
        self._joiner = CrossfadeJoiner(int(pipeline.settings.crossfade_seconds * self.sample_rate))
        self._trim = StreamingEdgeTrim(self.sample_rate) if pipeline.settings.trim_silence else None
        self._lock = pipeline_lock(pipeline)
        self._text_changed = threading.Condition()
        self._incoming: list[str] = []  # pushed text the worker has not taken yet
        self._flushed = False
        self._cancelled = threading.Event()
        self._queue: queue.Queue = queue.Queue(maxsize=max_pending)
        self._index = 0           # next AudioChunk index
        self._offset = 0          # samples released so far
        self._last_span = (0, 0)  # text_span of the last AudioChunk
        self._unsent_start: int | None = None  # start of text whose chunks released no audio yet
        self._worker = threading.Thread(target=self._run, name="voxpipe-stream", daemon=True)
        self._worker.start()

    # ---- input ---------------------------------------------------------------------------
    def push_text(self, text: str) -> None:
        """Add text; synthesis starts as soon as a sentence of it is final."""
        if not isinstance(text, str):
            raise TypeError(f"push_text takes a str, got {type(text).__name__}")
        with self._text_changed:
            if self._flushed:
                raise RuntimeError("flush() was called: this session takes no more text")
            self._incoming.append(text)
            self._text_changed.notify()

    def flush(self) -> None:
        """Mark the end of the text: the rest is synthesized and the stream ends."""
        with self._text_changed:
            self._flushed = True
            self._text_changed.notify()

    # ---- output --------------------------------------------------------------------------
    def __iter__(self) -> Iterator[AudioChunk]:
        while True:
            try:
                item = self._queue.get(timeout=0.1)
            except queue.Empty:
                if self._cancelled.is_set() and not self._worker.is_alive():
                    return  # closed: nothing more will come
                continue
            if item is _END:
                self._queue.put(_END)  # later iterations end at once
                return
            if isinstance(item, _Failure):
                self._queue.put(_END)
                raise item.error
            yield item

    @property
    def pending(self) -> int:
        """Audio chunks produced and not yet consumed (at most `max_pending`)."""
        return self._queue.qsize()

    def read_all(self) -> bytes:
        """flush(), then every PCM byte of the stream."""
        self.flush()
        return b"".join(chunk.pcm for chunk in self)

    def close(self, wait: bool = True) -> None:
        """Stop the worker (the rest of the text is dropped); with `wait`, until it has
        stopped (it finishes the chunk it is generating first)."""
        self._cancelled.set()
        with self._text_changed:
            self._text_changed.notify()
        while wait and self._worker.is_alive():
            try:  # unblock a worker waiting for room in the queue
                self._queue.get_nowait()
            except queue.Empty:
                pass
            self._worker.join(timeout=0.05)

    def __enter__(self) -> "StreamingSession":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ---- worker --------------------------------------------------------------------------
    def _run(self) -> None:
        try:
            while True:
                with self._text_changed:
                    while not (self._incoming or self._flushed or self._cancelled.is_set()):
                        self._text_changed.wait()
                    if self._cancelled.is_set():
                        return
                    text, last = "".join(self._incoming), self._flushed
                    self._incoming.clear()
                self._planner.push(text)
                with self._lock:  # tokenizers (espeak) are not thread-safe
                    chunks = self._planner.ready()
                    if last:
                        chunks += self._planner.finish()
                for number, chunk in enumerate(chunks):
                    if self._cancelled.is_set():
                        return
                    self._emit(self._synthesize(chunk), chunk, ending=last and number == len(chunks) - 1)
                if last:
                    if self._planner.chunk_count == 0:
                        if not self._planner.raw.strip():
                            raise TextError("nothing to synthesize: the text is empty")
                        raise TextError(f"no speakable tokens in {self._planner.raw!r}")
                    if not chunks:  # the end of the audio is still held back
                        self._emit(None, None, ending=True)
                    self._put(_END)
                    return
        except BaseException as error:  # handed to the consumer, who re-raises it
            self._put(_Failure(error))

    @torch.inference_mode()
    def _synthesize(self, planned: PlannedChunk) -> torch.Tensor:
        """One chunk -> (1, N) waveform, as `synthesize()` makes it."""
        pipeline, ids = self.pipeline, planned.chunk.token_ids
        with self._lock:
            if not self._clones:
                return pipeline.acoustic_model.generate_waveform(ids, self.voice, self._speed).reshape(1, -1)
            features = pipeline.generate_features(
                self.voice, [ids], speed=self._speed, seeds=[chunk_seed(self.seed, planned.index)], **self._options
            )[0]
            return pipeline.decode(features, self.voice)

    def _emit(self, wave: torch.Tensor | None, planned: PlannedChunk | None, ending: bool) -> None:
        released = [] if wave is None else [self._joiner.push(wave)]
        if ending:
            released.append(self._joiner.finish())
        if self._trim is None:
            pcm = b"".join(to_pcm16(part[0]) for part in released)
        else:
            pcm = b"".join(self._trim.push(part[0]) for part in released)
            if ending:
                pcm += self._trim.finish()
        if planned is not None:  # the span covers every text chunk since the last emission
            start = planned.raw_span[0] if self._unsent_start is None else self._unsent_start
            self._unsent_start, self._last_span = start, (start, planned.raw_span[1])
        if not pcm and not ending:
            return
        metadata = {"final": ending}
        if planned is not None:
            metadata.update(chunk_index=planned.index, text=planned.chunk.span.text)
        self._put(AudioChunk(pcm, self.sample_rate, self._index, self._offset, self._last_span, metadata))
        self._unsent_start = None
        self._index += 1
        self._offset += len(pcm) // 2

    def _put(self, item) -> None:
        while not self._cancelled.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return
            except queue.Full:
                continue


def stream_text(pipeline: Pipeline, text: str, voice: Voice | str | None = None, **options) -> Iterator[AudioChunk]:
    """The `AudioChunk`s of a text known in full (options as `StreamingSession`)."""
    session = StreamingSession(pipeline, voice, **options)
    try:
        session.push_text(text)
        session.flush()
        yield from session
    finally:
        session.close()
