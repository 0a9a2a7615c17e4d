"""`StreamingSession`: text in (piece by piece), PCM16 `AudioChunk`s out while the text arrives.

    session = StreamingSession(pipeline, voice, seed=7)
    for piece in llm_tokens:
        session.push_text(piece)
    session.flush()
    for chunk in session:          # may also be consumed while text is still being pushed
        play(chunk.pcm)

A worker thread plans sentences as soon as they are final (see `chunking.py`; with
`settings.first_chunk_max_words`, the first sentence's first words as soon as they are),
synthesizes one chunk at a time and puts the released audio into a queue of at most
`max_pending` chunks: a consumer that stops reading stops the worker, so memory stays bounded.
A session dropped without `close()` ends its worker too: the thread holds it weakly between
bounded steps (`_work`).

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
from voxpipe.core.openmp import release_thread_pool
from voxpipe.core.pipeline import Pipeline, chunk_seed
from voxpipe.core.voice import Voice
from voxpipe.streaming.assembly import CrossfadeJoiner, PcmResampler, StreamingEdgeTrim
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

    voice: as `Pipeline.synthesize()` (a `Voice`, a `.voice` path, a built-in voice name, or None
    for the family's default). seed: noise seed (default: the pipeline's `settings.seed`, else
    random). options: the family's per-call options, as `synthesize()`. max_pending: audio
    chunks the worker may produce ahead of the consumer. With `settings.sample_rate` set, the
    PCM is resampled as it streams (soxr's streaming resampler), so it is not bit-identical to
    `synthesize()` then.

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
        max_pending: int = 2,
        **options,
    ) -> None:
        if pipeline.num_channels != 1:
            raise ConfigError(f"streaming produces mono PCM; this pipeline has {pipeline.num_channels} channels")
        if not pipeline.synthesizer.streams:
            raise ConfigError(f"synthesizer {pipeline.synthesizer.name!r} does not stream")
        if max_pending < 1:
            raise ConfigError(f"max_pending must be >= 1, got {max_pending}")
        family = pipeline.synthesizer
        self._options = family.options(options)
        self.voice = pipeline.load_voice(voice)
        seed = pipeline.settings.seed if seed is None else seed
        self.seed = int(torch.randint(0, 2**62, ())) if seed is None else int(seed)
        self.pipeline = pipeline
        self.sample_rate = pipeline.sample_rate
        family_rate = family.sample_rate
        self._resampler = None if family_rate == self.sample_rate else PcmResampler(family_rate, self.sample_rate)
        self._planner = TextPlanner(pipeline, family.chunk_budget(self.voice, self._options),
                                    first_chunk_max_words=pipeline.settings.first_chunk_max_words)
        self._joiner = CrossfadeJoiner(int(pipeline.settings.crossfade_seconds * family_rate))
        self._trim = StreamingEdgeTrim(family_rate) if pipeline.settings.trim_silence else None
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
        self._planned: list[tuple[PlannedChunk | None, bool]] = []  # (chunk, ends the stream) to synthesize
        self._outbox: list = []   # items made for the consumer, waiting for room in the queue
        # the thread holds only a weak reference between bounded steps: a session dropped without
        # close() is collected, and its finalizer stops the thread
        self._worker = threading.Thread(target=_work, args=(weakref.ref(self),), name="voxpipe-stream", daemon=True)
        weakref.finalize(self, self._cancelled.set)
        release_thread_pool()  # this thread's torch work moves to the worker (voxpipe/core/openmp.py)
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
    def _step(self) -> bool:
        """One bounded piece of the worker's job (see `_work`): hand a waiting item to the
        consumer, synthesize the next planned chunk, or plan newly pushed text (waiting at most
        `_HOLD_SECONDS` for it). False once the stream has ended or the session is closed."""
        if self._cancelled.is_set():
            return False
        if self._outbox:
            try:
                self._queue.put(self._outbox[0], timeout=_HOLD_SECONDS)
            except queue.Full:
                return True  # the consumer is behind: nothing more is made until it reads
            item = self._outbox.pop(0)
            return item is not _END and not isinstance(item, _Failure)
        try:
            if self._planned:
                chunk, ending = self._planned.pop(0)
                self._emit(None if chunk is None else self._synthesize(chunk), chunk, ending=ending)
                if ending:
                    self._put(_END)
            else:
                self._plan_pushed_text()
        except BaseException as error:  # handed to the consumer, who re-raises it
            self._outbox = [_Failure(error)]
        return True

    def _plan_pushed_text(self) -> None:
        with self._text_changed:
            if not (self._incoming or self._flushed):
                self._text_changed.wait(timeout=_HOLD_SECONDS)
                return
            text, last = "".join(self._incoming), self._flushed
            self._incoming.clear()
        self._planner.push(text)
        with self._lock:  # tokenizers (espeak) are not thread-safe
            chunks = self._planner.ready()
            if last:
                chunks += self._planner.finish()
        self._planned = [(chunk, False) for chunk in chunks]
        if last:
            if self._planner.chunk_count == 0:
                if not self._planner.raw.strip():
                    raise TextError("nothing to synthesize: the text is empty")
                raise TextError(f"no speakable tokens in {self._planner.raw!r}")
            # the last chunk ends the stream; without one, the held-back end of the audio does
            self._planned[-1:] = [(chunks[-1], True)] if chunks else [(None, True)]

    @torch.inference_mode()
    def _synthesize(self, planned: PlannedChunk) -> torch.Tensor:
        """One chunk -> (1, N) waveform, as `synthesize()` makes it."""
        family, ids = self.pipeline.synthesizer, planned.chunk.token_ids
        with self._lock:
            try:
                return family.synthesize([ids], self.voice, self._options, [chunk_seed(self.seed, planned.index)])[0]
            finally:  # sessions on one pipeline take turns: no parked pool while another one works
                release_thread_pool()

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
        if self._resampler is not None:
            pcm = self._resampler.push(pcm, last=ending)
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
        self._outbox.append(item)  # delivered by the next steps, as the consumer makes room


_HOLD_SECONDS = 0.1
"""Longest a worker waits (for text, or for room in the queue) while holding its session."""


def _work(session_ref: "weakref.ref[StreamingSession]") -> None:
    """The worker thread: runs its session's `_step`s, holding the session only during one
    step. A session dropped by its owner (never closed, never drained) is then collected, its
    finalizer cancels it, and this thread ends within a step."""
    while True:
        session = session_ref()
        if session is None or not session._step():
            return
        del session


def stream_text(pipeline: Pipeline, text: str, voice: Voice | str | None = None, **options) -> Iterator[AudioChunk]:
    """The `AudioChunk`s of a text known in full (options as `StreamingSession`)."""
    session = StreamingSession(pipeline, voice, **options)
    try:
        session.push_text(text)
        session.flush()
        yield from session
    finally:
        session.close()
